import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  getRun,
  initRun,
  openReadOnly,
  readSeries,
  runQuery,
  Store,
  ValidationError,
} from '@tidemark/core';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const quiet = { captureContext: false, handleExit: false } as const;

describe('a run', () => {
  it('records fields, nested objects, series, tags and state', async () => {
    const dir = tempDir();
    const run = await initRun({
      project: 'team/mnist',
      name: 'baseline',
      tags: ['cnn'],
      dir,
      ...quiet,
    });
    run.set('parameters', { lr: 0.001, optimizer: { name: 'adam', beta: 0.9 }, epochs: 5 });
    run.log('metrics/loss', 0.5);
    run.log('metrics/loss', 0.25);
    run.log('logs/stdout', 'epoch 1 done');
    run.addTags('best', 'cnn');
    await run.stop();

    const db = openReadOnly(dir);
    const detail = getRun(db, run.id);
    expect(detail.state).toBe('finished');
    expect(detail.tags).toEqual(['best', 'cnn']);
    expect(detail.fields.map((f) => [f.path, f.value])).toEqual([
      ['parameters/epochs', 5],
      ['parameters/lr', 0.001],
      ['parameters/optimizer/beta', 0.9],
      ['parameters/optimizer/name', 'adam'],
    ]);
    expect(readSeries(db, run.id, 'metrics/loss').map((p) => [p.step, p.value])).toEqual([
      [0, 0.5],
      [1, 0.25],
    ]);
    db.close();
  });

  it('keeps NaN, infinities, -0 and every out-of-order or repeated step', async () => {
    const dir = tempDir();
    const run = await initRun({ project: 'p', dir, ...quiet });
    const logged: Array<[number, number]> = [
      [3, Number.NaN],
      [1, Number.POSITIVE_INFINITY],
      [2, Number.NEGATIVE_INFINITY],
      [2, -0],
      [0, 0.1 + 0.2],
    ];
    for (const [step, value] of logged) run.log('m', value, { step });
    await run.stop();

    const db = openReadOnly(dir);
    const points = readSeries(db, run.id, 'm');
    expect(points).toHaveLength(5);
    const byStep = points.map((p) => [p.step, p.value]);
    expect(byStep.map(([s]) => s)).toEqual([0, 1, 2, 2, 3]);
    expect(Object.is(byStep[3]?.[1], -0)).toBe(true);
    expect(Number.isNaN(byStep[4]?.[1])).toBe(true);
    expect(byStep[0]?.[1]).toBe(0.30000000000000004);
    db.close();
  });

  it('answers "best run by max accuracy" without counting NaN as a number', async () => {
    const dir = tempDir();
    const store = Store.open({ dir });
    const ids: Record<string, string> = {};
    for (const [name, values] of [
      ['good', [0.8, 0.9]],
      ['diverged', [0.5, Number.NaN]],
      ['ok', [0.7, 0.85]],
    ] as const) {
      const run = await initRun({ project: 'p', name, store, ...quiet });
      for (const [i, v] of values.entries()) run.log('metrics/val_acc', v, { step: i });
      await run.stop();
      ids[name] = run.id;
    }
    await store.close();

    const db = openReadOnly(dir);
    const result = runQuery(
      db,
      `SELECT r.name, s.max FROM series_stats s JOIN runs_view r USING (run_id)
       WHERE s.path = 'metrics/val_acc' ORDER BY s.max DESC LIMIT 2`,
    );
    expect(result.rows).toEqual([
      ['good', 0.9],
      ['ok', 0.85],
    ]);
    const nan = runQuery(
      db,
      "SELECT count(*) FROM points_view WHERE path = 'metrics/val_acc' AND value > 0.0 AND is_nan = 0",
    );
    expect(nan.rows[0]?.[0]).toBe(5);
    db.close();
  });

  it('refuses bad input with a hint and stores nothing of it', async () => {
    const dir = tempDir();
    const run = await initRun({ project: 'p', dir, ...quiet });
    expect(() => run.set('a//b', 1)).toThrow(ValidationError);
    expect(() => run.set('x', null as never)).toThrow(/null/);
    expect(() => run.log('m', 1, { step: Number.NaN })).toThrow(/finite/);
    run.log('m', 1);
    expect(() => run.log('m', 'text')).toThrow(/holds float/);
    await expect(initRun({ project: 'bad project!', dir })).rejects.toThrow(/not a valid project/);
    await expect(initRun({ project: 'p', dir, projct: 'x' } as never)).rejects.toThrow(
      /no option 'projct'/,
    );
    await run.stop();
    expect(() => run.log('m', 2)).toThrow(/has ended/);

    const db = openReadOnly(dir);
    expect(getRun(db, run.id).fields).toEqual([]);
    expect(readSeries(db, run.id, 'm')).toHaveLength(1);
    db.close();
  });

  it('stores an artifact logged twice once, and keeps it after the source is deleted', async () => {
    const dir = tempDir();
    const source = join(tempDir(), 'model.bin');
    const bytes = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
    writeFileSync(source, bytes);

    const run = await initRun({ project: 'p', dir, ...quiet });
    await run.upload('model/a', source);
    await run.upload('model/b', source);
    writeFileSync(source, 'overwritten');
    await run.stop();

    const store = Store.open({ dir });
    const out = join(tempDir(), 'restored.bin');
    const files = runQuery(store.db, 'SELECT manifest FROM files ORDER BY path').rows;
    expect(files[0]?.[0]).toBe(files[1]?.[0]);
    await store.objects.restore(files[0]?.[0] as never, out);
    expect(Buffer.compare((await import('node:fs')).readFileSync(out), bytes)).toBe(0);
    const objectCount = readdirSync(join(dir, 'objects'), { recursive: true }).filter((f) =>
      String(f).includes('-'),
    ).length;
    const manifest = await store.objects.readManifest(files[0]?.[0] as never);
    expect(objectCount).toBe((manifest.type === 'file' ? manifest.chunks.length : 0) + 1);
    await store.close();
  });
});
