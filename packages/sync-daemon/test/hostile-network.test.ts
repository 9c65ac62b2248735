import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initRun, openReadOnly, readSeries, type Seq, toWireFloat } from '@tidemark/core';
import { createServer, ensureInitialToken } from '@tidemark/server';
import {
  HttpRemoteClient,
  loadDaemonConfig,
  RemoteError,
  SyncDaemon,
  syncOnce,
} from '@tidemark/sync-daemon';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openTestStore, randomFile, recordRun, tempDir } from './helpers.js';
import { ChaosProxy, type ConnectionPlan, seeded } from './support/chaos-proxy.js';
import { waitFor } from './support/processes.js';
import { recordingLogger } from './support/recording-logger.js';
import { cursorOf, lastSeqOf, localObjects } from './support/stores.js';

const MiB = 1024 * 1024;
const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (stops.length > 0) await stops.pop()?.();
});

async function startServer(): Promise<{
  url: string;
  port: number;
  token: string;
  dataDir: string;
}> {
  const dataDir = tempDir('tidemark-server-');
  const token = readFileSync(ensureInitialToken(dataDir).path, 'utf8').trim();
  const server = createServer({ dataDir });
  const { url, port } = await server.listen(0, '127.0.0.1');
  stops.push(() => server.close());
  return { url, port, token, dataDir };
}

async function startProxy(
  port: number,
  plan?: (index: number) => ConnectionPlan,
): Promise<ChaosProxy> {
  const proxy = await ChaosProxy.start(port, plan);
  stops.push(() => proxy.close());
  return proxy;
}

/**
 * Connection fates for the hostile run: each kind of failure once in the first connections, so
 * every kind happens however few requests the sync needs, then all of them drawn from a seeded
 * generator so that a failing run can be replayed. Stalls are few because each one costs a
 * response timeout; after 300 connections the network heals so the test ends.
 */
function hostilePlan(seed: number): (index: number) => ConnectionPlan {
  const random = seeded(seed);
  const first: ConnectionPlan[] = [
    { fault: { kind: 'drop' } },
    { fault: { kind: 'reset_request', afterBytes: 100_000 } },
    { fault: { kind: 'reset_response', afterBytes: 10 } },
    { fault: { kind: 'status', status: 503, retryAfterSeconds: 1 } },
    { fault: { kind: 'stall', afterBytes: 1000 } },
  ];
  let stalls = 1;
  return (index) => {
    const fixed = first[index];
    if (fixed !== undefined) return fixed;
    if (index >= 300) return { fault: { kind: 'pass' } };
    const r = random();
    if (r < 0.08) return { fault: { kind: 'drop' } };
    if (r < 0.18)
      return { fault: { kind: 'reset_request', afterBytes: Math.floor(random() * 3 * MiB) } };
    if (r < 0.26)
      return { fault: { kind: 'reset_response', afterBytes: Math.floor(random() * 300) } };
    if (r < 0.3 && stalls < 3) {
      stalls += 1;
      return { fault: { kind: 'stall', afterBytes: Math.floor(random() * 16 * 1024) } };
    }
    if (r < 0.34) return { fault: { kind: 'status', status: 503, retryAfterSeconds: 1 } };
    if (r < 0.37) return { fault: { kind: 'status', status: 502 } };
    if (r < 0.4) return { fault: { kind: 'status', status: 500 } };
    if (r < 0.44) return { fault: { kind: 'status', status: 429, retryAfterSeconds: 1 } };
    // A connection that works for a while, maybe slow, then is cut in the middle of something.
    return {
      fault: { kind: 'reset_request', afterBytes: Math.floor(random() * 24 * MiB) },
      ...(r < 0.6 ? { latencyMs: 2 } : {}),
      ...(r > 0.85 ? { bytesPerSecond: 40 * MiB } : {}),
    };
  };
}

function sha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (piece) => hash.update(piece))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });
}

