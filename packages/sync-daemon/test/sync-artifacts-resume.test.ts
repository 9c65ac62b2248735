import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Digest, isDigest, Store } from '@tidemark/core';
import { HttpRemoteClient, syncOnce } from '@tidemark/sync-daemon';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CutProxy,
  heldChunks,
  killAfterTest,
  REPO,
  startRecordingServer,
  startServerProcess,
  stopAll,
} from './artifact-support.js';
import { openTestStore, randomFile, recordRun, tempDir } from './helpers.js';

afterEach(stopAll);

const MiB = 1024 * 1024;
const PROJECT = 'team/resume';

describe('resuming an interrupted artifact upload', () => {
  it('resumes after the connection is reset at arbitrary bytes, never resending a chunk the server holds', async () => {
    const { dir, store } = openTestStore();
    const artifact = randomFile(12 * MiB);
    await recordRun(dir, PROJECT, (r) => r.upload('model', artifact));
    const server = await startRecordingServer();
    const proxy = await CutProxy.start(server.port, 0);
    const remote = new HttpRemoteClient({ url: proxy.url, token: server.token, getRetries: 0 });
    const total = localObjects(dir);

    // Cuts inside headers, inside the first chunk and deep inside later ones.
    let interrupted = 0;
    for (const budget of [120, 150_001, 1_700_003, 2_345_678, 900_001, 3_500_017]) {
      proxy.rearm(budget);
      const heldBefore = heldChunks(server.dataDir, PROJECT);
      const putsBefore = server.puts.length;
      const outcome = await syncOnce(store, remote, { uploadConcurrency: 1 }).catch(
        (error: unknown) => error,
      );
      for (const put of server.puts.slice(putsBefore)) {
        expect(heldBefore.has(put.digest), `pass with budget ${budget}`).toBe(false);
      }
      if (outcome instanceof Error) {
        expect(outcome).toMatchObject({ code: 'unreachable' });
        interrupted += 1;
      }
    }
    proxy.rearm(Number.POSITIVE_INFINITY);
    const missing = total.length - heldChunks(server.dataDir, PROJECT).size;
    const last = await syncOnce(store, remote);

    expect(interrupted).toBeGreaterThanOrEqual(5);
    expect(last.chunksSent).toBe(missing);
    // Only the chunk on the wire when a connection was cut may go out a second time.
    expect(sentAgain(server.puts)).toBeLessThanOrEqual(interrupted);
    expect(heldChunks(server.dataDir, PROJECT)).toEqual(new Set(total));
    expect(storedTwice(server.puts)).toEqual([]);
    expect(last.quarantined).toEqual([]);
  });

  it('resumes after the server process is killed with -9 mid-upload and started again', async () => {
    const { dir, store } = openTestStore();
    await recordRun(dir, PROJECT, (r) => r.upload('model', randomFile(24 * MiB)));
    const dataDir = tempDir();
    const first = await startServerProcess(dataDir);
    const token = readFileSync(join(dataDir, 'initial-token'), 'utf8').trim();
    const remote = new HttpRemoteClient({ url: first.url, token, getRetries: 0 });
    const total = localObjects(dir);

    let killed: Promise<void> | undefined;
    const failed = await syncOnce(store, remote, {
      uploadConcurrency: 2,
      onProgress: (p) => {
        if (p.bytesDone >= 6 * MiB) killed ??= first.kill9();
      },
    }).catch((error: unknown) => error);
    await killed;
    await startServerProcess(dataDir, first.port);
    const missing = await remote.missingChunks(PROJECT, total);
    const resumed = await syncOnce(store, remote);

    expect(failed).toMatchObject({ code: 'unreachable' });
    expect(missing.length).toBeLessThan(total.length - 4);
    expect(missing.length).toBeGreaterThan(0);
    expect(resumed.chunksSent).toBe(missing.length);
    expect(resumed.chunksSkipped).toBe(total.length - missing.length);
    expect(await remote.missingChunks(PROJECT, total)).toEqual([]);
    expect(resumed.quarantined).toEqual([]);
  });

  it('resumes after the sync process is killed with -9 mid-upload', async () => {
    const { dir } = openTestStore();
    await recordRun(dir, PROJECT, (r) => r.upload('model', randomFile(32 * MiB)));
    const server = await startRecordingServer();
    const total = localObjects(dir);
    const child = spawnSync(dir, server.url, server.token);
    const exited = once(child, 'exit');
    server.onPut = () => {
      if (server.puts.filter((p) => p.status === 201).length >= 5) child.kill('SIGKILL');
    };

    const [, signal] = (await exited) as [number | null, string | null];
    // The server goes on storing what the kernel delivered before the kill; closing waits for it.
    await server.close();
    const heldBefore = heldChunks(server.dataDir, PROJECT);
    const again = await startRecordingServer(server.dataDir, {}, server.port);
    const store = Store.open({ dir });
    const resumed = await syncOnce(
      store,
      new HttpRemoteClient({ url: again.url, token: again.token }),
    );
    await store.close();

    expect(signal).toBe('SIGKILL');
    expect(heldBefore.size).toBeGreaterThanOrEqual(5);
    expect(heldBefore.size).toBeLessThan(total.length);
    expect(resumed.chunksSent).toBe(total.length - heldBefore.size);
    for (const put of again.puts) expect(heldBefore.has(put.digest)).toBe(false);
    expect(storedTwice([...server.puts, ...again.puts])).toEqual([]);
    expect(heldChunks(server.dataDir, PROJECT)).toEqual(new Set(total));
  });
});

/** Every object in a store folder: the manifest and the chunks of what was logged. */
function localObjects(dir: string): Digest[] {
  const names = readdirSync(join(dir, 'objects'), { recursive: true }).map(String);
  return names.map((name) => name.split('/').at(-1) as string).filter(isDigest);
}

/** Uploads of a digest that had been uploaded before, whole or in part. */
function sentAgain(puts: ReadonlyArray<{ digest: Digest }>): number {
  return puts.length - new Set(puts.map((p) => p.digest)).size;
}

/** Digests the server accepted as new more than once: must never happen. */
function storedTwice(puts: ReadonlyArray<{ digest: Digest; status: number }>): Digest[] {
  const stored = puts.filter((p) => p.status === 201).map((p) => p.digest);
  return stored.filter((digest, i) => stored.indexOf(digest) !== i);
}

/** `syncOnce` in a process of its own, uploading one chunk at a time. */
function spawnSync(dir: string, url: string, token: string) {
  const script = `
    import { Store } from '@tidemark/core';
    import { HttpRemoteClient, syncOnce } from '@tidemark/sync-daemon';
    const store = Store.open({ dir: process.argv[1] });
    const remote = new HttpRemoteClient({ url: process.argv[2], token: process.env.SYNC_TOKEN });
    await syncOnce(store, remote, { uploadConcurrency: 1 });
    await store.close();`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, dir, url], {
    cwd: REPO,
    env: { ...process.env, SYNC_TOKEN: token },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  killAfterTest(child);
  return child;
}
