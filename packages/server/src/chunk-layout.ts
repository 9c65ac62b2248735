import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { type Digest, objectPath } from '@tidemark/core';

/**
 * Where the server keeps chunk bytes (docs/artifacts.md, Server storage): each project has its
 * own folder below `<data>/chunks/`, laid out like a local objects folder, so a chunk lives at
 * `chunks/<project folder>/<2 hex>/<digest>`. No file is shared between projects: an upload is
 * never compared with, nor timed against, the bytes of another project (invariant 9).
 */

/** Hex digits of SHA-256 naming a project's folder: 128 bits, so two names never meet. */
const PROJECT_FOLDER_DIGITS = 32;

/**
 * The name of a project's chunk folder: the first 32 hex digits of the SHA-256 of its name.
 * A fixed function of the name, safe on every file system whatever the name holds (`/`
 * included), and never two hex digits long, so it cannot be taken for a fan-out folder of the
 * shared layout that schema version 4 migrated away from.
 */
export function projectFolder(project: string): string {
  return createHash('sha256').update(project, 'utf8').digest('hex').slice(0, PROJECT_FOLDER_DIGITS);
}

/** The folder holding a project's chunks, below the server's `chunks/` folder. */
export function projectChunksDir(chunksDir: string, project: string): string {
  return join(chunksDir, projectFolder(project));
}

/** The file of a project's copy of a chunk. */
export function chunkPath(chunksDir: string, project: string, digest: Digest): string {
  return objectPath(projectChunksDir(chunksDir, project), digest);
}
