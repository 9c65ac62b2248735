import { createHash, randomFillSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Digest, Seq } from '@tidemark/core';
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
});

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
