import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { type FileHandle, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
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
  toArtifactWriteError,
  ValidationError,
} from '@tidemark/core';
import type Database from 'better-sqlite3';
import { PendingChunks } from './chunk-durability.js';
import { RequestError } from './errors.js';
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
  readonly #db: Database.Database;
  readonly #storing = new Map<string, Promise<boolean>>();
  readonly #folders = new Set<string>();
  readonly #hasRow: Database.Statement;
  readonly #insertRow: Database.Statement;
  readonly #pending: PendingChunks;

  constructor(dataDir: string, db: Database.Database, logger: Logger) {
    this.dir = join(dataDir, CHUNKS_DIR);
    this.#corruptDir = join(dataDir, CORRUPT_DIR);
    this.#logger = logger;
    this.#db = db;
    mkdirSync(this.dir, { recursive: true });
    this.#hasRow = db
      .prepare('SELECT 1 FROM project_chunks WHERE project = ? AND digest = ?')
      .pluck();
    this.#insertRow = db.prepare(
      'INSERT OR IGNORE INTO project_chunks (project, digest, at) VALUES (?, ?, ?)',
    );
    this.#pending = new PendingChunks(db, (digest) => this.#path(digest), logger);
  }

  /**
   * Settles the chunks a stopped server left unsynced: call once before serving. Those intact
   * become durable, the others are forgotten so that clients send them again.
   */
  recover(hasher: Hasher): { kept: number; dropped: number } {
    return this.#pending.recover(hasher, this.#logger);
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
   * holds them. Answers whether the project did not hold them before. The file is written and
   * renamed into place but not fsynced: `commit` makes it durable (see chunk-durability.ts).
   *
   * The bytes are written even when another project's copy is already on disk: skipping the
   * write would answer measurably faster and so tell the client that someone else holds this
   * content (invariant 9). A copy on disk is then compared byte for byte and kept: digests
   * that agree on different bytes are a collision, refused without touching the stored copy,
   * so no client can replace content another project relies on (docs/artifacts.md).
   */
  async put(
    project: string,
    digest: Digest,
    bytes: Uint8Array,
    now: number,
    hasher: Hasher,
  ): Promise<boolean> {
    // A client that lost the answer to an upload may send it again while the first is still
    // being written; the second waits for the first instead of storing it twice.
    const key = `${project}\n${digest}`;
    const earlier = this.#storing.get(key);
    if (earlier !== undefined && (await earlier.catch(() => false))) return false;
    if (this.holds(project, digest)) return false;

    const storing = this.#store(project, digest, bytes, now, hasher);
    this.#storing.set(key, storing);
    try {
      return await storing;
    } finally {
      if (this.#storing.get(key) === storing) this.#storing.delete(key);
    }
  }

  /**
   * Makes the chunks of `digests` that `project` holds durable before its ops are sent, and
   * answers those it does not hold (protocol: `POST /api/v1/chunks/commit`).
   */
  async commit(project: string, digests: readonly Digest[]): Promise<Digest[]> {
    const missing = this.missing(project, digests);
    const absent = new Set(missing);
    await this.#pending.commit(digests.filter((digest) => !absent.has(digest)));
    return missing;
  }

  async #store(
    project: string,
    digest: Digest,
    bytes: Uint8Array,
    now: number,
    hasher: Hasher,
  ): Promise<boolean> {
    const target = this.#path(digest);
    const folder = dirname(target);
    if (!this.#folders.has(folder)) {
      mkdirSync(folder, { recursive: true });
      this.#folders.add(folder);
    }
    // Asynchronous calls: the thread pool creates and fills the file on the other core while
    // this thread goes on receiving and hashing the next chunk of a batch.
    const temp = await writeTempFile(folder, bytes, target);

    let written = false;
    try {
      const existing = existsSync(target) ? await readFile(target) : undefined;
      if (existing !== undefined && !existing.equals(bytes)) {
        if (hasher.digest(existing) === digest) throw collision(digest, project, this.#logger);
        this.#moveAside(digest, target);
      }
      // A copy already on disk may be durable and relied on: it is never replaced by one that
      // is not yet.
      if (existing === undefined || !existing.equals(bytes)) {
        await rename(temp, target);
        written = true;
      }
    } finally {
      if (!written) await rm(temp, { force: true });
    }

    // NORMAL is enough for these rows: the op that relies on them commits later with FULL,
    // which makes the whole log durable up to that op, these rows included (invariant 3).
    this.#db.pragma('synchronous = NORMAL');
    try {
      this.#db.transaction(() => {
        if (written) this.#pending.add(digest, now);
        this.#insertRow.run(project, digest, now);
      })();
    } finally {
      this.#db.pragma('synchronous = FULL');
    }
    if (written) this.#pending.written(digest, bytes.length);
    return true;
  }

  /** Resolves once the chunk files being fsynced in the background are done. */
  settled(): Promise<void> {
    return this.#pending.settled();
  }

  /** `read` without blocking the event loop on the disk. */
  async readAsync(digest: Digest, hasher: Hasher): Promise<Buffer> {
    const path = this.#path(digest);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (error) {
      throw chunkMissing(digest, error);
    }
    if (hasher.digest(bytes) !== digest) {
      this.#moveAside(digest, path);
      throw chunkCorrupt(digest);
    }
    return bytes;
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
      throw chunkMissing(digest, error);
    }
    if (hasher.digest(bytes) !== digest) {
      this.#moveAside(digest, path);
      throw chunkCorrupt(digest);
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
    const chunks = manifestChunks(manifest);
    if (chunks.some((chunk) => !this.holds(project, chunk))) {
      throw missingChunks(digest);
    }
    // A client that did not commit its uploads pays for their fsync here, before the op that
    // relies on them is applied.
    this.#pending.commitSync([digest, ...chunks]);
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

/** Writes a temp file beside `target` without fsync; `PendingChunks.commit` syncs it later. */
async function writeTempFile(folder: string, bytes: Uint8Array, target: string): Promise<string> {
  const temp = join(folder, `.tmp-${randomBytes(8).toString('hex')}`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx', 0o444);
    for (let written = 0; written < bytes.length; ) {
      written += (await handle.write(bytes, written, bytes.length - written)).bytesWritten;
    }
    await handle.close();
    handle = undefined;
    return temp;
  } catch (error) {
    await handle?.close();
    await rm(temp, { force: true });
    throw toArtifactWriteError(error, target);
  }
}

function chunkMissing(digest: Digest, cause: unknown): NotFoundError {
  return new NotFoundError('chunk_missing', `chunk ${digest} is not on this server`, {
    hint: 'Sync the run again from a store that holds it.',
    cause,
  });
}

function chunkCorrupt(digest: Digest): ArtifactError {
  return new ArtifactError('chunk_corrupt', `chunk ${digest} does not match its digest`, {
    hint: 'Sync the run again from a store that holds it; the damaged copy was set aside.',
  });
}

/**
 * Two different byte strings under one 128-bit digest: astronomically unlikely by accident, so
 * most likely crafted. The stored copy wins and the upload is refused.
 */
function collision(digest: Digest, project: string, logger: Logger): RequestError {
  logger.error('digest_collision', { digest, project });
  return new RequestError(409, 'digest_collision', `other bytes are stored as chunk ${digest}`, {
    hint: "The content collides with a stored chunk under tidemark's digest; report this.",
  });
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
