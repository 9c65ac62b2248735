import type Database from 'better-sqlite3';
import type { ArtifactStore } from './artifact-store.js';
import { isTidemarkError } from './errors.js';
import { isDigest } from './hash.js';
import type { Digest } from './ids.js';
import { manifestChunks } from './manifest.js';

/**
 * Every manifest the store refers to: files logged with `upload`, points of file series, and
 * `file.add` journal entries (an upload replaced at the same path is still owed to a remote
 * whose cursor is behind it).
 */
export function referencedManifests(db: Database.Database): Set<Digest> {
  const rows = db
    .prepare(
      `SELECT manifest AS digest FROM files
       UNION SELECT p.text FROM points p JOIN series s ON s.id = p.series_id
         WHERE s.type = 'file' AND p.text IS NOT NULL
       UNION SELECT json_extract(payload, '$.manifest') FROM journal WHERE kind = 'file.add'`,
    )
    .pluck()
    .all() as unknown[];
  return new Set(rows.filter(isDigest));
}

export interface LiveObjects {
  /** Manifests referenced from the database and every chunk they list. */
  live: Set<Digest>;
  /** Referenced manifests that cannot be read intact, so their chunks are unknown. */
  unreadable: Array<{ digest: Digest; code: string }>;
}

/** Reads every referenced manifest (each checked against its digest) and collects its chunks. */
export async function liveObjects(
  db: Database.Database,
  objects: ArtifactStore,
): Promise<LiveObjects> {
  const live = new Set<Digest>();
  const unreadable: LiveObjects['unreadable'] = [];
  for (const digest of referencedManifests(db)) {
    live.add(digest);
    try {
      for (const chunk of manifestChunks(await objects.readManifest(digest))) live.add(chunk);
    } catch (error) {
      if (!isTidemarkError(error)) throw error;
      unreadable.push({ digest, code: error.code });
    }
  }
  return { live, unreadable };
}
