import {
  getRun,
  initRun,
  openReadOnly,
  readSeries,
  readSeriesColumns,
  runQuery,
  type Seq,
  Store,
  ValidationError,
} from '@tidemark/core';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const quiet = { captureContext: false, handleExit: false } as const;

/** A path over 1 KB made of every character class issue 3 names. */
const LONG_KEY = `metrics/${'a b-c@d:e=f[g]h/µ✓ 漢字 🚀👩‍🔬/'.repeat(40)}end`;

const FLOATS = [
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -0,
  0,
  0.1 + 0.2,
  5e-324,
  2.2250738585072014e-308,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  2 ** 53 + 2,
  1 / 3,
  -1e-300,
];

describe('exact values', () => {
  it('keeps keys over 1 KB with / - @ : = [ ] space, unicode and emoji, in fields, series and the journal', async () => {
    expect(Buffer.byteLength(LONG_KEY)).toBeGreaterThan(1024);
    const dir = tempDir();
    const store = Store.open({ dir });
    const run = await initRun({ project: 'p', store, ...quiet });
    run.set(LONG_KEY, 'value');
    run.log(LONG_KEY, 1.5, { step: 7 });
    await run.stop();
    const ops = store.journal.readAfter(0 as Seq, { maxEntries: 1000, maxPoints: 1000 });
    await store.close();

    const db = openReadOnly(dir);
    expect(getRun(db, run.id).fields).toEqual([{ path: LONG_KEY, type: 'string', value: 'value' }]);
    expect(readSeries(db, run.id, LONG_KEY)).toEqual([
      { step: 7, ts: expect.any(Number), value: 1.5 },
    ]);
    const sql = runQuery(
      db,
      'SELECT path FROM series_stats WHERE run_id = ?'.replace('?', `'${run.id}'`),
    );
    expect(sql.rows).toEqual([[LONG_KEY]]);
    db.close();
    const paths = ops.flatMap((e) =>
      e.op.kind === 'field.set'
        ? [e.op.path]
        : e.op.kind === 'points'
          ? e.op.series.map((s) => s.path)
          : [],
    );
    expect(paths).toEqual([LONG_KEY, LONG_KEY]);
  });

  it('keeps bigints beyond 2^53 exactly and refuses to round one into a float series', async () => {
    const dir = tempDir();
    const run = await initRun({ project: 'p', dir, ...quiet });
    const bigs = { a: 2n ** 53n + 1n, b: -(2n ** 63n) - 1n, c: 10n ** 30n + 7n };
    run.set('big', bigs);
    expect(() => run.log('m', 5n as never)).toThrow(/bigint would be rounded/);
    await run.stop();

    const db = openReadOnly(dir);
    const fields = Object.fromEntries(getRun(db, run.id).fields.map((f) => [f.path, f.value]));
    expect(fields).toEqual({ 'big/a': bigs.a, 'big/b': bigs.b, 'big/c': bigs.c });
    const text = runQuery(db, "SELECT value FROM fields_view WHERE path = 'big/c'").rows[0]?.[0];
    expect(text).toBe('1000000000000000000000000000007');
    const json = runQuery(db, `SELECT json_extract(fields, '$."big/a"') FROM fields_json_view`);
    expect(json.rows[0]?.[0]).toBe(Number(2n ** 53n + 1n));
    const raw = runQuery(db, `SELECT fields FROM fields_json_view`).rows[0]?.[0] as string;
    expect(raw).toContain('"big/c":1000000000000000000000000000007');
    db.close();
  });

  it('keeps strings with any unicode, NUL and astral characters, and refuses lone surrogates', async () => {
    const dir = tempDir();
    const run = await initRun({ project: 'p', dir, ...quiet });
    const texts = ['a\u0000b', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '\u{10FFFF}', 'שלום עולם', 'e\u0301', '', ' \t\n\r '];
    for (const [i, text] of texts.entries()) {
      run.set(`text/${i}`, text);
      run.log('logs', text, { step: i });
    }
    const lone = 'bad \uD800 half';
    expect(() => run.set('x', lone)).toThrow(ValidationError);
    expect(() => run.log('logs', lone)).toThrow(/lone surrogate/);
    expect(() => run.set(`key/${lone}`, 1)).toThrow(/lone surrogate/);
    expect(() => run.addTags(lone)).toThrow(/lone surrogate/);
    await run.stop();

    const db = openReadOnly(dir);
    const fields = getRun(db, run.id).fields;
    expect(texts.map((_, i) => fields.find((f) => f.path === `text/${i}`)?.value)).toEqual(texts);
    expect(readSeries(db, run.id, 'logs').map((p) => p.value)).toEqual(texts);
    db.close();
  });

  it('keeps every float64 exactly, row by row and through packed blocks', async () => {
    const dir = tempDir();
    const run = await initRun({ project: 'p', dir, logMode: 'batched', ...quiet });
    for (const [i, value] of FLOATS.entries()) {
      run.set(`f/${i}`, value);
      run.log('few', value, { step: i });
    }
    // Enough points for the writer to pack blocks, with every special value among them.
    const many: number[] = [];
    let seed = 7;
    for (let i = 0; i < 20_000; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const value = i % 97 === 0 ? (FLOATS[(i / 97) % FLOATS.length] as number) : seed / 3 ** 19;
      many.push(value);
      run.log('many', value, { step: i });
    }
    await run.stop();

    const db = openReadOnly(dir);
    const fields = getRun(db, run.id).fields;
    for (const [i, value] of FLOATS.entries()) {
      expect(Object.is(fields.find((f) => f.path === `f/${i}`)?.value, value)).toBe(true);
    }
    const few = readSeries(db, run.id, 'few');
    for (const [i, value] of FLOATS.entries()) expect(Object.is(few[i]?.value, value)).toBe(true);
    expect(db.prepare('SELECT count(*) FROM series_blocks').pluck().get()).toBeGreaterThan(0);
    const columns = readSeriesColumns(db, run.id, 'many');
    expect(columns.values?.length).toBe(many.length);
    for (const [i, value] of many.entries()) {
      if (!Object.is(columns.values?.[i], value)) throw new Error(`point ${i} read back changed`);
    }
    db.close();
  });

  it('answers "best run by val_accuracy" with the documented query when some runs have NaN', async () => {
    const dir = tempDir();
    const store = Store.open({ dir });
    const curves: Record<string, number[]> = {
      good: [0.5, 0.9, 0.8],
      ok: [0.7, 0.85],
      diverged: [0.6, Number.NaN, Number.NaN],
      dead: [Number.NaN, Number.NaN],
    };
    const ids: Record<string, string> = {};
    for (const [name, values] of Object.entries(curves)) {
      const run = await initRun({ project: 'p', name, store, ...quiet });
      for (const [i, v] of values.entries()) run.log('metrics/val_accuracy', v, { step: i });
      await run.stop();
      ids[name] = run.id;
    }
    await store.close();

    const db = openReadOnly(dir);
    const best = runQuery(
      db,
      `SELECT r.name, s.max AS best_val_accuracy
       FROM series_stats s JOIN runs_view r USING (run_id)
       WHERE s.path = 'metrics/val_accuracy' AND s.max IS NOT NULL
       ORDER BY s.max DESC LIMIT 10`,
    );
    expect(best.rows).toEqual([
      ['good', 0.9],
      ['ok', 0.85],
      ['diverged', 0.6],
    ]);
    const healthy = runQuery(
      db,
      `SELECT r.name FROM series_stats s JOIN runs_view r USING (run_id)
       WHERE s.path = 'metrics/val_accuracy' AND s.nan_count = 0 AND s.max IS NOT NULL
       ORDER BY s.max DESC LIMIT 10`,
    );
    expect(healthy.rows).toEqual([['good'], ['ok']]);
    const small = runQuery(
      db,
      "SELECT count(*) FROM points_view WHERE path = 'metrics/val_accuracy' AND value < 0.65",
    );
    expect(small.rows).toEqual([[2]]);
    db.close();
  });

  it('shows NaN, infinities and -0 in SQL the way docs/store-schema.md says', async () => {
    const dir = tempDir();
    const run = await initRun({ project: 'p', dir, ...quiet });
    const specials = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0.1];
    for (const [i, v] of specials.entries()) {
      run.log('m', v, { step: i });
      run.set(`f/${i}`, v);
    }
    await run.stop();

    const db = openReadOnly(dir);
    const points = runQuery(db, 'SELECT value, is_nan, text FROM points_view ORDER BY step').rows;
    expect(points).toEqual([
      [null, 1, 'NaN'],
      [Number.POSITIVE_INFINITY, 0, 'Infinity'],
      [Number.NEGATIVE_INFINITY, 0, '-Infinity'],
      [0, 0, '-0'],
      [0.1, 0, '0.1'],
    ]);
    const fields = runQuery(db, 'SELECT type, value, num FROM fields_view ORDER BY path').rows;
    expect(fields).toEqual([
      ['float', 'NaN', null],
      ['float', 'Infinity', Number.POSITIVE_INFINITY],
      ['float', '-Infinity', Number.NEGATIVE_INFINITY],
      ['float', '-0', 0],
      ['float', '0.1', 0.1],
    ]);
    const stats = runQuery(db, 'SELECT count, nan_count, min, max, last FROM series_stats').rows;
    expect(stats).toEqual([[5, 1, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, 0.1]]);
    const json = JSON.parse(
      runQuery(db, 'SELECT fields FROM fields_json_view').rows[0]?.[0] as string,
    );
    expect(json).toEqual({
      'f/0': 'NaN',
      'f/1': 'Infinity',
      'f/2': '-Infinity',
      'f/3': -0,
      'f/4': 0.1,
    });
    db.close();
  });
});
