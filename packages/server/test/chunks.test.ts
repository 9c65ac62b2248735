import { randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeManifest, getHasher, type Manifest } from '@tidemark/core';
import { CHUNKS_DIR, createToken } from '@tidemark/server';
import { afterEach, describe, expect, it } from 'vitest';
import { chunkPath } from '../src/chunk-layout.js';
import { client, fileObjects, opsFor, startServer, type TestServer } from './harness.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

async function fresh(): Promise<TestServer> {
  const server = await startServer();
  servers.push(server);
  return server;
}

describe('chunks', () => {
  it('stores a chunk once per project: 201 the first time, 200 after', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const bytes = randomBytes(3000);
    const digest = (await getHasher()).digest(bytes);

    const first = await api.put(`/api/v1/chunks/${digest}?project=p`, bytes);
    const second = await api.put(`/api/v1/chunks/${digest}?project=p`, bytes);
    const back = await api.getBytes(`/api/v1/chunks/${digest}?project=p`);

    expect(first).toEqual({ status: 201, body: { stored: true } });
    expect(second).toEqual({ status: 200, body: { stored: false } });
    expect(back.status).toBe(200);
    expect(back.bytes.equals(bytes)).toBe(true);
  });

  it('refuses bytes that do not match the digest, of the same or another size', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const bytes = randomBytes(1000);
    const digest = (await getHasher()).digest(bytes);
    const flipped = Buffer.from(bytes);
    flipped[10] = (flipped[10] as number) ^ 1;

    const sameSize = await api.put(`/api/v1/chunks/${digest}?project=p`, flipped);
    const shorter = await api.put(`/api/v1/chunks/${digest}?project=p`, bytes.subarray(1));
    const missing = await api.post('/api/v1/chunks/missing', { project: 'p', digests: [digest] });

    expect(sameSize).toMatchObject({ status: 400, body: { error: { code: 'digest_mismatch' } } });
    expect(shorter).toMatchObject({ status: 400, body: { error: { code: 'digest_mismatch' } } });
    expect(missing.body).toEqual({ missing: [digest] });
  });

  it("answers presence per project: B is told A's chunk is missing and cannot read it", async () => {
    const server = await fresh();
    const tokenA = createToken(server.dataDir, { projects: ['team/a'] }).token;
    const tokenB = createToken(server.dataDir, { projects: ['team/b'] }).token;
    const a = client(server.url, tokenA);
    const b = client(server.url, tokenB);
    const bytes = randomBytes(2000);
    const digest = (await getHasher()).digest(bytes);
    await a.put(`/api/v1/chunks/${digest}?project=team/a`, bytes);

    const askA = await a.post('/api/v1/chunks/missing', { project: 'team/a', digests: [digest] });
    const askB = await b.post('/api/v1/chunks/missing', {
      project: 'team/b',
      digests: [digest, digest],
    });
    const readB = await b.get(`/api/v1/chunks/${digest}?project=team/b`);
    const uploadB = await b.put(`/api/v1/chunks/${digest}?project=team/b`, bytes);

    expect(askA.body).toEqual({ missing: [] });
    expect(askB.body).toEqual({ missing: [digest] });
    expect(readB.status).toBe(404);
    expect(uploadB).toEqual({ status: 201, body: { stored: true } });
  });

  it('rejects file.add with missing_chunks until manifest and chunks are uploaded, then applies it', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const content = randomBytes(5000);
    const objects = await fileObjects(content);
    const run = opsFor('team/mnist');
    const add = run.file(1, 'model/weights.bin', objects.manifestDigest, content.length);

    const early = await api.ops([run.create(0), add]);
    await api.put(
      `/api/v1/chunks/${objects.manifestDigest}?project=team/mnist`,
      objects.manifestBytes,
    );
    const half = await api.ops([add]);
    const asked = await api.post('/api/v1/chunks/missing', {
      project: 'team/mnist',
      digests: objects.manifest.type === 'file' ? objects.manifest.chunks : [],
    });
    for (const chunk of objects.chunks) {
      await api.put(`/api/v1/chunks/${chunk.digest}?project=team/mnist`, chunk.bytes);
    }
    const late = await api.ops([add]);

    expect(early.body.results.map((r) => r.status)).toEqual(['applied', 'rejected']);
    expect(early.body.results[1]?.code).toBe('missing_chunks');
    expect(half.body.results[0]).toMatchObject({ status: 'rejected', code: 'missing_chunks' });
    expect(asked.body.missing).toHaveLength(objects.chunks.length);
    expect(late.body.results[0]).toMatchObject({ status: 'applied' });
    const file = await api.getBytes(`/api/v1/runs/${run.runId}/files/model/weights.bin`);
    expect(file.status).toBe(200);
    expect(file.bytes.equals(content)).toBe(true);
    const manifest = await api.get(`/api/v1/runs/${run.runId}/files/model/weights.bin?manifest=1`);
    expect(manifest.body).toEqual(objects.manifest);
  });

  it('does not let project B point an op at chunks only project A uploaded', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const objects = await fileObjects(randomBytes(1500));
    await api.put(`/api/v1/chunks/${objects.manifestDigest}?project=team/a`, objects.manifestBytes);
    for (const chunk of objects.chunks)
      await api.put(`/api/v1/chunks/${chunk.digest}?project=team/a`, chunk.bytes);
    const inB = opsFor('team/b');

    const fileAdd = await api.ops([inB.file(1, 'f', objects.manifestDigest, 1500)]);
    const filePoint = await api.ops([
      inB.points(2, [{ path: 'images', type: 'file', points: [[0, 2, objects.manifestDigest]] }]),
    ]);

    expect(fileAdd.body.results[0]).toMatchObject({ status: 'rejected', code: 'missing_chunks' });
    expect(filePoint.body.results[0]).toMatchObject({ status: 'rejected', code: 'missing_chunks' });
  });

  it('rejects a file.add whose size disagrees with its manifest', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const objects = await fileObjects(randomBytes(1500));
    await api.put(`/api/v1/chunks/${objects.manifestDigest}?project=p`, objects.manifestBytes);
    for (const chunk of objects.chunks)
      await api.put(`/api/v1/chunks/${chunk.digest}?project=p`, chunk.bytes);

    const answer = await api.ops([opsFor('p').file(1, 'f', objects.manifestDigest, 1499)]);

    expect(answer.body.results[0]).toMatchObject({ status: 'rejected', code: 'manifest_mismatch' });
  });

  it("answers a directory's manifest and lets a file series point at uploaded content", async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const hasher = await getHasher();
    const one = randomBytes(700);
    const two = randomBytes(300);
    const dir: Manifest = {
      v: 1,
      type: 'dir',
      size: 1000,
      entries: [
        { path: 'a.txt', size: 700, chunks: [hasher.digest(one)] },
        { path: 'sub/b.txt', size: 300, chunks: [hasher.digest(two)] },
      ],
    };
    const dirBytes = encodeManifest(dir);
    const dirDigest = hasher.digest(dirBytes);
    for (const bytes of [one, two, dirBytes]) {
      await api.put(`/api/v1/chunks/${hasher.digest(bytes)}?project=p`, bytes);
    }
    const run = opsFor('p');

    const answer = await api.ops([
      run.file(1, 'dataset', dirDigest, 1000, 'dir', 2),
      run.points(2, [{ path: 'samples', type: 'file', points: [[0, 2, dirDigest]] }]),
    ]);

    expect(answer.body.results.map((r) => r.status)).toEqual(['applied', 'applied']);
    expect((await api.get(`/api/v1/runs/${run.runId}/files/dataset`)).body).toEqual(dir);
    expect((await api.get(`/api/v1/runs/${run.runId}/series?path=samples`)).body.points).toEqual([
      [0, 2, dirDigest],
    ]);
  });

  it('applies a folder whose file names hold backslashes, as core uploads them', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const hasher = await getHasher();
    const bytes = randomBytes(500);
    const dir: Manifest = {
      v: 1,
      type: 'dir',
      size: 500,
      entries: [{ path: 't/back\\slash', size: 500, chunks: [hasher.digest(bytes)] }],
    };
    const dirBytes = encodeManifest(dir);
    for (const object of [bytes, dirBytes]) {
      await api.put(`/api/v1/chunks/${hasher.digest(object)}?project=p`, object);
    }
    const run = opsFor('p');

    const answer = await api.ops([run.file(1, 'snap', hasher.digest(dirBytes), 500, 'dir', 1)]);

    expect(answer.body.results[0]).toMatchObject({ status: 'applied' });
    expect((await api.get(`/api/v1/runs/${run.runId}/files/snap`)).body).toEqual(dir);
  });

  it('sets a chunk found corrupt on disk aside and then reports it missing', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const bytes = randomBytes(900);
    const digest = (await getHasher()).digest(bytes);
    await api.put(`/api/v1/chunks/${digest}?project=p`, bytes);
    const path = chunkPath(join(server.dataDir, CHUNKS_DIR), 'p', digest);
    chmodSync(path, 0o644);
    writeFileSync(path, randomBytes(900));

    const read = await api.get(`/api/v1/chunks/${digest}?project=p`);
    const missing = await api.post('/api/v1/chunks/missing', { project: 'p', digests: [digest] });
    const again = await api.put(`/api/v1/chunks/${digest}?project=p`, bytes);

    expect(read.status).toBe(404);
    expect(read.body.error).toEqual({
      code: 'chunk_corrupt',
      message: expect.any(String),
      hint: expect.stringContaining('tidemark sync --resend'),
    });
    expect(JSON.stringify(read.body)).not.toContain(server.dataDir);
    expect(missing.body).toEqual({ missing: [digest] });
    expect(again).toEqual({ status: 201, body: { stored: true } });
    expect((await api.getBytes(`/api/v1/chunks/${digest}?project=p`)).bytes.equals(bytes)).toBe(
      true,
    );
  });
});
