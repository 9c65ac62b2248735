import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { type Digest, getHasher, type Hasher, type Logger, silentLogger } from '@tidemark/core';
import { CHUNKS_DIR, createServer, ensureInitialToken } from '@tidemark/server';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { chunkPath, projectFolder } from '../src/chunk-layout.js';
import { ChunkStore } from '../src/chunk-store.js';
import { openServerDatabase } from '../src/server-schema.js';
import { client, startServer, tempDir } from './harness.js';

const opened: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const close of opened.splice(0)) await close();
});

function openChunks(logger: Logger = silentLogger): {
  chunks: ChunkStore;
  dataDir: string;
  db: Database.Database;
} {
  const dataDir = tempDir();
  const db = openServerDatabase(dataDir);
  opened.push(() => {
    db.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { chunks: new ChunkStore(dataDir, db, logger), dataDir, db };
}

/** A logger that keeps every event, to show which path an upload took. */
function recordingLogger(): Logger & { events: string[] } {
  const events: string[] = [];
  const keep = (event: string): void => {
    events.push(event);
  };
  return { events, debug: keep, info: keep, warn: keep, error: keep };
}

/** The real hasher, counting the digests the store computes itself. */
function countingHasher(hasher: Hasher): Hasher & { calls: number } {
  const counting = {
    calls: 0,
    digest: (bytes: Uint8Array) => {
      counting.calls += 1;
      return hasher.digest(bytes);
    },
    stream: () => hasher.stream(),
  };
  return counting;
}

/** Overwrites a stored copy in place, as a failing disk would. */
function damage(path: string, size: number): Buffer {
  const bytes = randomBytes(size);
  chmodSync(path, 0o644);
  writeFileSync(path, bytes);
  return bytes;
}

describe('the server chunk store', () => {
  it("stores the same chunk of two projects in two files and never looks at the other's", async () => {
    const logger = recordingLogger();
    const { chunks, dataDir, db } = openChunks(logger);
    const hasher = countingHasher(await getHasher());
    const [shared, fresh] = [randomBytes(5000), randomBytes(5000)];
    const [sharedDigest, freshDigest] = [hasher.digest(shared), hasher.digest(fresh)];
    await chunks.put('team/a', sharedDigest, shared, 1, hasher);
    const pathA = chunkPath(join(dataDir, CHUNKS_DIR), 'team/a', sharedDigest);
    // A's copy, damaged, is a tripwire: an upload of B that read or compared it would find it
    // corrupt and move it aside.
    const damagedA = damage(pathA, 5000);
    hasher.calls = 0;

    const answers = [
      await chunks.put('team/b', sharedDigest, shared, 2, hasher),
      await chunks.put('team/b', freshDigest, fresh, 2, hasher),
    ];

    const pathB = chunkPath(join(dataDir, CHUNKS_DIR), 'team/b', sharedDigest);
    expect(answers).toEqual([true, true]);
    expect(readFileSync(pathB).equals(shared)).toBe(true);
    expect(statSync(pathB).ino).not.toBe(statSync(pathA).ino);
    expect(readFileSync(pathA).equals(damagedA)).toBe(true);
    expect(existsSync(join(dataDir, 'corrupt-chunks'))).toBe(false);
    // Content A holds took the path of new content: nothing hashed, nothing logged, and the
    // same rows, a pending copy each.
    expect(hasher.calls).toBe(0);
    expect(logger.events).toEqual([]);
    expect(pendingCopies(db).filter((row) => row.startsWith('team/b'))).toEqual(
      [`team/b ${sharedDigest}`, `team/b ${freshDigest}`].sort(),
    );
    expect(chunks.missing('team/b', [sharedDigest, freshDigest])).toEqual([]);
    // B's upload did not repair A's copy either: A's reads still find it damaged.
    await expect(chunks.readAsync('team/a', sharedDigest, hasher)).rejects.toMatchObject({
      code: 'chunk_corrupt',
    });
  });

  it('refuses other bytes under a digest the project holds and keeps its copy', async () => {
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
    const refused = await chunks.put('team/a', digest, other, 2, colliding).catch((e) => e);
    const elsewhere = await chunks.put('team/b', digest, other, 3, colliding);

    expect(refused).toMatchObject({ code: 'digest_collision', status: 409 });
    const path = (project: string) => chunkPath(join(dataDir, CHUNKS_DIR), project, digest);
    expect(readFileSync(path('team/a')).equals(first)).toBe(true);
    // Crafted bytes in another project land in that project's folder and change nothing of A's.
    expect(elsewhere).toBe(true);
    expect(readFileSync(path('team/b')).equals(other)).toBe(true);
    expect(chunks.holds('team/a', digest)).toBe(true);
    expect(tempFiles(dataDir)).toEqual([]);
  });

  it('replaces a damaged copy when the same project uploads the intact bytes again', async () => {
    const { chunks, dataDir, db } = openChunks();
    const hasher = await getHasher();
    const bytes = randomBytes(5000);
    const digest = hasher.digest(bytes);
    await chunks.put('team/a', digest, bytes, 1, hasher);
    await chunks.commit('team/a', [digest]);
    const path = chunkPath(join(dataDir, CHUNKS_DIR), 'team/a', digest);
    damage(path, 5000);

    const stored = await chunks.put('team/a', digest, bytes, 2, hasher);

    expect(stored).toBe(true);
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(readdirSync(join(dataDir, 'corrupt-chunks'), { recursive: true }).sort()).toEqual([
      projectFolder('team/a'),
      expect.stringMatching(new RegExp(`^${projectFolder('team/a')}/${digest}\\.\\d+$`)),
    ]);
    expect(pendingCopies(db)).toEqual([`team/a ${digest}`]);
    expect(await chunks.readAsync('team/a', digest, hasher)).toEqual(bytes);
    expect(tempFiles(dataDir)).toEqual([]);
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

  it('names project folders by a fixed hash, whatever the name holds', () => {
    expect(projectFolder('team/a')).toMatch(/^[0-9a-f]{32}$/);
    expect(projectFolder('team/a')).toBe(projectFolder('team/a'));
    expect(projectFolder('team/a')).not.toBe(projectFolder('team-a'));
  });
});

function pendingCopies(db: Database.Database): string[] {
  const rows = db.prepare('SELECT project, digest FROM pending_chunks').all() as Array<{
    project: string;
    digest: string;
  }>;
  return rows.map((row) => `${row.project} ${row.digest}`).sort();
}

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

  it("keeps a project's uncommitted chunks that are intact across a restart and forgets its damaged ones", async () => {
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
    await client(url, token).put(`/api/v1/chunks/${hasher.digest(damaged)}?project=q`, damaged);
    await first.close();
    damage(chunkPath(join(dataDir, CHUNKS_DIR), 'p', hasher.digest(damaged)), 3000);

    const second = createServer({ dataDir });
    const again = await second.listen(0);
    const missing = await client(again.url, token).post('/api/v1/chunks/missing', {
      project: 'p',
      digests: [hasher.digest(kept), hasher.digest(damaged)],
    });
    const missingInQ = await client(again.url, token).post('/api/v1/chunks/missing', {
      project: 'q',
      digests: [hasher.digest(damaged)],
    });
    await second.close();

    expect(missing.body).toEqual({ missing: [hasher.digest(damaged)] });
    expect(missingInQ.body).toEqual({ missing: [] });
    expect(pendingRows(dataDir)).toEqual([]);
  });
});

describe('a server starting on a data folder a killed server left', () => {
  it('removes the temp files of uploads it was writing and keeps every chunk', async () => {
    const { chunks, dataDir } = openChunks();
    const hasher = await getHasher();
    const bytes = randomBytes(3000);
    const digest = hasher.digest(bytes);
    await chunks.put('team/a', digest, bytes, 1, hasher);
    await chunks.commit('team/a', [digest]);
    const stored = chunkPath(join(dataDir, CHUNKS_DIR), 'team/a', digest);
    const folder = join(stored, '..');
    writeFileSync(join(folder, '.tmp-0123456789abcdef'), randomBytes(1000));
    writeFileSync(join(folder, '.tmp-fedcba9876543210'), '');

    const recovered = chunks.recover(hasher);

    expect(recovered).toEqual({ kept: 0, dropped: 0, tempFiles: 2 });
    expect(readdirSync(folder)).toEqual([digest]);
    expect(chunks.holds('team/a', digest)).toBe(true);
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
