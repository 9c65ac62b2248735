import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  initRun,
  listRuns,
  openReadOnly,
  readSeries,
  repairStore,
  type Seq,
  Store,
  StoreError,
  scanWal,
  verifyStore,
} from '@tidemark/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { runScript } from './child.js';
import { tempDir } from './helpers.js';

const quiet = { captureContext: false, handleExit: false } as const;
const PATHS = ['metrics/loss', 'metrics/acc', 'metrics/lr'];
const STEPS = 6000;

/** The value every test store logs: recovered points must equal it exactly. */
const valueAt = (run: number, path: number, step: number): number =>
  run * 1e6 + path * 1e4 + step / 7;

function copyStore(from: string): string {
  const to = tempDir();
  for (const name of ['store.db', 'store.db-wal']) {
    if (existsSync(join(from, name))) copyFileSync(join(from, name), join(to, name));
  }
  mkdirSync(join(to, 'objects'));
  return to;
}

/** Every point the store still holds, checked against what was logged. */
function readablePoints(dir: string): number {
  const db = openReadOnly(dir);
  try {
    let count = 0;
    for (const run of listRuns(db)) {
      const index = Number(run.name?.slice(4));
      for (const [p, path] of PATHS.entries()) {
        let points: ReturnType<typeof readSeries> = [];
        try {
          points = readSeries(db, run.id, path);
        } catch {
          continue;
        }
        for (const point of points) {
          if (point.value !== valueAt(index, p, point.step)) {
            throw new Error(`run ${index} ${path} step ${point.step} came back changed`);
          }
        }
        count += points.length;
      }
    }
    return count;
  } finally {
    db.close();
  }
}

