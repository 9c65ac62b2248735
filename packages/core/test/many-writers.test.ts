import { initRun, openReadOnly, readSeries, Store } from '@tidemark/core';
import { describe, expect, it } from 'vitest';
import { killHard, runScript, type ScriptProcess } from './child.js';
import { tempDir } from './helpers.js';

interface Writer {
  name: string;
  mode: 'durable' | 'batched';
  /** Resumes the shared run instead of starting its own. */
  shared: boolean;
  victim: boolean;
  rank: number;
  script?: ScriptProcess;
  runId?: string;
}

/**
 * A rank: logs `loss` (own run) or `rank<r>/loss` and `shared/loss` (shared run) with explicit
 * steps, and says which steps are safe: after each durable call, after each flush in batched
 * mode. It yields between points so it can hear 'stop' on stdin.
 */
function rankScript(dir: string, writer: Writer, sharedId: string, points: number): string {
  const start = writer.shared
    ? `resume: ${JSON.stringify(sharedId)}`
    : `name: ${JSON.stringify(writer.name)}`;
  const series = writer.shared ? `'rank${writer.rank}/loss'` : `'loss'`;
  return `
    import { initRun } from '@tidemark/core';
    import { createInterface } from 'node:readline';
    let stopping = false;
    createInterface({ input: process.stdin }).on('line', (line) => { if (line === 'stop') stopping = true; });
    const run = await initRun({ project: 'team/ddp', dir: ${JSON.stringify(dir)}, ${start},
      captureContext: false, logMode: '${writer.mode}', maxBufferedPoints: 1000, flushIntervalMs: 3_600_000 });
    process.stdout.write('id ' + run.id + '\\n');
    for (let i = 0; i < ${writer.victim ? 'Infinity' : points} && !stopping; i++) {
      run.log(${series}, i * 1.5 + ${writer.rank}, { step: i });
      ${writer.shared ? `run.log('shared/loss', ${writer.rank} + i / 1e4, { step: ${writer.rank} * 1e6 + i });` : ''}
      if (${writer.mode === 'durable'}) process.stdout.write('safe ' + i + '\\n');
      else if (i % 25 === 0) { run.flush(); process.stdout.write('safe ' + i + '\\n'); }
      if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await run.stop();
    process.stdout.write('stopped\\n');
    process.exit(0);
  `;
}

function lastSafe(script: ScriptProcess): number {
  const safe = script.lines.filter((l) => l.startsWith('safe ')).map((l) => Number(l.slice(5)));
  return safe.length === 0 ? -1 : Math.max(...safe);
}