describe('sync over a hostile network', () => {
  it('delivers 100,000 points and a 200 MiB artifact identical and exactly once', async () => {
    const server = await startServer();
    const proxy = await startProxy(server.port, hostilePlan(5));

    const dir = join(tempDir(), '.tidemark');
    const artifact = join(tempDir('tidemark-artifact-'), 'model.bin');
    const bytes = Buffer.alloc(200 * MiB);
    for (let offset = 0; offset < bytes.length; offset += MiB) randomFillSync(bytes, offset, MiB);
    writeFileSync(artifact, bytes);
    const run = await initRun({
      project: 'team/hostile',
      dir,
      captureContext: false,
      handleExit: false,
      logMode: 'batched',
      maxBufferedPoints: 500,
    });
    const specials = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0];
    for (let step = 0; step < 50_000; step++) {
      run.log('metrics/loss', specials[step] ?? Math.sin(step) / 7, { step });
      run.log('metrics/acc', step / 50_000, { step });
    }
    await run.upload('model', artifact);
    await run.stop();

    const logger = recordingLogger();
    const config = loadDaemonConfig({
      storeDir: dir,
      env: { TIDEMARK_API_TOKEN: server.token },
      flags: {
        remote: proxy.url,
        debounceMs: 50,
        backoffBaseMs: 20,
        backoffMaxMs: 250,
        connectTimeoutMs: 2_000,
        responseTimeoutMs: 3_000,
        requestTimeoutMs: 15_000,
        batchOps: 10,
      },
    });
    const daemon = await SyncDaemon.start({ config, logger });
    stops.push(() => daemon.stop());

    const entries = lastSeqOf(dir);
    expect(entries).toBeGreaterThan(200);
    await waitFor(
      () => cursorOf(dir, proxy.url) === entries && daemon.status.phase === 'idle',
      200_000,
      'the daemon to confirm every entry',
    );
    await daemon.stop();

    // Every kind of trouble happened at least once.
    for (const kind of ['drop', 'reset_request', 'reset_response', 'stall', 'status'] as const) {
      expect(proxy.stats.faults[kind], kind).toBeGreaterThan(0);
    }
    // Many failed passes, two lines: one when the trouble started, one when it ended.
    expect(logger.events('debug').filter((e) => e === 'sync_retry_failed').length).toBeGreaterThan(
      5,
    );
    expect(logger.events('warn')).toEqual(['sync_errors_started']);
    expect(logger.events('info').filter((e) => e === 'sync_recovered')).toHaveLength(1);

    // Exactly once: one run, each op applied once, each point stored once.
    const serverDb = new Database(join(server.dataDir, 'server.db'), { readonly: true });
    const counts = serverDb
      .prepare(
        `SELECT (SELECT count(*) FROM applied_ops) AS ops, (SELECT count(*) FROM points) AS points,
           (SELECT count(*) FROM runs) AS runs, (SELECT count(*) FROM files) AS files,
           (SELECT count(*) FROM project_chunks) AS chunks`,
      )
      .get();
    serverDb.close();
    const local = openReadOnly(dir);
    expect(local.prepare('SELECT count(*) FROM journal').pluck().get()).toBe(entries);
    const localLoss = readSeries(local, run.id, 'metrics/loss');
    const localAcc = readSeries(local, run.id, 'metrics/acc');
    local.close();
    expect(counts).toEqual({
      ops: entries,
      points: 100_000,
      runs: 1,
      files: 1,
      chunks: localObjects(dir),
    });

    // Identical: every point, bit for bit, and the artifact byte for byte.
    const direct = new HttpRemoteClient({ url: server.url, token: server.token });
    const asWire = (points: typeof localLoss) =>
      points.map((p) => [p.step, p.ts, toWireFloat(p.value as number)]);
    const remoteLoss = await direct.getSeries(run.id, 'metrics/loss');
    const remoteAcc = await direct.getSeries(run.id, 'metrics/acc');
    expect(asWire(remoteLoss.points)).toEqual(asWire(localLoss));
    expect(asWire(remoteAcc.points)).toEqual(asWire(localAcc));

    const download = join(tempDir('tidemark-download-'), 'model.bin');
    const response = await fetch(`${server.url}/api/v1/runs/${run.id}/files/model`, {
      headers: { authorization: `Bearer ${server.token}` },
    });
    writeFileSync(download, Buffer.from(await response.arrayBuffer()));
    expect(await sha256(download)).toBe(await sha256(artifact));

    // Resumed, not restarted: what crossed the proxy is the artifact plus what the cuts wasted.
    expect(proxy.stats.bytesUp).toBeLessThan(200 * MiB * 1.5);
  }, 240_000);

  it('fails a pass within its timeouts when the server stops answering, body sent or not', async () => {
    const server = await startServer();
    const { store, dir } = openTestStore();
    await recordRun(dir, 'p', async (r) => {
      r.log('m', 1);
      await r.upload('blob', randomFile(12 * MiB));
    });

    for (const afterBytes of [0, 64 * 1024]) {
      const proxy = await startProxy(server.port, () => ({ fault: { kind: 'stall', afterBytes } }));
      const remote = new HttpRemoteClient({
        url: proxy.url,
        token: server.token,
        timeouts: { connectMs: 500, responseMs: 700, requestMs: 1_500 },
      });
      const started = performance.now();

      const error = await syncOnce(store, remote).catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(RemoteError);
      expect(error).toMatchObject({ code: 'unreachable', retryable: true });
      expect(performance.now() - started).toBeLessThan(6_000);
      expect(store.journal.getCursor(remote.url)).toBe(0 as Seq);
    }
  });

  it('treats 500, 502, 503 and 429 answers as passing trouble and keeps Retry-After', async () => {
    const server = await startServer();
    const { store, dir } = openTestStore();
    await recordRun(dir, 'p', (r) => r.log('m', 1));

    for (const status of [500, 502, 503, 429] as const) {
      const proxy = await startProxy(server.port, () => ({
        fault: { kind: 'status', status, retryAfterSeconds: 7 },
      }));
      const remote = new HttpRemoteClient({ url: proxy.url, token: server.token });

      const error = await syncOnce(store, remote).catch((caught: unknown) => caught);

      expect(error).toMatchObject({
        code: 'server_error',
        status,
        retryable: true,
        retryAfterMs: 7_000,
      });
    }
  });
});