describe('a damaged store', () => {
  let pristine = '';
  let total = 0;

  beforeAll(async () => {
    pristine = tempDir();
    const store = Store.open({ dir: pristine });
    for (let r = 0; r < 3; r++) {
      const run = await initRun({
        project: 'p',
        name: `run-${r}`,
        store,
        logMode: 'batched',
        ...quiet,
      });
      run.set('parameters', { lr: 0.1 * r, notes: 'ü'.repeat(3000) });
      for (let step = 0; step < STEPS; step++) {
        for (const [p, path] of PATHS.entries()) run.log(path, valueAt(r, p, step), { step });
      }
      await run.stop();
    }
    await store.close();
    total = 3 * PATHS.length * STEPS;
    rmSync(join(pristine, 'objects'), { recursive: true });
  });

  const size = (): number => statSync(join(pristine, 'store.db')).size;
  const cuts: Array<[string, () => number]> = [
    ['to nothing', () => 0],
    ['inside the header', () => 50],
    ['after the first page', () => 4096],
    ['at a quarter', () => Math.floor(size() * 0.25) + 123],
    ['at half', () => Math.floor(size() / 2)],
    ['at three quarters', () => Math.floor(size() * 0.75) + 7],
    ['one page short', () => size() - 4096],
    ['one byte short', () => size() - 1],
  ];

  for (const [where, offset] of cuts) {
    it(`cut ${where}: opens with a clear error, verify says what is wrong, repair keeps what can be read`, async () => {
      const dir = copyStore(pristine);
      truncateSync(join(dir, 'store.db'), offset());
      const cutBytes = readFileSync(join(dir, 'store.db'));

      const opened = (() => {
        try {
          Store.open({ dir }).close();
          return undefined;
        } catch (error) {
          return error;
        }
      })();
      expect(opened).toBeInstanceOf(StoreError);
      expect((opened as StoreError).code).toMatch(/^(store_corrupt|store_database_missing)$/);
      expect(readFileSync(join(dir, 'store.db')).equals(cutBytes)).toBe(true);

      const report = await verifyStore({ dir });
      expect(report.ok).toBe(false);
      expect(report.findings.some((f) => f.severity === 'error')).toBe(true);

      let repaired: ReturnType<typeof repairStore>;
      try {
        repaired = repairStore({ dir });
      } catch (error) {
        // Nothing readable (the header or schema is gone): the store is left as it was.
        expect((error as StoreError).code).toBe('store_unrecoverable');
        expect(readFileSync(join(dir, 'store.db')).equals(cutBytes)).toBe(true);
        expect(offset()).toBeLessThanOrEqual(4096);
        return;
      }
      expect(readFileSync(repaired.keptAs).equals(cutBytes)).toBe(true);
      const after = await verifyStore({ dir });
      expect(
        after.findings.filter((f) => f.severity !== 'info'),
        JSON.stringify(after.findings),
      ).toEqual([]);
      const kept = readablePoints(dir);
      expect(kept + repaired.lostPoints).toBe(total);
      if (offset() >= size() * 0.7) expect(kept).toBeGreaterThan(total * 0.6);

      // The repaired store takes new writes, and its journal reaches all of them.
      const store = Store.open({ dir });
      const run = await initRun({ project: 'p', name: 'run-9', store, ...quiet });
      run.log(PATHS[0] as string, valueAt(9, 0, 0), { step: 0 });
      await run.stop();
      const ops = store.journal.readAfter(0 as Seq, { maxEntries: 1e6, maxPoints: 1e9 });
      await store.close();
      expect(ops.some((e) => e.op.kind === 'points' && e.op.runId === run.id)).toBe(true);
      expect(readablePoints(dir)).toBe(kept + 1);
    });
  }

  it('zeroed pages in the middle: verify finds them and repair keeps the rows around them', async () => {
    const dir = copyStore(pristine);
    const fd = openSync(join(dir, 'store.db'), 'r+');
    writeSync(fd, Buffer.alloc(4096 * 8), 0, 4096 * 8, Math.floor(size() / 8192) * 4096);
    closeSync(fd);

    const report = await verifyStore({ dir });
    expect(report.findings.map((f) => f.code)).toContain('integrity');
    // Reading the damaged pages fails with a StoreError that says what to do, never a raw one.
    const errors: unknown[] = [];
    const db = openReadOnly(dir);
    for (const run of listRuns(db)) {
      for (const path of PATHS) {
        try {
          readSeries(db, run.id, path);
        } catch (error) {
          errors.push(error);
        }
      }
    }
    db.close();
    expect(errors.length).toBeGreaterThan(0);
    for (const error of errors) expect((error as StoreError).code).toBe('store_corrupt');

    const repaired = repairStore({ dir });
    const kept = readablePoints(dir);
    expect(kept).toBeGreaterThan(total * 0.8);
    expect(kept + repaired.lostPoints).toBe(total);
  });

  it('cut WAL: opens with every commit before the cut, and verify reports the lost tail first', async () => {
    const dir = tempDir();
    const script = runScript(`
      import { initRun } from '@tidemark/core';
      const run = await initRun({ project: 'p', dir: ${JSON.stringify(dir)}, captureContext: false });
      for (let i = 0; i < 150; i++) { run.log('m', i / 7, { step: i }); }
      process.stdout.write('done\\n');
      process.kill(process.pid, 'SIGKILL');
    `);
    await script.exited;
    expect(script.lines).toContain('done');
    const wal = scanWal(join(dir, 'store.db-wal'));
    expect(wal.commits).toBeGreaterThan(100);
    const frame = wal.pageSize + 24;

    const cases: Array<[string, number, string | undefined]> = [
      [
        'inside a frame',
        32 + frame * Math.floor(wal.committedFrames / 2) + 100,
        'wal_tail_discarded',
      ],
      ['inside the header', 20, 'wal_header_damaged'],
      ['not at all', wal.size, undefined],
    ];
    for (const [where, length, code] of cases) {
      const copy = copyStore(dir);
      truncateSync(join(copy, 'store.db-wal'), length);
      const report = await verifyStore({ dir: copy });
      expect(
        report.findings.map((f) => f.code).filter((c) => c.startsWith('wal')),
        where,
      ).toEqual(code === undefined ? [] : [code]);

      const store = Store.open({ dir: copy });
      expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
      await store.close();
      const db = openReadOnly(copy);
      const runId = listRuns(db)[0]?.id as string;
      let points: ReturnType<typeof readSeries> = [];
      try {
        points = readSeries(db, runId, 'm');
      } catch {
        // The cut took the series with it.
      }
      db.close();
      // What survives is exactly the first commits, in order, with their exact values.
      expect(
        points.map((p) => p.step),
        where,
      ).toEqual(points.map((_, i) => i));
      for (const p of points) expect(p.value).toBe(p.step / 7);
      if (code === undefined) expect(points).toHaveLength(150);
      if (code === 'wal_tail_discarded') expect(points.length).toBeLessThan(150);
    }
  });

  it('is never silently re-created empty when its database is gone', async () => {
    const dir = copyStore(pristine);
    rmSync(join(dir, 'store.db'));
    expect(() => Store.open({ dir })).toThrow(/objects\/ of a store but no store\.db/);
    writeFileSync(join(dir, 'store.db'), '');
    expect(() => Store.open({ dir })).toThrow(StoreError);
    expect(() => openReadOnly(dir)).toThrow(/no tidemark store/);
    expect((await verifyStore({ dir })).findings.map((f) => f.code)).toEqual(['store_missing']);

    rmSync(join(dir, 'store.db'));
    writeFileSync(join(dir, 'store.db-wal'), 'left behind');
    const store = Store.open({ dir, recreate: true });
    await store.close();
    expect(existsSync(join(dir, 'store.db-wal'))).toBe(false);
  });
});
