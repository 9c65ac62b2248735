import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import {
  ArtifactError,
  type Digest,
  decodeManifest,
  digestSize,
  type Hasher,
  type Logger,
  type Manifest,
  manifestChunks,
  NotFoundError,
  objectPath,
  ValidationError,
  writeFileDurably,
} from '@tidemark/core';
import type Database from 'better-sqlite3';
import { CHUNKS_DIR } from './server-schema.js';

const CORRUPT_DIR = 'corrupt-chunks';

/**
 * The server's content-addressed chunk folder plus, in `project_chunks`, which project uploaded
 * which chunk. Bytes are stored once, but presence is answered per project: a project holds a
 * chunk only after it sent the bytes itself, so no answer reveals another project's content
 * (DESIGN invariant 9).
 */
export class ChunkStore {
  readonly dir: string;
  readonly #corruptDir: string;
  readonly #logger: Logger;
  readonly #hasRow: Database.Statement;
  readonly #insertRow: Database.Statement;

  constructor(dataDir: string, db: Database.Database, logger: Logger) {
    this.dir = join(dataDir, CHUNKS_DIR);
    this.#corruptDir = join(dataDir, CORRUPT_DIR);
    this.#logger = logger;
    mkdirSync(this.dir, { recursive: true });
    this.#hasRow = db
      .prepare('SELECT 1 FROM project_chunks WHERE project = ? AND digest = ?')
      .pluck();
    this.#insertRow = db.prepare(
      'INSERT OR IGNORE INTO project_chunks (project, digest, at) VALUES (?, ?, ?)',
    );
  }

  /**
   * Whether `project` uploaded the chunk and its bytes are still on disk. A chunk whose file
   * went missing or was moved aside as corrupt counts as missing, so the client sends it again.
   */
  holds(project: string, digest: Digest): boolean {
    return this.#hasRow.get(project, digest) !== undefined && this.onDisk(digest);
  }

  /** Whether the chunk's bytes are on disk, whichever project sent them. */
  onDisk(digest: Digest): boolean {
    return existsSync(this.#path(digest));
  }

  /** The digests of `digests` that `project` does not hold, without repeats, in given order. */
  missing(project: string, digests: readonly Digest[]): Digest[] {
    return [...new Set(digests)].filter((digest) => !this.holds(project, digest));
  }

  /**
   * Stores bytes the caller has already checked against `digest` and records that `project`
   * holds them. Answers whether the project did not hold them before.
   *
   * The bytes are written even when another project's copy is already on disk: skipping the
   * write would answer measurably faster and so tell the client that someone else holds this
   * content (invariant 9).
   */
  put(project: string, digest: Digest, bytes: Uint8Array, now: number): boolean {
    if (this.holds(project, digest)) return false;
    writeFileDurably(this.#path(digest), bytes);
    this.#insertRow.run(project, digest, now);
    return true;
  }

  /**
   * Reads a chunk and checks it against its digest (invariant 4). A corrupt file is moved
   * aside so that presence answers turn to "missing" and a client can upload it again.
   */
  read(digest: Digest, hasher: Hasher): Buffer {
    const path = this.#path(digest);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (error) {
      throw new NotFoundError('chunk_missing', `chunk ${digest} is not on this server`, {
        hint: 'Sync the run again from a store that holds it.',
        cause: error,
      });
    }
    if (hasher.digest(bytes) !== digest) {
      this.#moveAside(digest, path);
      throw new ArtifactError('chunk_corrupt', `chunk ${digest} does not match its digest`, {
        hint: 'Sync the run again from a store that holds it; the damaged copy was set aside.',
      });
    }
    return bytes;
  }

  /**
   * Checks that `project` holds a manifest and every chunk it lists, and that the sizes it
   * states add up, before an op may point at it (protocol: Rejected, `missing_chunks`).
   */
  completeManifest(project: string, digest: Digest, hasher: Hasher): Manifest {
    if (!this.holds(project, digest)) throw missingChunks(digest);
    let manifest: Manifest;
    try {
      manifest = decodeManifest(this.read(digest, hasher), digest);
    } catch (error) {
      if (error instanceof ArtifactError && error.code === 'chunk_corrupt')
        throw missingChunks(digest);
      throw error;
    }

    assertSizesAgree(manifest, digest);
    if (manifestChunks(manifest).some((chunk) => !this.holds(project, chunk))) {
      throw missingChunks(digest);
    }
    return manifest;
  }

  #path(digest: Digest): string {
    return objectPath(this.dir, digest);
  }

  #moveAside(digest: Digest, path: string): void {
    try {
      mkdirSync(this.#corruptDir, { recursive: true });
      renameSync(path, join(this.#corruptDir, `${digest}.${Date.now()}`));
      this.#logger.error('chunk_corrupt', { digest, moved_to: this.#corruptDir });
    } catch (error) {
      this.#logger.error('chunk_corrupt', { digest, move_failed: String(error) });
    }
  }
}

function assertSizesAgree(manifest: Manifest, digest: Digest): void {
  const files = manifest.type === 'file' ? [manifest] : manifest.entries;
  let total = 0;
  for (const file of files) {
    const sum = file.chunks.reduce((bytes, chunk) => bytes + digestSize(chunk), 0);
    if (sum !== file.size) throw inconsistent(digest);
    total += file.size;
  }
  if (total !== manifest.size) throw inconsistent(digest);
}

function missingChunks(manifest: Digest): ValidationError {
  return new ValidationError(
    'missing_chunks',
    `manifest ${manifest} or chunks it lists have not been uploaded to this project`,
    { hint: 'Ask POST /api/v1/chunks/missing, upload those chunks, then send the op again.' },
  );
}

function inconsistent(digest: Digest): ValidationError {
  return new ValidationError(
    'bad_manifest',
    `manifest ${digest} states sizes its chunks do not add up to`,
    {
      hint: "Run 'tidemark verify' on the store that logged it.",
    },
  );
}
