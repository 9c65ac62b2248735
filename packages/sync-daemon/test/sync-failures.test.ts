import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Seq } from '@tidemark/core';
import { FakeRemote, RemoteError, syncOnce } from '@tidemark/sync-daemon';
import { describe, expect, it } from 'vitest';
import { logPoints, openTestStore, randomFile, recordRun } from './helpers.js';

const OPS = 'POST /api/v1/ops';

describe('syncOnce when the remote fails', () => {
  it('keeps the cursor after the last answered request when a later one fails, and finishes next time', async () => {
    const { dir, store } = openTestStore();
    const run = await recordRun(dir, 'p', (r) => logPoints(r, 'm', 14));
    const entries = store.journal.countAfter(0 as Seq);
    const remote = new FakeRemote();
    remote.failNext(1, RemoteError.serverError(OPS, 503), { method: 'sendOps', after: 1 });

    const failed = syncOnce(store, remote, { limits: { maxEntries: 5 } });

    await expect(failed).rejects.toMatchObject({ code: 'server_error', retryable: true });
    const firstRequestEnd = 5;
    expect(store.journal.getCursor(remote.url)).toBe(firstRequestEnd);
    expect(remote.appliedCount).toBe(5);

    const next = await syncOnce(store, remote, { limits: { maxEntries: 5 } });

    expect(next.opsSent).toBe(entries - 5);
    expect(next.opsDuplicate).toBe(0);
    expect(remote.appliedCount).toBe(entries);
    expect(new Set(remote.opsReceived).size).toBe(remote.opsReceived.length);
    expect((await remote.getSeries(run.id, 'm')).points).toHaveLength(14);
  });

  it('resends a request whose answer was lost after the server applied it, applying nothing twice', async () => {
    const { dir, store } = openTestStore();
    const run = await recordRun(dir, 'p', (r) => logPoints(r, 'm', 10));
    const remote = new FakeRemote();
    remote.failNext(1, RemoteError.unreachable(OPS, 'ECONNRESET'), {
      method: 'sendOps',
      after: 1,
      afterApplying: true,
    });

    await expect(syncOnce(store, remote, { limits: { maxEntries: 5 } })).rejects.toMatchObject({
      code: 'unreachable',
    });
    expect(store.journal.getCursor(remote.url)).toBe(5);
    const next = await syncOnce(store, remote, { limits: { maxEntries: 5 } });

    expect(next.opsDuplicate).toBe(5);
    expect(next.opsApplied).toBe(store.journal.countAfter(0 as Seq) - 10);
    expect((await remote.getSeries(run.id, 'm')).points).toHaveLength(10);
  });

  it('never moves the cursor or changes local data when the first request fails', async () => {
    const { dir, store } = openTestStore();
    await recordRun(dir, 'p', (r) => logPoints(r, 'm', 3));
    const entries = store.journal.countAfter(0 as Seq);
    const remote = new FakeRemote();

    for (const error of [
      RemoteError.serverError(OPS, 503, 2_000),
      RemoteError.unreachable(OPS, 'ECONNREFUSED'),
      RemoteError.protocol(OPS, 'the answer is not JSON'),
    ]) {
      remote.failNext(1, error, { method: 'sendOps' });
      await expect(syncOnce(store, remote)).rejects.toBe(error);
      expect(store.journal.getCursor(remote.url)).toBe(0);
      expect(store.journal.countAfter(0 as Seq)).toBe(entries);
    }
    expect(remote.appliedCount).toBe(0);
  });

  it('throws auth_failed at once on a refused token and does not try again', async () => {
    const { dir, store } = openTestStore();
    await recordRun(dir, 'p', (r) => logPoints(r, 'm', 12));
    const remote = new FakeRemote();
    remote.failNext(100, RemoteError.authFailed(OPS, 401), { method: 'sendOps' });

    const error = await syncOnce(store, remote, { limits: { maxEntries: 4 } }).catch((e) => e);

    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({ code: 'auth_failed', retryable: false, status: 401 });
    expect(error.hint).toMatch(/TIDEMARK_API_TOKEN/);
    expect(remote.calls.sendOps).toBe(1);
    expect(store.journal.getCursor(remote.url)).toBe(0);
  });

  it('resumes an interrupted upload without sending again the chunks the server got', async () => {
    const { dir, store } = openTestStore();
    await recordRun(dir, 'p', async (r) => {
      await r.upload('checkpoint', randomFile(6 * 1024 * 1024));
    });
    const objects = readdirSync(join(dir, 'objects'), { recursive: true }).filter((f) =>
      /-\d+$/.test(String(f)),
    );
    expect(objects.length).toBeGreaterThan(3);
    const remote = new FakeRemote();
    remote.failNext(1, RemoteError.unreachable('PUT /api/v1/chunks/x', 'ETIMEDOUT'), {
      method: 'putChunk',
      after: 2,
    });

    await expect(syncOnce(store, remote, { uploadConcurrency: 1 })).rejects.toMatchObject({
      code: 'unreachable',
    });
    expect(remote.chunksReceived).toHaveLength(2);
    expect(store.journal.getCursor(remote.url)).toBe(0);

    const next = await syncOnce(store, remote);

    expect(next.chunksSkipped).toBe(2);
    expect(next.chunksSent).toBe(objects.length - 2);
    expect(new Set(remote.chunksReceived).size).toBe(remote.chunksReceived.length);
    expect(remote.chunksReceived).toHaveLength(objects.length);
  });

  it('stops at the next request boundary when its signal is aborted, cursor after the answered one', async () => {
    const { dir, store } = openTestStore();
    await recordRun(dir, 'p', (r) => logPoints(r, 'm', 10));
    const remote = new FakeRemote();
    const controller = new AbortController();

    const pass = syncOnce(store, remote, {
      limits: { maxEntries: 4 },
      signal: controller.signal,
      onProgress: (p) => {
        if (p.opsDone === 4) controller.abort();
      },
    });

    await expect(pass).rejects.toMatchObject({ name: 'AbortError' });
    expect(store.journal.getCursor(remote.url)).toBe(4);
    expect(remote.calls.sendOps).toBe(1);
  });
});
