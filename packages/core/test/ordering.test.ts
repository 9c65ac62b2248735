import {
  getRun,
  initRun,
  NotFoundError,
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

describe('ordering, resume and fork', () => {
  it('keeps every point when steps arrive out of order, repeat, or go back after a resume', async () => {
    const dir = tempDir();
    const first = await initRun({ project: 'p', dir, ...quiet });
    for (let step = 0; step < 10; step++) first.log('loss', step, { step });
    first.log('loss', 100, { step: 3 });
    await first.stop();

    // Resumed from a checkpoint taken at step 5: steps 5..9 are logged a second time.
    const again = await initRun({ project: 'p', dir, resume: first.id, ...quiet });
    for (let step = 5; step < 15; step++) again.log('loss', 1000 + step, { step });
    await again.stop();

    const db = openReadOnly(dir);
    const points = readSeries(db, first.id, 'loss');
    expect(points).toHaveLength(21);
    expect(points.map((p) => [p.step, p.value])).toEqual([
      [0, 0],
      [1, 1],
      [2, 2],
      [3, 3],
      [3, 100],
      [4, 4],
      ...[5, 6, 7, 8, 9].flatMap((s) => [
        [s, s],
        [s, 1000 + s],
      ]),
      ...[10, 11, 12, 13, 14].map((s) => [s, 1000 + s]),
    ]);
    const stats = runQuery(db, 'SELECT count, first_step, last_step, last FROM series_stats').rows;
    expect(stats).toEqual([[21, 0, 14, 1014]]);
    expect(getRun(db, first.id).state).toBe('finished');
    db.close();
  });

  it('counts automatic steps on from the highest step recorded when a run is resumed', async () => {
    const dir = tempDir();
    const first = await initRun({ project: 'p', dir, ...quiet });
    for (const v of [1, 2, 3]) first.log('m', v);
    await first.stop();
    const again = await initRun({ project: 'p', dir, resume: first.id, ...quiet });
    for (const v of [4, 5]) again.log('m', v);
    await again.stop();

    const db = openReadOnly(dir);
    expect(readSeries(db, first.id, 'm').map((p) => [p.step, p.value])).toEqual([
      [0, 1],
      [1, 2],
      [2, 3],
      [3, 4],
      [4, 5],
    ]);
    db.close();
  });

  it("records a fork's parent and step, and reads the parent's points up to it before its own", async () => {
    const dir = tempDir();
    const store = Store.open({ dir });
    const parent = await initRun({ project: 'p', store, ...quiet });
    for (let step = 0; step < 10; step++) parent.log('loss', step / 10, { step });
    parent.log('notes', 'parent');
    await parent.stop();

    const fork = await initRun({ project: 'p', store, forkOf: parent.id, forkStep: 4, ...quiet });
    for (let step = 5; step < 8; step++) fork.log('loss', 1 + step / 10, { step });
    fork.log('loss', 9.9);
    await fork.stop();
    const grandchild = await initRun({
      project: 'p',
      store,
      forkOf: fork.id,
      forkStep: 6,
      ...quiet,
    });
    grandchild.log('loss', 7.7);
    await grandchild.stop();
    const created = store.journal
      .readAfter(0 as Seq, { maxEntries: 10_000, maxPoints: 1e6 })
      .map((e) => e.op)
      .find((op) => op.kind === 'run.create' && op.runId === fork.id);
    await store.close();
    expect(created).toMatchObject({ forkOf: parent.id, forkStep: 4 });

    const db = openReadOnly(dir);
    expect(getRun(db, fork.id)).toMatchObject({ forkOf: parent.id, forkStep: 4 });
    expect(readSeries(db, fork.id, 'loss').map((p) => p.step)).toEqual([5, 6, 7, 8]);
    const inherited = readSeries(db, fork.id, 'loss', { includeForkParents: true });
    expect(inherited.map((p) => [p.step, p.value])).toEqual([
      [0, 0],
      [1, 0.1],
      [2, 0.2],
      [3, 0.3],
      [4, 0.4],
      [5, 1.5],
      [6, 1.6],
      [7, 1.7],
      [8, 9.9],
    ]);
    const deep = readSeriesColumns(db, grandchild.id, 'loss', { includeForkParents: true });
    expect([...deep.steps]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(deep.sources).toEqual([parent.id, fork.id, grandchild.id]);
    expect([...(deep.sourceIndex ?? [])]).toEqual([0, 0, 0, 0, 0, 1, 1, 2]);
    const notes = readSeries(db, fork.id, 'notes', { includeForkParents: true });
    expect(notes.map((p) => p.value)).toEqual(['parent']);
    expect(() => readSeries(db, fork.id, 'notes')).toThrow(NotFoundError);

    const view = runQuery(
      db,
      `SELECT step, source_run_id = '${parent.id}' FROM lineage_points_view
       WHERE run_id = '${grandchild.id}' AND path = 'loss' ORDER BY step, depth DESC`,
    ).rows;
    expect(view.map(([step]) => step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const lineage = runQuery(
      db,
      `SELECT ancestor_id, depth, until_step FROM run_lineage WHERE run_id = '${grandchild.id}' ORDER BY depth`,
    ).rows;
    expect(lineage).toEqual([
      [grandchild.id, 0, null],
      [fork.id, 1, 6],
      [parent.id, 2, 4],
    ]);
    db.close();
  });

  it("forks from the parent's highest step when no forkStep is given, and refuses a missing parent", async () => {
    const dir = tempDir();
    const parent = await initRun({ project: 'p', dir, ...quiet });
    for (let step = 0; step < 6; step++) parent.log('loss', step, { step });
    await parent.stop();
    const fork = await initRun({ project: 'p', dir, forkOf: parent.id, ...quiet });
    fork.log('loss', 42);
    await fork.stop();

    const db = openReadOnly(dir);
    expect(getRun(db, fork.id).forkStep).toBe(5);
    expect(readSeries(db, fork.id, 'loss')).toEqual([
      { step: 6, ts: expect.any(Number), value: 42 },
    ]);
    db.close();
    await expect(
      initRun({ project: 'p', dir, forkOf: '0'.repeat(26), ...quiet }),
    ).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      initRun({ project: 'p', dir, forkOf: parent.id, forkStep: Number.NaN, ...quiet }),
    ).rejects.toBeInstanceOf(ValidationError);
  });

  it('stamps points with the injected clock and loses nothing when it jumps backwards', async () => {
    const dir = tempDir();
    const times = [10_000, 10_000, 20_000, 30_000, 5_000, 4_000, 3_000, 2_000, 1_000];
    let now = 10_000;
    const clock = (): number => now;
    const store = Store.open({ dir, clock });
    const run = await initRun({ project: 'p', store, ...quiet });
    for (const [i, t] of times.entries()) {
      now = t;
      run.log('m', i, { step: i });
      run.set('latest', i);
    }
    await run.stop();
    const ops = store.journal.readAfter(0 as Seq, { maxEntries: 10_000, maxPoints: 1e6 });
    await store.close();

    const db = openReadOnly(dir);
    expect(readSeries(db, run.id, 'm').map((p) => [p.value, p.ts])).toEqual(
      times.map((t, i) => [i, t]),
    );
    expect(getRun(db, run.id).fields).toEqual([{ path: 'latest', type: 'int', value: 8 }]);
    db.close();
    // A server orders field writes by `at`: it must never go back, or an older value would win.
    const stamps = ops.map((e) => e.op.at);
    expect(stamps).toEqual([...stamps].sort((a, b) => a - b));
    const sets = ops.filter((e) => e.op.kind === 'field.set');
    expect(sets.at(-1)?.op).toMatchObject({ value: '8' });
  });
});
