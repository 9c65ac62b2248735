import {
  initRun,
  MAX_POINTS_PER_ENTRY,
  openReadOnly,
  readSeriesColumns,
  runQuery,
  type Seq,
  Store,
  verifyStore,
} from '@tidemark/core';
import type Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const quiet = { captureContext: false, handleExit: false } as const;

/** The series straight from its rows, ordered as readers promise: by step, then as logged. */
function fromRows(db: Database.Database, runId: string, path: string): number[][] {
  return db
    .prepare(
      `SELECT p.step, p.ts, CASE p.flag WHEN 1 THEN 'NaN' WHEN 2 THEN '-0' ELSE p.value END
       FROM points p JOIN series s ON s.id = p.series_id
       WHERE s.run_id = ? AND s.path = ? ORDER BY p.step, p.rowid`,
    )
    .raw()
    .all(runId, path) as number[][];
}

function asRows(db: Database.Database, runId: string, path: string): unknown[][] {
  const c = readSeriesColumns(db, runId, path);
  return Array.from(c.steps, (step, i) => {
    const v = c.values?.[i] as number;
    return [step, c.timestamps[i], Number.isNaN(v) ? 'NaN' : Object.is(v, -0) ? '-0' : v];
  });
}

describe('reading series', () => {
  it('reads packed blocks and the rows after them exactly as the rows say, whatever the order', async () => {
    const dir = tempDir();
    let now = 1_700_000_000_000;
    const store = Store.open({ dir, clock: () => now });
    const run = await initRun({ project: 'p', store, logMode: 'batched', ...quiet });
    for (let i = 0; i < 30_000; i++) {
      // Whole and fractional timestamps, steps that jump back, NaN and -0 among the values.
      now += i % 1000 === 0 ? 0.25 : 1;
      const step = i % 5000 === 4999 ? i - 100 : i;
      const value = i % 777 === 0 ? Number.NaN : i % 555 === 0 ? -0 : Math.sin(i) * 1e3;
      run.log('m', value, { step });
    }
    await run.stop();
    const blocks = store.db.prepare('SELECT count(*) FROM series_blocks').pluck().get();
    await store.close();
    expect(blocks).toBeGreaterThanOrEqual(3);

    const db = openReadOnly(dir);
    expect(asRows(db, run.id, 'm')).toEqual(fromRows(db, run.id, 'm'));
    db.close();
  });

  it('keeps reads exact when two processes write one series and blocks cannot be packed from memory', async () => {
    const dir = tempDir();
    const a = await initRun({
      project: 'p',
      dir,
      logMode: 'batched',
      maxBufferedPoints: 1000,
      ...quiet,
    });
    const b = await initRun({
      project: 'p',
      dir,
      resume: a.id,
      logMode: 'batched',
      maxBufferedPoints: 700,
      ...quiet,
    });
    for (let i = 0; i < 12_000; i++) {
      a.log('shared', i, { step: i * 2 });
      b.log('shared', -i, { step: i * 2 + 1 });
    }
    await a.stop();
    await b.stop();
    // A third session packs again from where the series stands.
    const c = await initRun({ project: 'p', dir, resume: a.id, logMode: 'batched', ...quiet });
    for (let i = 0; i < 20_000; i++) c.log('shared', 0.5, { step: 100_000 + i });
    await c.stop();

    const db = openReadOnly(dir);
    expect(asRows(db, a.id, 'shared')).toEqual(fromRows(db, a.id, 'shared'));
    db.close();
    const report = await verifyStore({ dir });
    expect(report.findings.filter((f) => f.severity !== 'info')).toEqual([]);
  });

  it('keeps every series summary equal to what its points say, across modes, resumes and writers', async () => {
    const dir = tempDir();
    const store = Store.open({ dir });
    const runs: string[] = [];
    for (const logMode of ['durable', 'batched'] as const) {
      const run = await initRun({ project: 'p', store, logMode, maxBufferedPoints: 97, ...quiet });
      runs.push(run.id);
      let seed = logMode.length;
      for (let i = 0; i < 3000; i++) {
        seed = (seed * 48271) % 2147483647;
        const roll = seed % 100;
        const value = roll < 3 ? Number.NaN : roll < 5 ? Number.POSITIVE_INFINITY : seed / 1e7;
        run.log(`s${seed % 7}`, value, { step: seed % 500 });
        if (roll === 50) run.log('text', `line ${i}`);
      }
      await run.stop();
      const again = await initRun({ project: 'p', store, resume: run.id, logMode, ...quiet });
      again.log('s1', -1, { step: -5 });
      again.log('s2', Number.NaN, { step: 10_000 });
      await again.stop();
    }
    await store.close();

    const db = openReadOnly(dir);
    const mismatches = runQuery(
      db,
      `SELECT s.run_id, s.path FROM series_stats s
       JOIN (SELECT run_id, path, count(*) AS n, sum(is_nan) AS nans, min(value) AS lo,
                    max(value) AS hi, min(step) AS first, max(step) AS last
             FROM points_view GROUP BY run_id, path) a USING (run_id, path)
       WHERE s.count <> a.n OR s.nan_count <> a.nans OR s.min IS NOT a.lo OR s.max IS NOT a.hi
          OR s.first_step <> a.first OR s.last_step <> a.last`,
    );
    expect(mismatches.rows).toEqual([]);
    const last = runQuery(
      db,
      `SELECT s.last IS (SELECT CASE WHEN p.type = 'float' THEN p.value ELSE p.text END
                           FROM points_view p WHERE p.run_id = s.run_id AND p.path = s.path
                           ORDER BY p.step DESC LIMIT 1) FROM series_stats s`,
    );
    expect(last.rows.every(([same]) => same === 1)).toBe(true);
    expect(runQuery(db, "SELECT last_is_nan FROM series_stats WHERE path = 's2'").rows).toEqual([
      [1],
      [1],
    ]);
    db.close();
  });
});

