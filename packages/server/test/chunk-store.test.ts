import { randomBytes } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Digest, getHasher, type Hasher, objectPath, silentLogger } from '@tidemark/core';
import { CHUNKS_DIR, createServer, ensureInitialToken } from '@tidemark/server';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ChunkStore } from '../src/chunk-store.js';
import { openServerDatabase } from '../src/server-schema.js';
import { client, startServer, tempDir } from './harness.js';

const opened: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const close of opened.splice(0)) await close();
});

function openChunks(): { chunks: ChunkStore; dataDir: string } {
  const dataDir = tempDir();
  const db = openServerDatabase(dataDir);
  opened.push(() => {
    db.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { chunks: new ChunkStore(dataDir, db, silentLogger), dataDir };
}

describe('the server chunk store', () => {
  it('refuses other bytes under a digest it stores and keeps the stored copy', async () => {
    const { chunks, dataDir } = openChunks();
    const first = randomBytes(2000);
    const other = randomBytes(2000);
    const digest = (await getHasher()).digest(first);
    // A hasher that names every input alike stands in for a real collision.
    const colliding: Hasher = {
      digest: () => digest,
      stream: () => ({ update() {}, digest: () => digest }),
    };

    await chunks.put('team/a', digest, first, 1, colliding);
    const refused = await chunks.put('team/b', digest, other, 2, colliding).catch((e) => e);

    expect(refused).toMatchObject({ code: 'digest_collision', status: 409 });
    expect(readFileSync(objectPath(join(dataDir, CHUNKS_DIR), digest)).equals(first)).toBe(true);
    expect(chunks.holds('team/b', digest)).toBe(false);
    expect(chunks.holds('team/a', digest)).toBe(true);
    expect(tempFiles(dataDir)).toEqual([]);
  });

  it('replaces a damaged copy when another project uploads the intact bytes', async () => {
    const { chunks, dataDir } = openChunks();
    const hasher = await getHasher();
    const bytes = randomBytes(5000);
    const digest = hasher.digest(bytes);
    await chunks.put('team/a', digest, bytes, 1, hasher);
    const path = objectPath(join(dataDir, CHUNKS_DIR), digest);
    chmodSync(path, 0o644);
    writeFileSync(path, randomBytes(5000));

    const stored = await chunks.put('team/b', digest, bytes, 2, hasher);

    expect(stored).toBe(true);
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(readdirSync(join(dataDir, 'corrupt-chunks'))).toHaveLength(1);
    expect(await chunks.readAsync(digest, hasher)).toEqual(bytes);
  });

  it('stores an upload that arrives twice at once a single time', async () => {
    const { chunks, dataDir } = openChunks();
    const hasher = await getHasher();
    const bytes = randomBytes(300_000);
    const digest: Digest = hasher.digest(bytes);

    const answers = await Promise.all([
      chunks.put('team/a', digest, bytes, 1, hasher),
      chunks.put('team/a', digest, bytes, 1, hasher),
    ]);

    expect(answers.sort()).toEqual([false, true]);
    expect(chunks.missing('team/a', [digest])).toEqual([]);
    expect(tempFiles(dataDir)).toEqual([]);
  });
});

function tempFiles(dataDir: string): string[] {
  return (readdirSync(join(dataDir, CHUNKS_DIR), { recursive: true }) as string[]).filter((name) =>
    name.includes('.tmp-'),
  );
}

describe('chunk durability', () => {
  it('answers an upload once written and makes it durable on commit', async () => {
    const server = await startServer();
    opened.push(() => server.stop());
    const api = client(server.url, server.token);
    const hasher = await getHasher();
    const bytes = randomBytes(4000);
    const digest = hasher.digest(bytes);
    const absent = hasher.digest(randomBytes(10));

    const put = await api.put(`/api/v1/chunks/${digest}?project=p`, bytes);
    const before = pendingRows(server.dataDir);
    const commit = await api.post('/api/v1/chunks/commit', {
      project: 'p',
      digests: [digest, absent],
    });

    expect(put.status).toBe(201);
    expect(before).toEqual([digest]);
    expect(commit).toEqual({ status: 200, body: { missing: [absent] } });
    expect(pendingRows(server.dataDir)).toEqual([]);
  });

  it('keeps uncommitted chunks that are intact across a restart and forgets damaged ones', async () => {
    const dataDir = tempDir();
    opened.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const token = readFileSync(ensureInitialToken(dataDir).path, 'utf8').trim();
    const hasher = await getHasher();
    const [kept, damaged] = [randomBytes(3000), randomBytes(3000)];
    const first = createServer({ dataDir });
    const { url } = await first.listen(0);
    for (const bytes of [kept, damaged]) {
      await client(url, token).put(`/api/v1/chunks/${hasher.digest(bytes)}?project=p`, bytes);
    }
    await first.close();
    const path = objectPath(join(dataDir, CHUNKS_DIR), hasher.digest(damaged));
    chmodSync(path, 0o644);
    writeFileSync(path, randomBytes(3000));

    const second = createServer({ dataDir });
    const again = await second.listen(0);
    const missing = await client(again.url, token).post('/api/v1/chunks/missing', {
      project: 'p',
      digests: [hasher.digest(kept), hasher.digest(damaged)],
    });
    await second.close();

    expect(missing.body).toEqual({ missing: [hasher.digest(damaged)] });
    expect(pendingRows(dataDir)).toEqual([]);
  });
});

function pendingRows(dataDir: string): string[] {
  const db = new Database(join(dataDir, 'server.db'), { readonly: true });
  try {
    return db.prepare('SELECT digest FROM pending_chunks').pluck().all() as string[];
  } finally {
    db.close();
  }
}
