import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Digest,
  getHasher,
  getRun,
  initRun,
  openReadOnly,
  readSeries,
  type Seq,
  Store,
  ValidationError,
} from '@tidemark/core';
import { describe, expect, it } from 'vitest';
import { runScript } from './child.js';
import { tempDir } from './helpers.js';

const quiet = { captureContext: false, handleExit: false } as const;
const MINUTE = 60_000;

function stateOf(dir: string, runId: string): { state: string; failure: string | null } {
  const db = openReadOnly(dir);
  try {
    const run = getRun(db, runId);
    return { state: run.state, failure: run.failure };
  } finally {
    db.close();
  }
}

describe('run state', () => {
  it('marks a run of another host crashed once its heartbeat is older than staleAfterMs', async () => {
    const dir = tempDir();
    const start = Date.now();
    const store = Store.open({ dir, clock: () => start });
    const run = await initRun({ project: 'p', store, ...quiet });
    run.log('m', 1);
    store.db.prepare("UPDATE run_writers SET host = 'gpu-node-7', pid = 4242").run();
    await store.close();

    await Store.open({ dir, clock: () => start + 4 * MINUTE }).close();
    expect(stateOf(dir, run.id).state).toBe('running');
    const later = Store.open({ dir, clock: () => start + 6 * MINUTE });
    const ops = later.journal.readAfter(0 as Seq, { maxEntries: 1000, maxPoints: 1000 });
    await later.close();
    expect(stateOf(dir, run.id)).toEqual({
      state: 'crashed',
      failure: 'writer process 4242 on gpu-node-7 sent no heartbeat for 6 min',
    });
    expect(ops.at(-1)?.op).toMatchObject({ kind: 'run.state', state: 'crashed' });
  });

  it('takes a writer whose pid now belongs to another process for dead once its heartbeat is stale', async () => {
    const dir = tempDir();
    const start = Date.now();
    const store = Store.open({ dir, clock: () => start });
    const run = await initRun({ project: 'p', store, ...quiet });
    // The parent of this test is alive; a writer row naming it is a pid that was reused.
    store.db.prepare('UPDATE run_writers SET pid = ?').run(process.ppid);
    await store.close();

    await Store.open({ dir, clock: () => start + MINUTE }).close();
    expect(stateOf(dir, run.id).state).toBe('running');
    await Store.open({ dir, clock: () => start + 10 * MINUTE, staleAfterMs: 2 * MINUTE }).close();
    expect(stateOf(dir, run.id).state).toBe('crashed');
  });

  it('ends a run written by two processes when the last one stops, failed if either failed', async () => {
    const dir = tempDir();
    const a = await initRun({ project: 'p', dir, ...quiet });
    const b = await initRun({ project: 'p', dir, resume: a.id, ...quiet });
    a.log('rank0', 1);
    b.log('rank1', 2);
    await a.stop({ error: new RangeError('rank 0 ran out of memory') });
    expect(stateOf(dir, a.id).state).toBe('running');
    b.log('rank1', 3);
    await b.stop();
    expect(stateOf(dir, a.id)).toEqual({
      state: 'failed',
      failure: 'RangeError: rank 0 ran out of memory',
    });

    const c = await initRun({ project: 'p', dir, resume: a.id, ...quiet });
    await c.stop();
    expect(stateOf(dir, a.id)).toEqual({ state: 'finished', failure: null });
  });

  it('brings a run taken for dead back to running when its writer turns out to be alive', async () => {
    const dir = tempDir();
    const script = runScript(`
      import { initRun } from '@tidemark/core';
      import { createInterface } from 'node:readline';
      const run = await initRun({ project: 'p', dir: ${JSON.stringify(dir)}, captureContext: false });
      run.log('m', 1);
      process.stdout.write('id ' + run.id + '\\n');
      createInterface({ input: process.stdin }).on('line', async (line) => {
        if (line === 'beat') { run.heartbeat(); process.stdout.write('beaten\\n'); }
        if (line === 'stop') { await run.stop(); process.exit(0); }
      });
    `);
    const runId = (await script.waitFor((l) => l.startsWith('id '))).slice(3);

    // A store opened with a clock ten minutes ahead sees the heartbeat as stale.
    await Store.open({ dir, clock: () => Date.now() + 10 * MINUTE }).close();
    expect(stateOf(dir, runId).state).toBe('crashed');
    script.send('beat');
    await script.waitFor((l) => l === 'beaten');
    expect(stateOf(dir, runId)).toEqual({ state: 'running', failure: null });
    script.send('stop');
    expect((await script.exited).code).toBe(0);
    expect(stateOf(dir, runId).state).toBe('finished');
  });

  it('records every field type and every series type', async () => {
    const dir = tempDir();
    const image = join(tempDir(), 'sample.png');
    writeFileSync(image, Buffer.from('not really a png, but bytes per step\n'.repeat(50)));
    const run = await initRun({ project: 'p', dir, ...quiet });
    const when = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678));
    run.set('config', {
      lr: 0.003,
      epochs: 12,
      big: 2n ** 60n,
      amp: true,
      name: 'resnet-50',
      started: when,
      datasets: ['imagenet', 'coco'],
      optimizer: { name: 'adamw', betas: { b1: 0.9, b2: 0.999 } },
    });
    run.log('metrics/loss', 0.7);
    run.log('logs/stdout', 'epoch 1 done');
    await run.logFile('images/sample', image, { step: 1 });
    writeFileSync(image, 'changed afterwards');
    await run.stop();

    const store = Store.open({ dir });
    const detail = getRun(store.db, run.id);
    expect(detail.fields.map((f) => [f.path, f.type, f.value])).toEqual([
      ['config/amp', 'bool', true],
      ['config/big', 'int', 2n ** 60n],
      ['config/datasets', 'string_set', ['coco', 'imagenet']],
      ['config/epochs', 'int', 12],
      ['config/lr', 'float', 0.003],
      ['config/name', 'string', 'resnet-50'],
      ['config/optimizer/betas/b1', 'float', 0.9],
      ['config/optimizer/betas/b2', 'float', 0.999],
      ['config/optimizer/name', 'string', 'adamw'],
      ['config/started', 'datetime', when],
    ]);
    expect(detail.series.map((s) => [s.path, s.type, s.count])).toEqual([
      ['images/sample', 'file', 1],
      ['logs/stdout', 'string', 1],
      ['metrics/loss', 'float', 1],
    ]);
    const [point] = readSeries(store.db, run.id, 'images/sample');
    const out = join(tempDir(), 'restored.png');
    await store.objects.restore(point?.value as Digest, out);
    expect(readFileSync(out, 'utf8')).toBe('not really a png, but bytes per step\n'.repeat(50));
    await store.close();
  });
});