async function exercise(
  count: number,
  killed: number[],
  points: number,
  stopEarly: boolean,
): Promise<void> {
  const dir = tempDir();
  const setup = await initRun({
    project: 'team/ddp',
    name: 'shared',
    dir,
    captureContext: false,
    handleExit: false,
  });
  const sharedId = setup.id;
  await setup.stop();

  const writers: Writer[] = [];
  for (let rank = 0; rank < count; rank++) {
    writers.push({
      name: `writer-${rank}`,
      mode: rank % 2 === 0 ? 'durable' : 'batched',
      shared: rank >= 4,
      victim: killed.includes(rank),
      rank,
    });
  }
  for (const writer of writers)
    writer.script = runScript(rankScript(dir, writer, sharedId, points));
  for (const writer of writers) {
    const script = writer.script as ScriptProcess;
    writer.runId = (await script.waitFor((l) => l.startsWith('id '))).slice(3);
    await script.waitFor((l) => l.startsWith('safe ') && Number(l.slice(5)) >= 100);
  }

  const victims = writers.filter((w) => w.victim);
  await Promise.all(victims.map((w) => killHard(w.script as ScriptProcess)));
  if (stopEarly) for (const writer of writers.filter((w) => !w.victim)) writer.script?.send('stop');
  for (const writer of writers.filter((w) => !w.victim)) {
    const script = writer.script as ScriptProcess;
    const exit = await script.exited;
    expect(exit.code, script.stderr()).toBe(0);
  }
  for (const writer of writers) {
    expect(writer.script?.stderr() ?? '').not.toMatch(/locked|SQLITE_BUSY|store_busy/i);
  }

  const store = Store.open({ dir });
  expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
  const entries = store.journal.readAfter(0 as never, { maxEntries: 1_000_000, maxPoints: 1e9 });
  await store.close();

  const db = openReadOnly(dir);
  for (const writer of writers) {
    const script = writer.script as ScriptProcess;
    const safe = lastSafe(script);
    const path = writer.shared ? `rank${writer.rank}/loss` : 'loss';
    const points = readSeries(db, writer.runId as string, path);
    expect(points.length, writer.name).toBeGreaterThanOrEqual(safe + 1);
    for (const [i, p] of points.entries())
      expect([p.step, p.value]).toEqual([i, i * 1.5 + writer.rank]);
    if (!writer.shared) {
      const state = db.prepare('SELECT state FROM runs WHERE id = ?').pluck().get(writer.runId);
      expect(state, writer.name).toBe(writer.victim ? 'crashed' : 'finished');
    }
  }
  const shared = readSeries(db, sharedId, 'shared/loss');
  for (const writer of writers.filter((w) => w.shared)) {
    const mine = shared.filter((p) => Math.floor(p.step / 1e6) === writer.rank);
    expect(mine.length).toBeGreaterThanOrEqual(lastSafe(writer.script as ScriptProcess) + 1);
  }
  expect(db.prepare('SELECT state FROM runs WHERE id = ?').pluck().get(sharedId)).toBe('crashed');

  // The journal carries every stored point exactly once, whoever sealed it.
  const journaled = new Map<string, number>();
  for (const entry of entries) {
    if (entry.op.kind !== 'points') continue;
    const n = entry.op.series.reduce((sum, s) => sum + s.points.length, 0);
    journaled.set(entry.op.runId, (journaled.get(entry.op.runId) ?? 0) + n);
  }
  const stored = db
    .prepare(
      'SELECT s.run_id AS runId, count(*) AS n FROM points p JOIN series s ON s.id = p.series_id GROUP BY s.run_id',
    )
    .all() as Array<{ runId: string; n: number }>;
  expect(Object.fromEntries(journaled)).toEqual(
    Object.fromEntries(stored.map((r) => [r.runId, r.n])),
  );
  db.close();
}

describe('many writers', () => {
  it('lets ten processes write one store, six of them one run, losing nothing when four are killed -9', async () => {
    await exercise(10, [0, 1, 4, 5], 3000, true);
  });

  // TIDEMARK_SOAK=1: the same with sixteen processes, six killed, and longer runs.
  it.runIf(process.env.TIDEMARK_SOAK === '1')(
    'soak: sixteen processes, six killed -9, twenty thousand points each',
    async () => {
      await exercise(16, [0, 1, 4, 5, 10, 11], 20_000, false);
    },
    600_000,
  );

  it('opens a new store from eight processes at once without a migration race', async () => {
    const dir = tempDir();
    const scripts = Array.from({ length: 8 }, () =>
      runScript(`
        import { initRun } from '@tidemark/core';
        const run = await initRun({ project: 'p', dir: ${JSON.stringify(dir)}, captureContext: false });
        run.log('m', 1);
        await run.stop();
        process.stdout.write('done\\n');
      `),
    );
    for (const script of scripts) {
      const exit = await script.exited;
      expect(exit.code, script.stderr()).toBe(0);
    }
    const db = openReadOnly(dir);
    expect(db.prepare('SELECT count(*) FROM runs').pluck().get()).toBe(8);
    expect(db.prepare('SELECT count(*) FROM __drizzle_migrations').pluck().get()).toBe(4);
    db.close();
  });
});
