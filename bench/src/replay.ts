import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initRun } from '@tidemark/core';
import { createServer, SERVER_DB_FILE } from '@tidemark/server';
import Database from 'better-sqlite3';
import { median, type Suite, type SuiteResult } from './suite.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SERVER_MAIN = join(REPO, 'packages/server/dist/main.js');
const REPLAY_CHILD = join(REPO, 'bench/dist/replay-child.js');
const TARGET = 200_000;

interface PassResult {
  seconds: number;
  opsApplied: number;
  requests: number;
  pending: number;
  quietCalls: number;
  quietRequests: number;
  quietMs: number;
  maxRssBytes: number;
  peakHeapBytes: number;
}

/**
 * Replay to a server on loopback, end to end: the journal read, JSON, HTTP, the server's
 * validation and insert, the cursor commit. Server and syncer are separate processes, as in
 * use. The reference is the same rows inserted straight into the server's SQLite file, with
 * the server's pragmas, on the same disk: what the server could do with no protocol at all.
 */
export const replaySuite: Suite = {
  name: 'replay',
  async run(workDir) {
    const points = 1_000_000;
    const series = 100;
    const store = join(workDir, 'store');
    await writeStore(store, points, series);

    const raw = await rawInsertRate(join(workDir, 'raw'), points, series);
    const passes: PassResult[] = [];
    for (let round = 0; round < 4; round++) {
      const pass = await replayOnce(store, join(workDir, `server-${round}`));
      if (round > 0) passes.push(pass);
    }

    const rate = median(passes.map((p) => points / p.seconds));
    const quiet = passes[passes.length - 1] as PassResult;
    const result: SuiteResult = {
      title: `Replay to a server on loopback (${points.toLocaleString('en-US')} points, ${series} series)`,
      measurements: [
        {
          name: 'replay end to end',
          value: rate,
          unit: 'points/s',
          reference: `server raw insert ${Math.round(raw).toLocaleString('en-US')} points/s`,
          ratio: rate / raw,
          target: `≥ ${TARGET.toLocaleString('en-US')} points/s`,
          met: rate >= TARGET,
        },
        { name: 'server raw local insert', value: raw, unit: 'points/s' },
        {
          name: 'second pass with nothing new: HTTP calls',
          value: quiet.quietCalls,
          unit: 'requests',
          target: '1',
          met: quiet.quietCalls === 1,
        },
        { name: 'second pass with nothing new: time', value: quiet.quietMs, unit: 'ms' },
        { name: 'ops requests per pass', value: quiet.requests, unit: 'requests' },
        { name: 'syncing process peak RSS', value: quiet.maxRssBytes / 2 ** 20, unit: 'MiB' },
      ],
      notes: [
        'Each round starts a new server process on a new data folder, so every round replays the whole journal; the first round is a warm-up.',
        'The syncer runs in its own process; its RSS includes Node itself (about 50 MiB).',
      ],
    };
    return result;
  },
};

/**
 * The bounded-memory check of issue 5: a run of 10,000,000 points over 5,000 series keys,
 * replayed in bounded batches. `TIDEMARK_BENCH_POINTS` scales it down for a quick look.
 */
export const replayLargeSuite: Suite = {
  name: 'replay-large',
  async run(workDir) {
    const points = Number(process.env.TIDEMARK_BENCH_POINTS ?? 10_000_000);
    const series = 5_000;
    const store = join(workDir, 'store');
    const written = performance.now();
    await writeStore(store, points, series);
    const writeSeconds = (performance.now() - written) / 1000;

    const pass = await replayOnce(store, join(workDir, 'server'));
    const rate = points / pass.seconds;
    return {
      title: `Replay of one large run (${points.toLocaleString('en-US')} points, ${series.toLocaleString('en-US')} series)`,
      measurements: [
        { name: 'replay end to end', value: rate, unit: 'points/s' },
        { name: 'replay time', value: pass.seconds, unit: 's' },
        { name: 'syncing process peak RSS', value: pass.maxRssBytes / 2 ** 20, unit: 'MiB' },
        { name: 'syncing process peak heap', value: pass.peakHeapBytes / 2 ** 20, unit: 'MiB' },
        { name: 'ops requests', value: pass.requests, unit: 'requests' },
        {
          name: 'local write (batched, for scale)',
          value: points / writeSeconds,
          unit: 'points/s',
        },
      ],
      notes: [
        'Memory stays flat because a pass holds at most two pages of 2,000 entries or 50,000 points (one read ahead while the other is with the server) and cuts them into requests of at most 16 MiB; progress lines go to stderr every 5 s.',
      ],
    };
  },
};

