import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import type { ArtifactStore } from './artifact-store.js';
import { isDigest } from './hash.js';
import type { Digest } from './ids.js';
import { isFanOutName, objectPath } from './object-layout.js';
import { liveObjects } from './object-references.js';
import type { Store } from './store.js';

export interface ObjectProblem {
  digest: Digest;
  /**
   * `mismatch`: the bytes do not hash to the name; `unreadable`: the file cannot be read;
   * `missing`: a run, file series or journal entry refers to an object that is not there.
   */
  problem: 'mismatch' | 'unreadable' | 'missing';
  /** Where the object is, or would be. */
  path: string;
}

export interface ObjectsReport {
  /** Objects re-hashed. */
  objects: number;
  bytes: number;
  /** Objects the database refers to, manifests and their chunks. */
  referenced: number;
  problems: ObjectProblem[];
}

/**
 * Re-hashes every object in the store's objects folder (in the worker pool, so a large store
 * does not stall the caller) and checks that every object the database refers to is present.
 * Changes nothing: damaged objects are reported for the user to act on (a synced run can be
 * fetched again with `tidemark get`). `tidemark verify` prints this report with its own.
 */
export async function verifyObjects(store: Store): Promise<ObjectsReport> {
  return checkObjects(store.db, store.objects);
}

/** `verifyObjects` over a database connection of any kind, read-only included. */
export async function checkObjects(
  db: Database.Database,
  objects: ArtifactStore,
): Promise<ObjectsReport> {
  const objectsDir = objects.dir;
  const stored: Array<{ digest: Digest; path: string }> = [];
  for (const folder of listNames(objectsDir)) {
    if (!isFanOutName(folder)) continue;
    for (const name of listNames(join(objectsDir, folder))) {
      if (isDigest(name) && name.startsWith(folder)) {
        stored.push({ digest: name, path: join(objectsDir, folder, name) });
      }
    }
  }

  const hashed = await objects.rehash(stored);
  const pathOf = new Map(stored.map((object) => [object.digest, object.path]));
  const problems: ObjectProblem[] = hashed.damaged.map(({ digest, problem }) => ({
    digest,
    problem,
    path: pathOf.get(digest) ?? '',
  }));

  const { live, unreadable } = await liveObjects(db, objects);
  const reported = new Set(problems.map((p) => p.digest));
  const absent = [...live, ...unreadable.map((u) => u.digest)].filter(
    (digest) => !pathOf.has(digest) && !reported.has(digest),
  );
  for (const digest of new Set(absent)) {
    problems.push({ digest, problem: 'missing', path: objectPath(objectsDir, digest) });
  }

  return { objects: stored.length, bytes: hashed.bytes, referenced: live.size, problems };
}

function listNames(folder: string): string[] {
  try {
    return readdirSync(folder);
  } catch {
    return [];
  }
}
