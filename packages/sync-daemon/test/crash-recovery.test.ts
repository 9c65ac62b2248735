import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initRun, openReadOnly, readSeries } from '@tidemark/core';
import { HttpRemoteClient } from '@tidemark/sync-daemon';
import { afterEach, describe, expect, it } from 'vitest';
import { logPoints, randomFile, recordRun, tempDir } from './helpers.js';
import { ChaosProxy } from './support/chaos-proxy.js';
import { type Child, spawnCli, startServerProcess, waitFor } from './support/processes.js';
import { cursorOf, lastSeqOf, localObjects, localOps, serverCounts } from './support/stores.js';

const MiB = 1024 * 1024;
const proxies: ChaosProxy[] = [];
afterEach(async () => {
  for (const proxy of proxies.splice(0)) await proxy.close();
});

/** A store folder whose daemon retries fast, so crash tests spend their time on crashes. */
function storeDir(): string {
  return join(tempDir(), '.tidemark');
}

function quickRetries(dir: string): void {
  writeFileSync(
    join(dir, 'daemon.json'),
    JSON.stringify({ backoffBaseMs: 50, backoffMaxMs: 500, connectTimeoutMs: 2000 }),
  );
}

function daemon(dir: string, remote: string, token: string, fault?: string): Child {
  return spawnCli(
    ['daemon', 'run', '--dir', dir, '--remote', remote, '--batch-ops', '5', '--debounce-ms', '50'],
    { TIDEMARK_API_TOKEN: token, ...(fault === undefined ? {} : { TIDEMARK_FAULT: fault }) },
  );
}

/** Waits until the store's cursor for `remote` covers its whole journal. */
async function caughtUp(dir: string, remote: string, what: string): Promise<void> {
  const last = lastSeqOf(dir);
  await waitFor(() => cursorOf(dir, remote) === last, 60_000, what);
}

describe('exactly once when the daemon is killed with -9', () => {
  it.each([
    ['before_ops:2', 'before it sends a request'],
    ['after_ops:2', 'after the server applied a batch, before the cursor moved'],
    ['before_chunk:2', 'before a chunk upload'],
    ['after_chunk:2', 'after a chunk upload'],
  ])('at %s (%s), a restart finishes with every op applied once', async (fault) => {
    const server = await startServerProcess(tempDir('tidemark-server-'));
    const dir = storeDir();
    const run = await recordRun(dir, 'team/crash', async (r) => {
      logPoints(r, 'loss', 8);
      await r.upload('model', randomFile(5 * MiB));
      logPoints(r, 'acc', 12);
    });
    quickRetries(dir);

    const first = daemon(dir, server.url, server.token, fault);
    const ending = await first.exited;
    expect(ending.signal).toBe('SIGKILL');
    expect(first.lines.some((line) => line.event === 'fault_injected')).toBe(true);

    const cursor = cursorOf(dir, server.url);
    const before = serverCounts(server.dataDir, run.id);
    expect(cursor).toBeLessThan(lastSeqOf(dir));
    if (fault === 'after_ops:2') {
      // The server holds two requests' worth; the store confirmed only the first.
      expect(cursor).toBe(5);
      expect(before.ops).toBe(10);
    }

    const second = daemon(dir, server.url, server.token);
    await caughtUp(dir, server.url, 'the restarted daemon to finish');
    const after = serverCounts(server.dataDir, run.id);

    expect(after).toMatchObject({
      ops: localOps(dir, run.id),
      points: 20,
      doubled: 0,
      runs: 1,
      files: 1,
      chunks: localObjects(dir),
    });
    if (fault === 'after_ops:2') {
      const done = await second.waitForLine((line) => line.event === 'pass_done');
      expect(done.ops_duplicate).toBe(5);
    }
  });

  it('resumes an upload killed in the middle of a chunk, sending only what the server lacks', async () => {
    const server = await startServerProcess(tempDir('tidemark-server-'));
    const proxy = await ChaosProxy.start(server.port, () => ({
      fault: { kind: 'pass' },
      bytesPerSecond: 16 * MiB,
    }));
    proxies.push(proxy);
    const dir = storeDir();
    const artifact = randomFile(24 * MiB);
    const run = await recordRun(dir, 'team/crash', async (r) => {
      await r.upload('model', artifact);
    });
    quickRetries(dir);

    const first = daemon(dir, proxy.url, server.token);
    proxy.onUpstream = (_piece, total) => {
      if (total >= 10 * MiB && first.running) first.process.kill('SIGKILL');
    };
    expect((await first.exited).signal).toBe('SIGKILL');
    proxy.onUpstream = undefined;
    proxy.cutAll();

    const held = serverCounts(server.dataDir, run.id);
    expect(held.chunks).toBeGreaterThan(0);
    expect(held.chunks).toBeLessThan(localObjects(dir));
    const sentBefore = proxy.stats.bytesUp;
    proxy.setPlan(() => ({ fault: { kind: 'pass' } }));

    daemon(dir, proxy.url, server.token);
    await caughtUp(dir, proxy.url, 'the upload to resume and finish');

    const resent = proxy.stats.bytesUp - sentBefore;
    expect(resent).toBeLessThan(24 * MiB - held.chunkBytes + 2 * MiB);
    expect(serverCounts(server.dataDir, run.id)).toMatchObject({
      chunks: localObjects(dir),
      files: 1,
      ops: localOps(dir, run.id),
    });
    const download = await fetch(`${server.url}/api/v1/runs/${run.id}/files/model`, {
      headers: { authorization: `Bearer ${server.token}` },
    });
    const bytes = Buffer.from(await download.arrayBuffer());
    const { readFileSync } = await import('node:fs');
    expect(bytes.equals(readFileSync(artifact))).toBe(true);
  });
});

