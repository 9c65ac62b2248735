import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { type Digest, getRun, objectPath, openReadOnly, type Seq } from '@tidemark/core';
import { FakeRemote, RemoteError, syncOnce } from '@tidemark/sync-daemon';
import { describe, expect, it } from 'vitest';
import { openTestStore, randomFile, recordRun } from './helpers.js';

describe('syncOnce with artifacts', () => {
  it('uploads an artifact logged twice, in two runs and as a file point, exactly once', async () => {
    const { dir, store } = openTestStore();
    const artifact = randomFile(2 * 1024 * 1024);
    for (const name of ['a', 'b']) {
      await recordRun(dir, 'p', async (r) => {
        r.set('name', name);
        await r.upload('model/first', artifact);
        await r.upload('model/second', artifact);
        await r.logFile('samples', artifact, { step: 1 });
      });
    }
    const remote = new FakeRemote();

    const report = await syncOnce(store, remote, { limits: { maxEntries: 3 } });

    expect(report.quarantined).toEqual([]);
    expect(report.opsApplied).toBe(store.journal.countAfter(0 as Seq));
    expect(report.chunksSent).toBeGreaterThanOrEqual(2);
    expect(remote.chunksReceived).toHaveLength(report.chunksSent);
    expect(new Set(remote.chunksReceived).size).toBe(report.chunksSent);
    expect(remote.bytesReceived).toBe(report.bytesSent);
  });

  it('uploads again and resends once when the server answers missing_chunks after claiming it held them', async () => {
    const { dir, store } = openTestStore();
    const run = await recordRun(dir, 'p', async (r) => {
      await r.upload('model', randomFile(400 * 1024));
    });
    const remote = new FakeRemote();
    remote.pretendPresentNext(1);

    const report = await syncOnce(store, remote);

    expect(report.quarantined).toEqual([]);
    expect(report.opsApplied).toBe(store.journal.countAfter(0 as Seq));
    expect(report.opsSent).toBe(store.journal.countAfter(0 as Seq));
    expect(report.requests).toBe(2);
    expect(remote.calls.missingChunks).toBe(2);
    expect((await remote.getRun(run.id)).files.map((f) => f.path)).toEqual(['model']);
  });

  it('quarantines a run whose op is still missing chunks after the retry, and syncs the others', async () => {
    const { dir, store } = openTestStore();
    const stuck = await recordRun(dir, 'p', async (r) => {
      await r.upload('model', randomFile(1000));
    });
    const fine = await recordRun(dir, 'p', (r) => r.log('m', 1));
    const remote = new FakeRemote();
    remote.pretendPresentNext(2);

    const report = await syncOnce(store, remote);

    expect(report.quarantined).toEqual([
      { runId: stuck.id, reason: expect.stringContaining('missing_chunks'), isNew: true },
    ]);
    expect((await remote.getRun(fine.id)).state).toBe('finished');
    expect(report.cursor).toBe(store.journal.lastSeq());
  });

  it('quarantines a run whose local object is gone, without sending its ops, and syncs the others', async () => {
    const { dir, store } = openTestStore();
    const broken = await recordRun(dir, 'p', async (r) => {
      r.set('before', 1);
      await r.upload('model', randomFile(1000));
      r.set('after', 2);
    });
    const fine = await recordRun(dir, 'p', async (r) => {
      await r.upload('model', randomFile(1000));
    });
    const db = openReadOnly(dir);
    const manifest = getRun(db, broken.id).files[0]?.manifest as Digest;
    db.close();
    rmSync(objectPath(join(dir, 'objects'), manifest));
    const remote = new FakeRemote();

    const report = await syncOnce(store, remote);

    expect(report.quarantined).toEqual([
      { runId: broken.id, reason: expect.stringMatching(/^object_missing/), isNew: true },
    ]);
    expect(remote.state.runs.has(broken.id)).toBe(false);
    expect((await remote.getRun(fine.id)).files).toHaveLength(1);
    expect(report.opsSkipped).toBeGreaterThan(0);
  });

  it('sends a chunk the server found damaged once more before giving up on it', async () => {
    const { dir, store } = openTestStore();
    const run = await recordRun(dir, 'p', async (r) => {
      await r.upload('model', randomFile(1000));
    });
    const remote = new FakeRemote();
    const mismatch = RemoteError.rejected('PUT /api/v1/chunks/x', 400, 'digest_mismatch');
    remote.failNext(1, mismatch, { method: 'putChunk' });

    const report = await syncOnce(store, remote);

    expect(report.quarantined).toEqual([]);
    expect((await remote.getRun(run.id)).files).toHaveLength(1);

    const { dir: dir2, store: store2 } = openTestStore();
    const refused = await recordRun(dir2, 'p', async (r) => {
      await r.upload('model', randomFile(1000));
    });
    const strict = new FakeRemote();
    strict.failNext(2, mismatch, { method: 'putChunk' });
    const second = await syncOnce(store2, strict);
    expect(second.quarantined).toEqual([
      { runId: refused.id, reason: expect.stringContaining('digest_mismatch'), isNew: true },
    ]);
  });

  it('ends the pass with auth_failed on a 403 for objects, quarantining nothing and keeping the cursor', async () => {
    const { dir, store } = openTestStore();
    const open = await recordRun(dir, 'team/open', (r) => r.log('m', 1));
    const secret = await recordRun(dir, 'team/secret', async (r) => {
      await r.upload('model', randomFile(1000));
    });
    const remote = new FakeRemote();
    remote.failNext(1, RemoteError.authFailed('POST /api/v1/chunks/missing', 403), {
      method: 'missingChunks',
    });

    const error = await syncOnce(store, remote, { limits: { maxEntries: 1 } }).catch(
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({ code: 'auth_failed', status: 403, retryable: false });
    expect((error as RemoteError).hint).toMatch(/team\/secret.*--only/);
    expect(store.db.prepare('SELECT count(*) AS n FROM quarantine').get()).toEqual({ n: 0 });
    expect(store.journal.getCursor(remote.url)).toBeLessThan(store.journal.lastSeq());
    expect((await remote.getRun(open.id)).state).toBe('finished');

    const healed = await syncOnce(store, remote);

    expect(healed.quarantined).toEqual([]);
    expect((await remote.getRun(secret.id)).files).toHaveLength(1);
    expect(healed.cursor).toBe(store.journal.lastSeq());
  });
});
