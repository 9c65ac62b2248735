#!/usr/bin/env node
// Writes a golden store of the schema the checked-out tidemark writes, plus a JSON file of
// every value in it as that version reads it back. Run it once per released schema, at the
// commit that released it, then commit both outputs; never regenerate an older one:
//
//   npm run build && node scripts/make-golden-store.mjs v1
//
// store-v1 was written at commit 776bdf5 (migrations 0000 and 0001); store-v2 by the change
// that added migrations 0002 and 0003 (series summaries, run writers, packed blocks).
// packages/core/test/golden-store.test.ts opens every golden store with the current code and
// checks each value reads back exactly (invariant 8).
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  getRun,
  initRun,
  listRuns,
  openReadOnly,
  readSeries,
  Store,
  toWireFloat,
} from '@tidemark/core';

const version = process.argv[2];
if (!/^v[0-9]+$/.test(version ?? '')) {
  process.stderr.write('usage: node scripts/make-golden-store.mjs v<N>\n');
  process.exit(2);
}

const repo = fileURLToPath(new URL('..', import.meta.url));
const goldenDir = join(repo, 'packages/core/test/golden');
const storeDir = join(goldenDir, `store-${version}`);
rmSync(storeDir, { recursive: true, force: true });
mkdirSync(storeDir, { recursive: true });

// A clock that only moves forward by whole seconds from a fixed start keeps timestamps readable.
let now = Date.UTC(2026, 0, 1);
const clock = () => {
  now += 1000;
  return now;
};

const store = Store.open({ dir: storeDir, clock });
const common = { store, captureContext: false, handleExit: false };
const longKey = `metrics/${'k/-@:=[] µ🚀'.repeat(80)}`.slice(0, 1100);

const base = await initRun({
  ...common,
  project: 'golden/values',
  name: 'every value',
  description: 'Ünïcödé description ✓',
  tags: ['golden', 'tag with space', '🏷️'],
});
base.set('parameters', {
  lr: 0.001,
  momentum: 0.1 + 0.2,
  tiny: 5e-324,
  huge: 1.7976931348623157e308,
  nan: Number.NaN,
  inf: Number.POSITIVE_INFINITY,
  ninf: Number.NEGATIVE_INFINITY,
  nzero: -0,
  epochs: 5,
  big: 2n ** 53n + 1n,
  bigger: -(2n ** 63n) - 7n,
  flag: true,
  off: false,
  name: 'adam ✓ 🚀 ÿ',
  empty: '',
  started: new Date(Date.UTC(2025, 11, 31, 23, 59, 59, 123)),
  labels: ['b', 'a', 'ü'],
  optimizer: { name: 'sgd', nested: { deeper: 1 } },
});
base.set(longKey, 'a key over one kilobyte');
const specials = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0.1 + 0.2];
for (const [i, value] of specials.entries()) base.log('metrics/val_accuracy', value, { step: i });
for (const step of [7, 3, 3, 9, 1]) base.log('metrics/loss', 1 / (step + 1), { step });
base.log(longKey, 42);
base.log('logs/stdout', 'line one');
base.log('logs/stdout', 'line ✓ two 🚀');
const artifact = join(goldenDir, `artifact-${version}.bin`);
writeFileSync(artifact, Buffer.from('golden artifact bytes\n'.repeat(100)));
await base.upload('model/weights', artifact);
await base.logFile('images/sample', artifact, { step: 1 });
rmSync(artifact);
await base.stop();

const failed = await initRun({ ...common, project: 'golden/values', name: 'failed' });
failed.log('metrics/val_accuracy', 0.5, { step: 0 });
await failed.stop({ error: new Error('out of memory') });

const fork = await initRun({
  ...common,
  project: 'golden/values',
  name: 'fork',
  forkOf: base.id,
  forkStep: 3,
});
fork.log('metrics/val_accuracy', 0.75, { step: 4 });
await fork.stop();

const resumed = await initRun({ ...common, project: 'golden/other', name: 'resumed' });
resumed.log('metrics/val_accuracy', 0.25);
await resumed.stop();
const again = await initRun({ ...common, project: 'golden/other', resume: resumed.id });
again.log('metrics/val_accuracy', 0.35, { step: 0 });
await again.stop();
await store.close();

// A writer killed -9 leaves its run "running"; the next open marks it crashed.
const child = spawnSync(
  process.execPath,
  [
    '--input-type=module',
    '-e',
    `import { initRun } from '@tidemark/core';
     const run = await initRun({ project: 'golden/values', name: 'crashed', dir: ${JSON.stringify(storeDir)}, captureContext: false });
     run.log('metrics/val_accuracy', 0.1, { step: 0 });
     process.kill(process.pid, 'SIGKILL');`,
  ],
  { cwd: repo, stdio: 'inherit' },
);
if (child.signal !== 'SIGKILL') throw new Error(`the crashing writer ended with ${child.status}`);
const reopened = Store.open({ dir: storeDir, clock });
const ops = reopened.journal.readAfter(0, { maxEntries: 100_000, maxPoints: 10_000_000 });
await reopened.close();

const db = openReadOnly(storeDir);
const runs = listRuns(db).map((summary) => {
  const detail = getRun(db, summary.id);
  return {
    id: detail.id,
    project: detail.project,
    name: detail.name,
    description: detail.description,
    state: detail.state,
    failure: detail.failure,
    forkOf: detail.forkOf,
    forkStep: detail.forkStep,
    createdAt: detail.createdAt,
    tags: detail.tags,
    fields: db
      .prepare('SELECT path, type, value FROM fields WHERE run_id = ? ORDER BY path')
      .raw()
      .all(detail.id),
    files: detail.files,
    series: Object.fromEntries(
      detail.series.map((s) => [
        s.path,
        {
          type: s.type,
          points: readSeries(db, detail.id, s.path).map((p) => [
            p.step,
            p.ts,
            typeof p.value === 'number' ? toWireFloat(p.value) : p.value,
          ]),
        },
      ]),
    ),
  };
});
const migrations = db.prepare('SELECT hash, created_at FROM __drizzle_migrations').raw().all();
db.close();

// The read-only connection leaves an empty WAL and its index behind; the golden store is one file.
for (const suffix of ['-wal', '-shm']) rmSync(join(storeDir, `store.db${suffix}`), { force: true });

const expected = { version, migrations, runs, ops: ops.map((entry) => entry.op) };
writeFileSync(join(goldenDir, `store-${version}.json`), `${JSON.stringify(expected, null, 1)}\n`);
process.stderr.write(`event=golden_written dir=${storeDir} runs=${runs.length}\n`);
