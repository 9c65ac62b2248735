import { createHash, randomFillSync } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Digest,
  getRun,
  manifestChunks,
  objectPath,
  openReadOnly,
  type Seq,
  type Store,
} from '@tidemark/core';
import { createToken } from '@tidemark/server';
import { HttpRemoteClient, syncOnce } from '@tidemark/sync-daemon';
import { afterEach, describe, expect, it } from 'vitest';
import { heldChunks, startRecordingServer, stopAll } from './artifact-support.js';
import { openTestStore, randomFile, recordRun, tempDir } from './helpers.js';

afterEach(stopAll);

const MiB = 1024 * 1024;

describe('artifact chunks over HTTP to @tidemark/server', () => {
  it('sends only the few chunks that 1 MiB appended to a 200 MiB file, or bytes inserted in its middle, changed', async () => {
    const { dir, store } = openTestStore();
    const work = tempDir();
    const base = randomFillSync(Buffer.allocUnsafe(200 * MiB));
    const middle = 100 * MiB + 4321;
    const versions = [
      base,
      Buffer.concat([base, randomFillSync(Buffer.allocUnsafe(MiB))]),
      Buffer.concat([base.subarray(0, middle), Buffer.from('inserted'), base.subarray(middle)]),
    ];
    const server = await startRecordingServer();
    const remote = new HttpRemoteClient({ url: server.url, token: server.token });

    const sent: number[] = [];
    let runId = '';
    for (const [i, bytes] of versions.entries()) {
      writeFileSync(join(work, 'checkpoint.bin'), bytes);
      const run = await recordRun(dir, 'team/cv', (r) =>
        r.upload(`model/v${i}`, join(work, 'checkpoint.bin')),
      );
      runId = run.id;
      const putsBefore = server.puts.length;
      const report = await syncOnce(store, remote);
      expect(report.quarantined).toEqual([]);
      expect(report.chunksSent).toBe(server.puts.length - putsBefore);
      sent.push(report.chunksSent);
    }

    // The first pass sends about 200 chunks; each later one its manifest and a few chunks.
    expect(sent[0]).toBeGreaterThan(100);
    expect(sent[1]).toBeLessThanOrEqual(1 + 3);
    expect(sent[2]).toBeLessThanOrEqual(1 + 3);
    expect(new Set(server.puts.map((p) => p.digest)).size).toBe(server.puts.length);

    const download = await fetch(`${server.url}/api/v1/runs/${runId}/files/model/v2`, {
      headers: { authorization: `Bearer ${server.token}` },
    });
    expect(download.status).toBe(200);
    expect(sha256(Buffer.from(await download.arrayBuffer()))).toBe(sha256(versions[2] as Buffer));
  });

  it('never answers one project with chunks another uploaded: project B sends all its chunks itself', async () => {
    const server = await startRecordingServer();
    const tokenA = createToken(server.dataDir, { projects: ['team/a'] }).token;
    const tokenB = createToken(server.dataDir, { projects: ['team/b'] }).token;
    const artifact = randomFile(6 * MiB);
    const a = openTestStore();
    const b = openTestStore();
    await recordRun(a.dir, 'team/a', (r) => r.upload('model', artifact));
    await recordRun(b.dir, 'team/b', (r) => r.upload('model', artifact));
    const remoteA = new HttpRemoteClient({ url: server.url, token: tokenA });
    const remoteB = new HttpRemoteClient({ url: server.url, token: tokenB });

    const first = await syncOnce(a.store, remoteA);
    const digests = [...heldChunks(server.dataDir, 'team/a')] as Digest[];
    const askedByB = await remoteB.missingChunks('team/b', digests);
    const readByB = await remoteB.getChunk('team/b', digests[0] as Digest).catch((e) => e);
    const second = await syncOnce(b.store, remoteB);

    expect(first.chunksSent).toBe(digests.length);
    expect(askedByB).toEqual(digests);
    expect(readByB).toMatchObject({ status: 404 });
    expect(second.chunksSent).toBe(digests.length);
    expect(second.chunksSkipped).toBe(0);
    expect(heldChunks(server.dataDir, 'team/b')).toEqual(new Set(digests));
    expect(b.store.journal.countAfter(0 as Seq)).toBe(second.opsApplied);
  });

  it('leaves a local object that cannot be read out of its batch, quarantines its run and sends the rest', async () => {
    const { dir, store } = openTestStore();
    const broken = await recordRun(dir, 'team/a', (r) => r.upload('model', randomFile(300_000)));
    const fine = await recordRun(dir, 'team/a', (r) => r.upload('model', randomFile(300_000)));
    rmSync(objectPath(join(dir, 'objects'), await firstChunk(store, broken.id)));
    const server = await startRecordingServer();
    const remote = new HttpRemoteClient({ url: server.url, token: server.token });

    const report = await syncOnce(store, remote);

    expect(report.quarantined).toEqual([
      { runId: broken.id, reason: expect.stringMatching(/^object_missing/), isNew: true },
    ]);
    expect((await remote.getRun(fine.id)).files).toHaveLength(1);
    expect(heldChunks(server.dataDir, 'team/a').has(await firstChunk(store, fine.id))).toBe(true);
    expect(server.puts.every((put) => put.status === 201)).toBe(true);
  });

  it('has the server refuse a chunk with a flipped byte, and quarantines its run only', async () => {
    const { dir, store } = openTestStore();
    const broken = await recordRun(dir, 'team/a', (r) => r.upload('model', randomFile(300_000)));
    const fine = await recordRun(dir, 'team/a', (r) => r.upload('model', randomFile(300_000)));
    const damaged = await firstChunk(store, broken.id);
    const path = objectPath(join(dir, 'objects'), damaged);
    const bytes = readFileSync(path);
    bytes[1000] = (bytes[1000] as number) ^ 0x40;
    writeFileSync(path, bytes);
    const server = await startRecordingServer();
    const remote = new HttpRemoteClient({ url: server.url, token: server.token });

    const report = await syncOnce(store, remote);

    expect(report.quarantined).toEqual([
      { runId: broken.id, reason: expect.stringMatching(/^object_corrupt/), isNew: true },
    ]);
    expect((await remote.getRun(fine.id)).files).toHaveLength(1);
    expect(heldChunks(server.dataDir, 'team/a').has(damaged)).toBe(false);
    expect(server.puts.filter((put) => put.digest === damaged).map((put) => put.status)).toEqual([
      400,
    ]);
  });

  it('sends nothing of a chunk file cut short or grown, and quarantines its run', async () => {
    const { dir, store } = openTestStore();
    const cut = await recordRun(dir, 'team/a', (r) => r.upload('model', randomFile(300_000)));
    const grown = await recordRun(dir, 'team/a', (r) => r.upload('model', randomFile(300_000)));
    const damaged = [await firstChunk(store, cut.id), await firstChunk(store, grown.id)];
    const cutPath = objectPath(join(dir, 'objects'), damaged[0] as Digest);
    writeFileSync(cutPath, readFileSync(cutPath).subarray(0, 1000));
    const grownPath = objectPath(join(dir, 'objects'), damaged[1] as Digest);
    writeFileSync(grownPath, Buffer.concat([readFileSync(grownPath), Buffer.from('garbage\n')]));
    const server = await startRecordingServer();
    const remote = new HttpRemoteClient({ url: server.url, token: server.token });

    const report = await syncOnce(store, remote);

    expect(report.quarantined).toEqual([
      { runId: cut.id, reason: expect.stringMatching(/^object_corrupt/), isNew: true },
      { runId: grown.id, reason: expect.stringMatching(/^object_corrupt/), isNew: true },
    ]);
    expect(server.puts.filter((put) => damaged.includes(put.digest))).toEqual([]);
    expect([...heldChunks(server.dataDir, 'team/a')].filter((d) => damaged.includes(d))).toEqual(
      [],
    );
  });

  it('falls back to one object per request when the server refuses batches this large', async () => {
    const { dir, store } = openTestStore();
    const run = await recordRun(dir, 'team/a', async (r) => {
      await r.upload('a', randomFile(5000));
      await r.upload('b', randomFile(6000));
      await r.upload('c', randomFile(7000));
    });
    const server = await startRecordingServer(tempDir(), { maxChunksPerBatch: 1 });
    const remote = new HttpRemoteClient({ url: server.url, token: server.token });

    const report = await syncOnce(store, remote);

    expect(report.quarantined).toEqual([]);
    expect((await remote.getRun(run.id)).files).toHaveLength(3);
    expect(report.chunksSent).toBe(6);
    expect(server.puts.filter((put) => put.status === 201)).toHaveLength(6);
  });

  it('sends a run again on request, with the chunk the server set aside as damaged', async () => {
    const { dir, store } = openTestStore();
    const run = await recordRun(dir, 'team/a', (r) => r.upload('model', randomFile(600_000)));
    const server = await startRecordingServer();
    const remote = new HttpRemoteClient({ url: server.url, token: server.token });
    await syncOnce(store, remote);
    const chunk = await firstChunk(store, run.id);
    const onServer = readdirSync(join(server.dataDir, 'chunks'), { recursive: true })
      .map(String)
      .find((name) => name.endsWith(chunk)) as string;
    const damaged = readFileSync(join(server.dataDir, 'chunks', onServer));
    damaged[7] = (damaged[7] as number) ^ 1;
    writeFileSync(join(server.dataDir, 'chunks', onServer), damaged);
    const found = await remote.getChunk('team/a', chunk).catch((error: unknown) => error);

    const plain = await syncOnce(store, remote);
    const again = await syncOnce(store, remote, { resend: [run.id] });
    const download = await fetch(`${server.url}/api/v1/runs/${run.id}/files/model`, {
      headers: { authorization: `Bearer ${server.token}` },
    });

    expect(found).toMatchObject({ code: expect.stringMatching(/server_error|rejected/) });
    expect(plain.chunksSent).toBe(0);
    expect(again.resent).toEqual([run.id]);
    expect(again.chunksSent).toBe(1);
    expect(again.opsApplied).toBe(0);
    expect(again.opsDuplicate).toBeGreaterThan(0);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).length).toBe(600_000);
  });

  it('refuses to resend a run the store does not hold or one held back, sending nothing', async () => {
    const { dir, store } = openTestStore();
    await recordRun(dir, 'team/a', (r) => r.upload('model', randomFile(1000)));
    const server = await startRecordingServer();
    const remote = new HttpRemoteClient({ url: server.url, token: server.token });

    const unknown = await syncOnce(store, remote, { resend: ['nope'] }).catch((e: unknown) => e);

    expect(unknown).toMatchObject({ code: 'run_not_found', hint: expect.any(String) });
    expect(server.puts).toEqual([]);
  });
});

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The first chunk of the first file a run logged, read from its manifest. */
async function firstChunk(store: Store, runId: string): Promise<Digest> {
  const db = openReadOnly(store.dir);
  const manifest = getRun(db, runId).files[0]?.manifest as Digest;
  db.close();
  return manifestChunks(await store.objects.readManifest(manifest))[0] as Digest;
}