/** One run, `points` float points spread over `series` keys, written in batched mode. */
async function writeStore(dir: string, points: number, series: number): Promise<void> {
  const run = await initRun({
    project: 'bench/replay',
    dir,
    captureContext: false,
    handleExit: false,
    logMode: 'batched',
    maxBufferedPoints: 10_000,
  });
  const paths = Array.from({ length: series }, (_, i) => `metrics/key_${i}`);
  for (let i = 0; i < points; i++) {
    run.log(paths[i % series] as string, Math.sin(i) * 1e-3 + i, { step: Math.floor(i / series) });
  }
  await run.stop();
}

/** Points per second of plain prepared inserts into a fresh server database, 50,000 per commit. */
async function rawInsertRate(dataDir: string, points: number, series: number): Promise<number> {
  mkdirSync(dataDir, { recursive: true });
  await createServer({ dataDir }).close();
  const db = new Database(join(dataDir, SERVER_DB_FILE));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.prepare("INSERT INTO projects (name, created_at) VALUES ('bench', 0)").run();
  db.prepare("INSERT INTO runs (id, project, created_at) VALUES ('bench', 'bench', 0)").run();
  const insertSeries = db.prepare(
    "INSERT INTO series (run_id, path, type) VALUES ('bench', ?, 'float')",
  );
  const ids = Array.from({ length: series }, (_, i) =>
    Number(insertSeries.run(`k${i}`).lastInsertRowid),
  );
  const insert = db.prepare(
    'INSERT INTO points (series_id, step, ts, value, flag, text) VALUES (?, ?, ?, ?, 0, NULL)',
  );
  const batch = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++)
      insert.run(ids[i % series], Math.floor(i / series), 1.7e12 + i, i);
  });

  const started = performance.now();
  for (let from = 0; from < points; from += 50_000) batch(from, Math.min(points, from + 50_000));
  const seconds = (performance.now() - started) / 1000;
  db.close();
  return points / seconds;
}

/** Starts a server process on a new data folder and times one pass of a syncing process to it. */
async function replayOnce(store: string, dataDir: string): Promise<PassResult> {
  const server = spawn(process.execPath, [SERVER_MAIN, '--data', dataDir, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    const url = await listeningUrl(server);
    const token = readFileSync(join(dataDir, 'initial-token'), 'utf8').trim();
    const child = spawn(process.execPath, [REPLAY_CHILD, store, url], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TIDEMARK_API_TOKEN: token },
    });
    let out = '';
    child.stdout?.on('data', (piece: Buffer) => {
      out += piece.toString();
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`the syncing process exited with ${code}`);
    return JSON.parse(out.trim().split('\n').pop() ?? '') as PassResult;
  } finally {
    const exited = once(server, 'exit');
    server.kill('SIGTERM');
    await exited;
  }
}

function listeningUrl(server: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    server.stdout?.on('data', (piece: Buffer) => {
      buffer += piece.toString();
      const line = buffer.split('\n').find((l) => l.startsWith('{'));
      if (line !== undefined) resolve((JSON.parse(line) as { url: string }).url);
    });
    server.once('exit', (code) => reject(new Error(`the server exited with ${code}`)));
  });
}
