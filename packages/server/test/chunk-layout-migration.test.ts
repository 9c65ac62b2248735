import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { type Digest, encodeManifest, getHasher, type Manifest, newRunId } from '@tidemark/core';
import {
  CHUNKS_DIR,
  createServer,
  ensureInitialToken,
  SERVER_SCHEMA_VERSION,
} from '@tidemark/server';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { chunkPath } from '../src/chunk-layout.js';
import { linkSharedChunks } from '../src/chunk-layout-migration.js';
import { MIGRATIONS, openServerDatabase } from '../src/server-schema.js';
import { client, tempDir } from './harness.js';

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** One upload an old server took: `bytes` stored once in `chunks/<2 hex>/`, held by `projects`. */
interface OldChunk {
  bytes: Buffer;
  projects: string[];
  /** Answered as stored but not yet committed (schema version 3 on). */
  pending?: 'intact' | 'torn';
  /** The shared file went missing afterwards (a disk error, an operator's rm). */
  lost?: boolean;
}

/**
 * Builds a data folder the way servers of schema versions 1 to 3 wrote it: the shipped
 * migrations up to `version`, then files and rows as their chunk store wrote them.
 */
async function buildSharedLayout(
  version: number,
  chunks: OldChunk[],
  runs: Array<{ project: string; path: string; manifest: Digest; size: number }>,
): Promise<{ dataDir: string; runIds: string[] }> {
  const dataDir = tempDir();
  folders.push(dataDir);
  const db = new Database(join(dataDir, 'server.db'));
  db.pragma('journal_mode = WAL');
  for (const migration of MIGRATIONS.slice(0, version)) db.exec(migration);
  db.pragma(`user_version = ${version}`);

  const hasher = await getHasher();
  const shared = join(dataDir, CHUNKS_DIR);
  for (const chunk of chunks) {
    const digest = hasher.digest(chunk.bytes);
    const path = join(shared, digest.slice(0, 2), digest);
    mkdirSync(join(shared, digest.slice(0, 2)), { recursive: true });
    if (!chunk.lost) {
      writeFileSync(path, chunk.pending === 'torn' ? randomBytes(chunk.bytes.length) : chunk.bytes);
      chmodSync(path, 0o444);
    }
    for (const project of chunk.projects) {
      db.prepare('INSERT INTO project_chunks (project, digest, at) VALUES (?, ?, 1)').run(
        project,
        digest,
      );
    }
    if (chunk.pending !== undefined) {
      db.prepare('INSERT INTO pending_chunks (digest, at) VALUES (?, 1)').run(digest);
    }
  }
  // A temp file a killed upload left behind, in the old folder.
  mkdirSync(join(shared, '00'), { recursive: true });
  writeFileSync(join(shared, '00', '.tmp-0123456789abcdef'), 'partial');

  const runIds = runs.map((run, i) => {
    const runId = newRunId(1_700_000_000_000 + i);
    db.prepare('INSERT OR IGNORE INTO projects (name, created_at) VALUES (?, 1)').run(run.project);
    db.prepare('INSERT INTO runs (id, project, created_at) VALUES (?, ?, 1)').run(
      runId,
      run.project,
    );
    db.prepare(
      `INSERT INTO files (run_id, path, kind, manifest, size, file_count, at, op_id)
       VALUES (?, ?, 'file', ?, ?, 1, 1, ?)`,
    ).run(runId, run.path, run.manifest, run.size, `op-${i}`);
    return runId;
  });
  db.close();
  return { dataDir, runIds };
}

/** The bytes of a file cut into pieces, its manifest, and the manifest's bytes and digest. */
async function fileOf(pieces: Buffer[]) {
  const hasher = await getHasher();
  const size = pieces.reduce((total, piece) => total + piece.length, 0);
  const chunks = pieces.map((piece) => hasher.digest(piece));
  const manifest: Manifest = { v: 1, type: 'file', size, chunks };
  const manifestBytes = Buffer.from(encodeManifest(manifest));
  return {
    bytes: Buffer.concat(pieces),
    size,
    manifestBytes,
    manifestDigest: hasher.digest(manifestBytes),
  };
}

async function openServer(dataDir: string) {
  const server = createServer({ dataDir });
  const { url } = await server.listen(0, '127.0.0.1');
  const token = readFileSync(ensureInitialToken(dataDir).path, 'utf8').trim();
  return { server, api: client(url, token) };
}

function sharedFolders(dataDir: string): string[] {
  return readdirSync(join(dataDir, CHUNKS_DIR)).filter((name) => /^[0-9a-f]{2}$/.test(name));
}

