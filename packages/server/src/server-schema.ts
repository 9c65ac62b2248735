import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError } from '@tidemark/core';
import Database from 'better-sqlite3';
import { linkSharedChunks, removeSharedChunks } from './chunk-layout-migration.js';

export const SERVER_DB_FILE = 'server.db';
export const CHUNKS_DIR = 'chunks';

/**
 * The server's tables, one migration per entry; `PRAGMA user_version` counts those applied.
 * Append new entries; never edit one that has shipped. Timestamps are ms since the epoch.
 *
 * Last-writer-wins rows keep the `(at, op_id)` of the op that wrote them, so an older op that
 * arrives late (a retried batch) leaves them alone (protocol: Order). Tags are rows with a
 * `present` flag for the same reason: a removal must beat an older add whatever the arrival
 * order. `project_chunks` answers presence per project, never across projects (invariant 9).
 * Exported for the tests that build data folders of earlier versions.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    projects TEXT NOT NULL,
    label TEXT,
    created_at REAL NOT NULL,
    revoked_at REAL
  );
  CREATE TABLE projects (
    name TEXT PRIMARY KEY,
    created_at REAL NOT NULL
  );
  CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL REFERENCES projects (name),
    name TEXT,
    description TEXT,
    state TEXT NOT NULL DEFAULT 'running',
    state_at REAL,
    state_op TEXT,
    created_at REAL NOT NULL,
    create_op TEXT,
    ended_at REAL,
    failure TEXT,
    fork_of TEXT,
    fork_step REAL
  );
  CREATE INDEX runs_project_created_idx ON runs (project, created_at);
  CREATE TABLE fields (
    run_id TEXT NOT NULL REFERENCES runs (id),
    path TEXT NOT NULL,
    type TEXT NOT NULL,
    value TEXT NOT NULL,
    num REAL,
    at REAL NOT NULL,
    op_id TEXT NOT NULL,
    PRIMARY KEY (run_id, path)
  ) WITHOUT ROWID;
  CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id),
    path TEXT NOT NULL,
    type TEXT NOT NULL,
    UNIQUE (run_id, path)
  );
  CREATE TABLE points (
    series_id INTEGER NOT NULL REFERENCES series (id),
    step REAL NOT NULL,
    ts REAL NOT NULL,
    value REAL,
    flag INTEGER NOT NULL DEFAULT 0,
    text TEXT
  );
  CREATE INDEX points_series_step_idx ON points (series_id, step);
  CREATE TABLE tags (
    run_id TEXT NOT NULL REFERENCES runs (id),
    tag TEXT NOT NULL,
    present INTEGER NOT NULL,
    at REAL NOT NULL,
    op_id TEXT NOT NULL,
    PRIMARY KEY (run_id, tag)
  ) WITHOUT ROWID;
  CREATE TABLE files (
    run_id TEXT NOT NULL REFERENCES runs (id),
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    manifest TEXT NOT NULL,
    size INTEGER NOT NULL,
    file_count INTEGER NOT NULL,
    at REAL NOT NULL,
    op_id TEXT NOT NULL,
    PRIMARY KEY (run_id, path)
  ) WITHOUT ROWID;
  CREATE TABLE applied_ops (
    op_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    store_id TEXT NOT NULL,
    applied_at REAL NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE project_chunks (
    project TEXT NOT NULL,
    digest TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (project, digest)
  ) WITHOUT ROWID;
  `,
  // Tombstones of deleted runs: their late operations are refused with run_deleted.
  `
  CREATE TABLE deleted_runs (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    deleted_at REAL NOT NULL
  ) WITHOUT ROWID;
  `,
  // Chunk files written but not yet fsynced; see chunk-durability.ts.
  `
  CREATE TABLE pending_chunks (
    digest TEXT PRIMARY KEY,
    at REAL NOT NULL
  ) WITHOUT ROWID;
  `,
  // Chunk files move to one folder per project (chunk-layout-migration.ts moves the files): a
  // pending file is now one project's copy. A shared file pending for several projects is
  // pending for each; one no project holds was never answered as stored and goes with the
  // shared folders.
  `
  CREATE TABLE pending_project_chunks (
    project TEXT NOT NULL,
    digest TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (project, digest)
  ) WITHOUT ROWID;
  INSERT INTO pending_project_chunks (project, digest, at)
    SELECT c.project, p.digest, p.at FROM pending_chunks p JOIN project_chunks c USING (digest);
  DROP TABLE pending_chunks;
  ALTER TABLE pending_project_chunks RENAME TO pending_chunks;
  `,
];

/** The first version with one chunk folder per project (chunk-layout.ts). */
const PROJECT_CHUNK_FOLDERS = 4;

/** The schema version this code writes. */
export const SERVER_SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Opens `<dataDir>/server.db`, creating the folder and applying pending migrations. Several
 * processes may open it at once (the server and `tidemark token`): WAL plus a busy timeout.
 */
export function openServerDatabase(dataDir: string): Database.Database {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, SERVER_DB_FILE);

  let db: Database.Database;
  try {
    db = new Database(path);
  } catch (error) {
    throw new StoreError('server_db_unreadable', `cannot open ${path}`, {
      hint: 'Check that the data folder exists and is writable by this user.',
      cause: error,
    });
  }

  try {
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    // An 'applied' answer lets the client advance its cursor, so every commit must survive
    // power loss before it is answered (invariant 3).
    db.pragma('synchronous = FULL');
    migrate(db, path, join(dataDir, CHUNKS_DIR));
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

function migrate(db: Database.Database, path: string, chunksDir: string): void {
  // The chunk files of a shared-layout folder are put in place, durably, before the version
  // that relies on them is recorded, and the old ones removed only after it
  // (chunk-layout-migration.ts). Two processes migrating at once both link; a link already
  // there is skipped.
  const found = db.pragma('user_version', { simple: true }) as number;
  if (found >= 1 && found < PROJECT_CHUNK_FOLDERS) linkSharedChunks(db, chunksDir);

  const applyPending = db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new StoreError(
        'server_db_newer',
        `${path} has schema version ${version}; this server knows up to ${MIGRATIONS.length}`,
        { hint: 'Upgrade @tidemark/server to the version that last wrote this data folder.' },
      );
    }
    for (let next = version; next < MIGRATIONS.length; next++) {
      db.exec(MIGRATIONS[next] as string);
      db.pragma(`user_version = ${next + 1}`);
    }
  });

  // Immediate: two processes opening a fresh folder at once must not both migrate it.
  applyPending.immediate();
  removeSharedChunks(chunksDir);
}
