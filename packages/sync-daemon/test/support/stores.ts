import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { openReadOnly } from '@tidemark/core';
import Database from 'better-sqlite3';

/** The cursor a store holds for `remote`, read as another process would. */
export function cursorOf(dir: string, remote: string): number {
  const db = openReadOnly(dir);
  try {
    return (
      (db.prepare('SELECT seq FROM sync_cursors WHERE remote = ?').pluck().get(remote) as
        | number
        | undefined) ?? 0
    );
  } finally {
    db.close();
  }
}

export function lastSeqOf(dir: string): number {
  const db = openReadOnly(dir);
  try {
    return (db.prepare('SELECT max(seq) FROM journal').pluck().get() as number | null) ?? 0;
  } finally {
    db.close();
  }
}

/** Objects (chunks and manifests) in a store folder. */
export function localObjects(dir: string): number {
  const names = readdirSync(join(dir, 'objects'), { recursive: true }).map(String);
  return names.filter((name) => /[0-9a-f]{32}-\d+$/.test(name)).length;
}

export interface ServerCounts {
  /** Ops applied for the run. */
  ops: number;
  points: number;
  /** Points stored twice for the same series and step: must stay 0. */
  doubled: number;
  runs: number;
  files: number;
  chunks: number;
  chunkBytes: number;
}

/** What a server data folder holds, read from its database directly. */
export function serverCounts(dataDir: string, runId: string): ServerCounts {
  const db = new Database(join(dataDir, 'server.db'), { readonly: true });
  try {
    return db
      .prepare(
        `SELECT
           (SELECT count(*) FROM applied_ops WHERE run_id = :run) AS ops,
           (SELECT count(*) FROM points p JOIN series s ON s.id = p.series_id WHERE s.run_id = :run)
             AS points,
           (SELECT count(*) FROM (SELECT 1 FROM points p JOIN series s ON s.id = p.series_id
              WHERE s.run_id = :run GROUP BY p.series_id, p.step HAVING count(*) > 1)) AS doubled,
           (SELECT count(*) FROM runs WHERE id = :run) AS runs,
           (SELECT count(*) FROM files WHERE run_id = :run) AS files,
           (SELECT count(*) FROM project_chunks) AS chunks,
           (SELECT coalesce(sum(CAST(substr(digest, 34) AS INTEGER)), 0) FROM project_chunks)
             AS chunkBytes`,
      )
      .get({ run: runId }) as ServerCounts;
  } finally {
    db.close();
  }
}

/** Journal entries a store holds for one run. */
export function localOps(dir: string, runId: string): number {
  const db = openReadOnly(dir);
  try {
    return db.prepare('SELECT count(*) FROM journal WHERE run_id = ?').pluck().get(runId) as number;
  } finally {
    db.close();
  }
}