function schemaVersion(dataDir: string): number {
  const db = new Database(join(dataDir, 'server.db'), { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

/** Two projects sharing content, one uncommitted upload kept, one torn, one chunk lost. */
async function scenario() {
  const [common, onlyA, onlyB] = [randomBytes(3000), randomBytes(2000), randomBytes(1000)];
  const fileA = await fileOf([common, onlyA]);
  const fileB = await fileOf([common, onlyB]);
  const [pendingKept, pendingTorn, lost] = [randomBytes(700), randomBytes(800), randomBytes(900)];
  const chunks: OldChunk[] = [
    { bytes: common, projects: ['team/a', 'team/b'] },
    { bytes: onlyA, projects: ['team/a'] },
    { bytes: onlyB, projects: ['team/b'] },
    { bytes: fileA.manifestBytes, projects: ['team/a'] },
    { bytes: fileB.manifestBytes, projects: ['team/b'] },
    { bytes: pendingKept, projects: ['c', 'team/a'], pending: 'intact' },
    { bytes: pendingTorn, projects: ['c'], pending: 'torn' },
    { bytes: lost, projects: ['team/a'], lost: true },
    // Bytes on disk that no project holds: the old store kept them; nothing refers to them.
    { bytes: randomBytes(600), projects: [] },
  ];
  const hasher = await getHasher();
  const all = chunks.map((chunk) => hasher.digest(chunk.bytes));
  return {
    chunks,
    common,
    pendingKept,
    fileA,
    fileB,
    all,
    digest: (bytes: Buffer) => hasher.digest(bytes),
    // What the old server answered, per project, after its own restart: held unless never
    // uploaded by that project, lost, or uncommitted and torn.
    expectedMissing: (project: string) =>
      chunks
        .filter((c) => !c.projects.includes(project) || c.lost || c.pending === 'torn')
        .map((c) => hasher.digest(c.bytes)),
  };
}

describe('migrating the shared chunk folder to one folder per project', () => {
  it('keeps every chunk each project held, downloadable, with the same presence answers', async () => {
    const s = await scenario();
    const { dataDir, runIds } = await buildSharedLayout(3, s.chunks, [
      { project: 'team/a', path: 'model', manifest: s.fileA.manifestDigest, size: s.fileA.size },
      { project: 'team/b', path: 'model', manifest: s.fileB.manifestDigest, size: s.fileB.size },
    ]);

    const { server, api } = await openServer(dataDir);
    try {
      for (const project of ['team/a', 'team/b', 'c']) {
        const asked = await api.post('/api/v1/chunks/missing', { project, digests: s.all });
        expect(asked.body.missing, project).toEqual(s.expectedMissing(project));
      }
      const fileA = await api.getBytes(`/api/v1/runs/${runIds[0]}/files/model`);
      const fileB = await api.getBytes(`/api/v1/runs/${runIds[1]}/files/model`);
      expect(fileA.bytes.equals(s.fileA.bytes)).toBe(true);
      expect(fileB.bytes.equals(s.fileB.bytes)).toBe(true);
      for (const project of ['c', 'team/a']) {
        const path = `/api/v1/chunks/${s.digest(s.pendingKept)}?project=${project}`;
        expect((await api.getBytes(path)).bytes.equals(s.pendingKept)).toBe(true);
      }
    } finally {
      await server.close();
    }

    const chunksDir = join(dataDir, CHUNKS_DIR);
    for (const project of ['team/a', 'team/b']) {
      expect(existsSync(chunkPath(chunksDir, project, s.digest(s.common)))).toBe(true);
    }
    expect(sharedFolders(dataDir)).toEqual([]);
    expect(schemaVersion(dataDir)).toBe(SERVER_SCHEMA_VERSION);
  });

  it('migrates a folder from before pending chunks were tracked', async () => {
    const bytes = randomBytes(1500);
    const { dataDir } = await buildSharedLayout(1, [{ bytes, projects: ['p', 'q'] }], []);
    const digest = (await getHasher()).digest(bytes);

    const { server, api } = await openServer(dataDir);
    try {
      for (const project of ['p', 'q']) {
        const back = await api.getBytes(`/api/v1/chunks/${digest}?project=${project}`);
        expect(back.bytes.equals(bytes)).toBe(true);
      }
    } finally {
      await server.close();
    }
    expect(sharedFolders(dataDir)).toEqual([]);
  });

  it('finishes a migration cut short before it recorded the new version', async () => {
    const s = await scenario();
    const { dataDir, runIds } = await buildSharedLayout(3, s.chunks, [
      { project: 'team/a', path: 'model', manifest: s.fileA.manifestDigest, size: s.fileA.size },
    ]);
    // The state a kill leaves mid-way through the links: some in place, the version still 3.
    const db = new Database(join(dataDir, 'server.db'));
    linkSharedChunks(db, join(dataDir, CHUNKS_DIR));
    db.close();
    rmSync(chunkPath(join(dataDir, CHUNKS_DIR), 'team/a', s.fileA.manifestDigest));
    expect(schemaVersion(dataDir)).toBe(3);

    const { server, api } = await openServer(dataDir);
    try {
      const asked = await api.post('/api/v1/chunks/missing', { project: 'team/a', digests: s.all });
      expect(asked.body.missing).toEqual(s.expectedMissing('team/a'));
      const file = await api.getBytes(`/api/v1/runs/${runIds[0]}/files/model`);
      expect(file.bytes.equals(s.fileA.bytes)).toBe(true);
    } finally {
      await server.close();
    }
    expect(sharedFolders(dataDir)).toEqual([]);
  });

  it('removes the shared folders a migration cut short after it recorded the new version', async () => {
    const s = await scenario();
    const { dataDir, runIds } = await buildSharedLayout(3, s.chunks, [
      { project: 'team/a', path: 'model', manifest: s.fileA.manifestDigest, size: s.fileA.size },
    ]);
    openServerDatabase(dataDir).close();
    // The state a kill leaves between the version's commit and the removal: the shared files
    // still there beside the project folders.
    const shared = join(dataDir, CHUNKS_DIR, 'ab');
    mkdirSync(shared);
    writeFileSync(join(shared, `ab${'0'.repeat(30)}-3`), 'old');

    const { server, api } = await openServer(dataDir);
    try {
      const file = await api.getBytes(`/api/v1/runs/${runIds[0]}/files/model`);
      expect(file.bytes.equals(s.fileA.bytes)).toBe(true);
    } finally {
      await server.close();
    }
    expect(sharedFolders(dataDir)).toEqual([]);
  });
});