describe('run context', () => {
  it('fingerprints data files and folders by digest, and records nothing when context is off', async () => {
    const data = tempDir('tidemark-data-');
    const csv = join(data, 'train.csv');
    writeFileSync(csv, 'x,y\n1,2\n');
    mkdirSync(join(data, 'images'));
    writeFileSync(join(data, 'images', 'a.bin'), 'aaaa');
    writeFileSync(join(data, 'images', 'b.bin'), 'bbbbbb');
    const dir = tempDir();

    const run = await initRun({
      project: 'p',
      dir,
      handleExit: false,
      dataFiles: [csv, join(data, 'images')],
    });
    await run.stop();
    writeFileSync(csv, 'x,y\n1,3\n');
    const changed = await initRun({ project: 'p', dir, handleExit: false, dataFiles: [csv] });
    await changed.stop();
    const off = await initRun({ project: 'p', dir, ...quiet, dataFiles: [csv] });
    await off.stop();

    const db = openReadOnly(dir);
    const fields = (id: string): Record<string, unknown> =>
      Object.fromEntries(getRun(db, id).fields.map((f) => [f.path, f.value]));
    const first = fields(run.id);
    const hasher = await getHasher();
    expect(first).toMatchObject({
      'context/data/0/path': csv,
      'context/data/0/digest': hasher.digest(Buffer.from('x,y\n1,2\n')),
      'context/data/0/size': 8,
      'context/data/0/files': 1,
      'context/data/1/path': join(data, 'images'),
      'context/data/1/size': 10,
      'context/data/1/files': 2,
      'context/node': process.version,
    });
    expect(first['context/git/commit']).toMatch(/^[0-9a-f]{40}$/);
    expect(typeof first['context/git/dirty']).toBe('boolean');
    expect(fields(changed.id)['context/data/0/digest']).not.toBe(first['context/data/0/digest']);
    expect(Object.keys(fields(off.id))).toEqual([]);
    const runs = db.prepare('SELECT count(*) FROM runs').pluck().get();
    db.close();

    await expect(
      initRun({ project: 'p', dir, handleExit: false, dataFiles: [join(data, 'missing.csv')] }),
    ).rejects.toBeInstanceOf(ValidationError);
    const after = openReadOnly(dir);
    expect(after.prepare('SELECT count(*) FROM runs').pluck().get()).toBe(runs);
    after.close();
  });
});
