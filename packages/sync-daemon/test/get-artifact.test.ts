import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ArtifactStore,
  type Digest,
  getRun,
  objectPath,
  openReadOnly,
  Store,
  verifyObjects,
} from '@tidemark/core';
import { FakeRemote, getArtifact, syncOnce } from '@tidemark/sync-daemon';
import { describe, expect, it } from 'vitest';
import { openTestStore, randomFile, recordRun, tempDir } from './helpers.js';

/** A store with one synced run holding a 300 KB file at `model`; answers where things are. */
async function syncedModel() {
  const { dir, store } = openTestStore();
  const source = randomFile(300 * 1024);
  const run = await recordRun(dir, 'team/get', (r) => r.upload('model', source));
  const remote = new FakeRemote();
  await syncOnce(store, remote);
  const manifest = getRun(store.db, run.id).files[0]?.manifest as Digest;
  const chunks = (await store.objects.readManifest(manifest)) as { chunks: Digest[] };
  return { dir, store, remote, runId: run.id, source, manifest, chunks: chunks.chunks };
}

function local(dir: string) {
  return { db: openReadOnly(dir), objects: new ArtifactStore(join(dir, 'objects')) };
}

describe('getArtifact', () => {
  it('puts downloaded objects back into the store that lacked them or held them damaged', async () => {
    const { dir, store, remote, runId, source, manifest, chunks } = await syncedModel();
    const damaged = objectPath(store.objects.dir, chunks[0] as Digest);
    chmodSync(damaged, 0o644);
    writeFileSync(damaged, 'not the chunk');
    rmSync(objectPath(store.objects.dir, manifest));
    expect((await verifyObjects(store)).problems).toHaveLength(2);

    const out = join(tempDir(), 'model');
    const report = await getArtifact({ runId, path: 'model', out, local: local(dir), remote });

    expect(readFileSync(out).equals(readFileSync(source))).toBe(true);
    expect(report).toMatchObject({ remoteObjects: 2, storedObjects: 2, storeFailure: null });
    expect((await verifyObjects(store)).problems).toEqual([]);
  });

  it('still restores when the store cannot take an object back, and says why', async () => {
    const { dir, store, remote, runId, source, manifest } = await syncedModel();
    const fanOut = join(store.objects.dir, manifest.slice(0, 2));
    rmSync(fanOut, { recursive: true });
    writeFileSync(fanOut, 'a file in the way of the folder');

    const out = join(tempDir(), 'model');
    const report = await getArtifact({ runId, path: 'model', out, local: local(dir), remote });

    expect(readFileSync(out).equals(readFileSync(source))).toBe(true);
    expect(report.storedObjects).toBe(0);
    expect(report.storeFailure?.message).toContain(manifest);
  });

  it('writes nothing into a local store that does not hold the run', async () => {
    const { remote, runId, source } = await syncedModel();
    const other = join(tempDir(), '.tidemark');
    await Store.open({ dir: other }).close();

    const out = join(tempDir(), 'model');
    const report = await getArtifact({ runId, path: 'model', out, local: local(other), remote });

    expect(readFileSync(out).equals(readFileSync(source))).toBe(true);
    expect(report.storedObjects).toBe(0);
    expect(existsSync(join(other, 'objects', report.manifest.slice(0, 2)))).toBe(false);
  });

  it('says how to get an object the server does not hold onto it again', async () => {
    const { store, remote, runId, chunks } = await syncedModel();
    remote.state.chunks.get('team/get')?.delete(chunks[0] as Digest);
    rmSync(objectPath(store.objects.dir, chunks[0] as Digest));
    const out = join(tempDir(), 'model');

    const failed = getArtifact({ runId, path: 'model', out, local: local(store.dir), remote });

    await expect(failed).rejects.toMatchObject({
      status: 404,
      message: expect.stringContaining(`does not hold object ${chunks[0]}`),
      hint: expect.stringContaining("'tidemark sync --resend <run>'"),
    });
    expect(existsSync(out)).toBe(false);
  });
});