describe('exactly once when the server dies mid-batch', () => {
  it('applies every op once after the server is killed with -9 during a request and restarted', async () => {
    const dataDir = tempDir('tidemark-server-');
    let server = await startServerProcess(dataDir);
    const proxy = await ChaosProxy.start(server.port);
    proxies.push(proxy);
    const dir = storeDir();
    const run = await initRun({
      project: 'team/restart',
      dir,
      captureContext: false,
      handleExit: false,
      logMode: 'batched',
      maxBufferedPoints: 200,
    });
    for (let step = 0; step < 20_000; step++) run.log('loss', step / 3, { step });
    await run.stop();
    quickRetries(dir);

    let requests = 0;
    const killed = new Promise<void>((resolve) => {
      proxy.onUpstream = (piece) => {
        if (!piece.includes('POST /api/v1/ops')) return;
        requests += 1;
        if (requests === 6) {
          server.child.process.kill('SIGKILL');
          resolve();
        }
      };
    });
    const syncing = daemon(dir, proxy.url, server.token);
    await killed;
    await server.child.exited;
    proxy.onUpstream = undefined;
    expect(cursorOf(dir, proxy.url)).toBeLessThan(lastSeqOf(dir));

    server = await startServerProcess(dataDir);
    proxy.setUpstream(server.port);
    await caughtUp(dir, proxy.url, 'the daemon to finish against the restarted server');

    expect(serverCounts(dataDir, run.id)).toMatchObject({
      ops: localOps(dir, run.id),
      points: 20_000,
      doubled: 0,
      runs: 1,
    });
    expect(syncing.lines.filter((line) => line.event === 'sync_errors_started')).toHaveLength(1);
    await syncing.waitForLine((line) => line.event === 'sync_recovered');
  });
});

describe('a store folder copied to a second machine', () => {
  it('creates no second run and loses neither copy’s later points', async () => {
    const server = await startServerProcess(tempDir('tidemark-server-'));
    const env = { TIDEMARK_API_TOKEN: server.token };
    const original = storeDir();
    const run = await recordRun(original, 'team/copy', (r) => logPoints(r, 'loss', 50));
    const synced = spawnCli(['sync', '--dir', original, '--remote', server.url, '--json'], env);
    expect((await synced.exited).code).toBe(0);

    // Twenty more points the server has not seen, then the copy is taken.
    const resumeAndLog = async (dir: string, from: number, count: number): Promise<void> => {
      const again = await initRun({
        project: 'team/copy',
        dir,
        resume: run.id,
        captureContext: false,
        handleExit: false,
      });
      for (let step = from; step < from + count; step++) again.log('loss', step, { step });
      await again.stop();
    };
    await resumeAndLog(original, 50, 20);
    const copy = storeDir();
    cpSync(original, copy, { recursive: true });

    await resumeAndLog(original, 100, 30);
    await resumeAndLog(copy, 200, 40);
    for (const dir of [copy, original, copy]) {
      const pass = spawnCli(['sync', '--dir', dir, '--remote', server.url, '--json'], env);
      const { code } = await pass.exited;
      expect(code, pass.text).toBe(0);
    }

    const remote = new HttpRemoteClient({ url: server.url, token: server.token });
    const runs = await remote.listRuns({ project: 'team/copy' });
    const points = (await remote.getSeries(run.id, 'loss')).points.map((p) => p.step);
    expect(runs.map((r) => r.id)).toEqual([run.id]);
    expect(points).toHaveLength(50 + 20 + 30 + 40);
    expect(new Set(points).size).toBe(points.length);

    const local = (dir: string) => {
      const db = openReadOnly(dir);
      const steps = readSeries(db, run.id, 'loss').map((p) => p.step);
      db.close();
      return steps;
    };
    expect(new Set(points)).toEqual(new Set([...local(original), ...local(copy)]));
  });
});