describe('the journal', () => {
  it('covers durable points once they are read, each exactly once, in entries of one run', async () => {
    const dir = tempDir();
    const first = Store.open({ dir });
    const second = Store.open({ dir });
    const a = await initRun({ project: 'p', store: first, ...quiet });
    const b = await initRun({
      project: 'p',
      store: second,
      logMode: 'batched',
      maxBufferedPoints: 30,
      ...quiet,
    });
    const pending = (): unknown =>
      first.db.prepare("SELECT count(*) FROM journal WHERE kind = 'points'").pluck().get();
    a.log('a', 0, { step: 0 });
    expect(pending()).toBe(0);
    // A batch commit seals what durable writers left unsealed along with its own points.
    for (let i = 1; i < 25_000; i++) {
      if (i % 3 === 0) b.log('b', i - 3, { step: i - 3 });
      a.log('a', i, { step: i });
    }
    b.log('b', 24_999, { step: 24_999 });

    await a.stop();
    await b.stop();
    const entries = first.journal.readAfter(0 as Seq, { maxEntries: 1e6, maxPoints: 1e9 });
    await first.close();
    await second.close();

    const points = entries.filter((e) => e.op.kind === 'points');
    for (const entry of points) {
      expect(entry.pointCount).toBeLessThanOrEqual(MAX_POINTS_PER_ENTRY);
      if (entry.op.kind !== 'points') continue;
      const carried = entry.op.series.reduce((sum, s) => sum + s.points.length, 0);
      expect(carried).toBe(entry.pointCount);
      expect(entry.op.series.map((s) => s.path)).toEqual([entry.op.runId === a.id ? 'a' : 'b']);
    }
    const steps = (run: string): number[] =>
      points
        .flatMap((e) => (e.op.kind === 'points' && e.op.runId === run ? e.op.series : []))
        .flatMap((s) => s.points.map((p) => p[0]))
        .sort((x, y) => x - y);
    expect(steps(a.id)).toEqual(Array.from({ length: 25_000 }, (_, i) => i));
    expect(steps(b.id)).toEqual(Array.from({ length: 8334 }, (_, i) => i * 3));
    // The run's points come before the state that ends it.
    const endOfA = entries.findIndex((e) => e.op.kind === 'run.state' && e.op.runId === a.id);
    const lastPointOfA = entries.findLastIndex(
      (e) => e.op.kind === 'points' && e.op.runId === a.id,
    );
    expect(lastPointOfA).toBeLessThan(endOfA);
  });
});
