import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type Digest, fsyncFolder, objectPath, writeFileDurably } from '@tidemark/core';
import type Database from 'better-sqlite3';
import { chunkPath } from './chunk-layout.js';

/**
 * Moving a data folder from the shared chunk layout of schema versions 1 to 3
 * (`chunks/<2 hex>/<digest>`, each content stored once for every project) to one folder per
 * project (chunk-layout.ts), which version 4 brought. Files cannot move inside the SQL
 * transaction that records the version, so the move is split around it:
 *
 * 1. before it, `linkSharedChunks` gives every `project_chunks` row its own file and makes
 *    those files durable;
 * 2. the transaction re-keys `pending_chunks` by project and records version 4;
 * 3. after it, `removeSharedChunks` deletes the shared fan-out folders.
 *
 * A crash before step 2 leaves the old version and the shared files, and the next open starts
 * step 1 again, skipping the files already in place. A crash after it leaves shared folders
 * that every open of a version 4 folder removes.
 */

/** A fan-out folder of the shared layout; project folders have 32 hex digits. */
const SHARED_FAN_OUT = /^[0-9a-f]{2}$/;

/**
 * Step 1: hard-links (copies, where the file system refuses links) the shared file of every
 * chunk a project holds into the project's folder, then fsyncs every folder it added names to.
 * A row whose shared file is gone is left as it is: the project's presence answer already said
 * "missing" for it, and still does. Answers how many files were put in place.
 */
export function linkSharedChunks(db: Database.Database, chunksDir: string): number {
  const rows = db.prepare('SELECT project, digest FROM project_chunks').iterate() as Iterable<{
    project: string;
    digest: Digest;
  }>;
  const changed = new Set<string>();
  let placed = 0;
  for (const { project, digest } of rows) {
    const shared = objectPath(chunksDir, digest);
    const own = chunkPath(chunksDir, project, digest);
    if (existsSync(own) || !existsSync(shared)) continue;

    const folder = dirname(own);
    const created = mkdirSync(folder, { recursive: true });
    if (created !== undefined) changed.add(dirname(folder)).add(chunksDir);
    if (placeFile(shared, own)) {
      changed.add(folder);
      placed += 1;
    }
  }

  // The version is recorded only once every file it promises survives power loss.
  for (const folder of changed) fsyncFolder(folder);
  return placed;
}

/**
 * Step 3: deletes the shared fan-out folders, with any file or temp file left in them. Runs at
 * every open of a version 4 folder; finds nothing to do once they are gone.
 */
export function removeSharedChunks(chunksDir: string): void {
  let names: string[];
  try {
    names = readdirSync(chunksDir);
  } catch {
    return;
  }
  const shared = names.filter((name) => SHARED_FAN_OUT.test(name));
  for (const name of shared) rmSync(join(chunksDir, name), { recursive: true, force: true });
  if (shared.length > 0) fsyncFolder(chunksDir);
}

/** Links `from` at `to`, or copies it durably; answers false if either side was there first. */
function placeFile(from: string, to: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOENT') return false;
  }
  // A file system without hard links (or with a cap on them): a copy costs space, not safety.
  let bytes: Buffer;
  try {
    bytes = readFileSync(from);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  writeFileDurably(to, bytes);
  return true;
}
