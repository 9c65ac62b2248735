import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
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
import { projectChunksDir, projectFolder } from './chunk-layout.js';
import { RequestError } from './errors.js';
import { CHUNKS_DIR } from './server-schema.js';

const CORRUPT_DIR = 'corrupt-chunks';

/**
 * The server's chunk files, one folder per project (chunk-layout.ts), plus, in
 * `project_chunks`, which project uploaded which chunk. A project holds a chunk only after it
 * sent the bytes itself, and its uploads only ever look at its own copies, so neither an answer
 * nor the time it takes reveals another project's content (DESIGN invariant 9).
 */
export class ChunkStore {
  readonly dir: string;
  readonly #corruptDir: string;
  readonly #logger: Logger;
  readonly #db: Database.Database;
  readonly #storing = new Map<string, Promise<boolean>>();
  readonly #folders = new Set<string>();
  readonly #projectDirs = new Map<string, string>();
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
    this.#pending = new PendingChunks(
      db,
      (project, digest) => this.#path(project, digest),
      this.dir,
      logger,
    );
  }

  /**
   * Settles the chunks a stopped server left unsynced: call once before serving. Those intact
   * become durable, the others are forgotten so that clients send them again.
   */
  recover(hasher: Hasher): { kept: number; dropped: number; tempFiles: number } {
    const recovered = this.#pending.recover(hasher, this.#logger);
    return { ...recovered, tempFiles: this.#removeTempFiles() };
  }

  /**
   * Removes the temp files of uploads a stopped server was writing: each is renamed into place
   * only once whole, so one still named `.tmp-*` belongs to no chunk.
   */
  #removeTempFiles(): number {
    let removed = 0;
    for (const project of subfolders(this.dir)) {
      for (const folder of subfolders(project)) {
        for (const name of readdirSync(folder)) {
          if (!name.startsWith(TEMP_PREFIX)) continue;
          rmSync(join(folder, name), { force: true });
          removed += 1;
        }
      }
    }
    return removed;
  }

  /**
   * Whether `project` uploaded the chunk and its copy is still on disk. A copy that went
   * missing or was moved aside as corrupt counts as missing, so the client sends it again.
   */
  holds(project: string, digest: Digest): boolean {
    return this.#hasRow.get(project, digest) !== undefined && this.onDisk(project, digest);
  }

  /** Whether `project`'s copy of the chunk is on disk. */
  onDisk(project: string, digest: Digest): boolean {
    return existsSync(this.#path(project, digest));
  }

  /** The digests of `digests` that `project` does not hold, without repeats, in given order. */
  missing(project: string, digests: readonly Digest[]): Digest[] {
    return [...new Set(digests)].filter((digest) => !this.holds(project, digest));
  }

  /**
   * Stores bytes the caller has already checked against `digest` as `project`'s copy. Answers
   * true when it wrote them (new, or replacing a damaged copy) and false when the project's
   * intact copy was already there. The file is written and renamed into place but not fsynced:
   * `commit` makes it durable (see chunk-durability.ts).
   *
   * A copy the project already has is compared byte for byte (docs/artifacts.md, Digest): one
   * that no longer hashes to its digest is moved to `corrupt-chunks/` and replaced, and digests
   * that agree on different intact bytes are a collision, refused with the stored copy kept.
   * `bytes` may come as the pieces it arrived in, which are written as they are, uncopied.
   */
  async put(
    project: string,
    digest: Digest,
    bytes: Uint8Array | readonly Uint8Array[],
    now: number,
    hasher: Hasher,
  ): Promise<boolean> {
    // A client that lost the answer to an upload may send it again while the first is still
    // being written; the second waits for the first, then finds its copy.
    const key = `${project}\n${digest}`;
    const earlier = this.#storing.get(key);
    const storing = (earlier ?? Promise.resolve(false))
      .catch(() => false)
      .then(() =>
        this.#store(project, digest, bytes instanceof Uint8Array ? [bytes] : bytes, now, hasher),
      );
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
    await this.#pending.commit(
      project,
      digests.filter((digest) => !absent.has(digest)),
    );
    return missing;
  }

  async #store(
    project: string,
    digest: Digest,
    pieces: readonly Uint8Array[],
    now: number,
    hasher: Hasher,
  ): Promise<boolean> {
    const target = this.#path(project, digest);
    const folder = dirname(target);
    this.#ensureFolder(folder);

    // Only the project's own copy is ever looked at; content another project holds costs
    // exactly what new content costs (invariant 9).
    const existing = existsSync(target) ? await readFile(target) : undefined;
    if (existing !== undefined && sameBytes(existing, pieces)) {
      if (this.#hasRow.get(project, digest) !== undefined) return false;
      // A copy whose upload stopped before it was recorded: recorded now, synced at commit.
      this.#record(project, digest, now, existing.length);
      return true;
    }
    if (existing !== undefined && hasher.digest(existing) === digest) {
      throw collision(digest, project, this.#logger);
    }

    // Asynchronous calls: the thread pool creates and fills the file on the other core while
    // this thread goes on receiving and hashing the next chunk of a batch.
    const temp = await writeTempFile(folder, pieces, target);
    try {
      if (existing !== undefined) this.#moveAside(project, digest, target);
      await rename(temp, target);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    this.#record(project, digest, now, digestSize(digest));
    return true;
  }

  /** Records a copy just written as held by `project` and pending its fsync. */
  #record(project: string, digest: Digest, now: number, size: number): void {
    // NORMAL is enough for these rows: the op that relies on them commits later with FULL,
    // which makes the whole log durable up to that op, these rows included (invariant 3).
    this.#db.pragma('synchronous = NORMAL');
    try {
      this.#db.transaction(() => {
        this.#pending.add(project, digest, now);
        this.#insertRow.run(project, digest, now);
      })();
    } finally {
      this.#db.pragma('synchronous = FULL');
    }
    this.#pending.written(project, digest, size);
  }

  /** Creates a chunk folder on first use; a commit makes it durable with the copies in it. */
  #ensureFolder(folder: string): void {
    if (this.#folders.has(folder)) return;
    mkdirSync(folder, { recursive: true });
    this.#folders.add(folder);
  }

  /** Resolves once the chunk files being fsynced in the background are done. */
  settled(): Promise<void> {
    return this.#pending.settled();
  }

  /** `read` without blocking the event loop on the disk. */
  async readAsync(project: string, digest: Digest, hasher: Hasher): Promise<Buffer> {
    const path = this.#path(project, digest);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (error) {
      throw chunkMissing(project, digest, error);
    }
    return this.#checked(project, digest, path, bytes, hasher);
  }

  /**
   * Reads `project`'s copy of a chunk and checks it against its digest (invariant 4). A corrupt
   * copy is moved aside so that presence answers turn to "missing" and a client of the project
   * can upload it again.
   */
  read(project: string, digest: Digest, hasher: Hasher): Buffer {
    const path = this.#path(project, digest);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (error) {
      throw chunkMissing(project, digest, error);
    }
    return this.#checked(project, digest, path, bytes, hasher);
  }

  #checked(project: string, digest: Digest, path: string, bytes: Buffer, hasher: Hasher): Buffer {
    if (hasher.digest(bytes) !== digest) {
      this.#moveAside(project, digest, path);
      throw chunkCorrupt(project, digest);
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
      manifest = decodeManifest(this.read(project, digest, hasher), digest);
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
    this.#pending.commitSync(project, [digest, ...chunks]);
    return manifest;
  }

  #path(project: string, digest: Digest): string {
    let dir = this.#projectDirs.get(project);
    if (dir === undefined) {
      // Bounded: a token for every project may name as many as it likes.
      if (this.#projectDirs.size >= PROJECT_DIRS_CACHED) this.#projectDirs.clear();
      dir = projectChunksDir(this.dir, project);
      this.#projectDirs.set(project, dir);
    }
    return objectPath(dir, digest);
  }

  #moveAside(project: string, digest: Digest, path: string): void {
    const folder = join(this.#corruptDir, projectFolder(project));
    try {
      mkdirSync(folder, { recursive: true });
      renameSync(path, join(folder, `${digest}.${Date.now()}`));
      this.#logger.error('chunk_corrupt', { project, digest, moved_to: folder });
    } catch (error) {
      this.#logger.error('chunk_corrupt', { project, digest, move_failed: String(error) });
    }
  }
}

/** Project folder names kept computed; far more than a server has projects. */
const PROJECT_DIRS_CACHED = 1024;

/** Names a chunk file being written; `recover` removes any a stopped server left. */
const TEMP_PREFIX = '.tmp-';

/** The folders directly inside `dir`, or none when it does not exist yet. */
function subfolders(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => join(dir, entry.name));
}

/**
 * Writes the pieces to a temp file in `folder`, beside `target`, without fsync;
 * `PendingChunks.commit` syncs it later.
 */
async function writeTempFile(
  folder: string,
  pieces: readonly Uint8Array[],
  target: string,
): Promise<string> {
  const temp = join(folder, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx', 0o444);
    // One call for all the pieces; a short write (rare, on a nearly full disk) goes on from
    // where it stopped.
    let rest = pieces.filter((piece) => piece.length > 0);
    while (rest.length > 0) {
      const { bytesWritten } = await handle.writev(rest as Uint8Array[]);
      rest = afterBytes(rest, bytesWritten);
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

/** What remains of `pieces` once their first `count` bytes are gone. */
function afterBytes(pieces: readonly Uint8Array[], count: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  let skip = count;
  for (const piece of pieces) {
    if (skip >= piece.length) {
      skip -= piece.length;
      continue;
    }
    rest.push(skip === 0 ? piece : piece.subarray(skip));
    skip = 0;
  }
  return rest;
}

/** Whether `bytes` holds exactly what `pieces` hold back to back. */
function sameBytes(bytes: Uint8Array, pieces: readonly Uint8Array[]): boolean {
  let offset = 0;
  for (const piece of pieces) {
    if (offset + piece.length > bytes.length) return false;
    if (Buffer.compare(bytes.subarray(offset, offset + piece.length), piece) !== 0) return false;
    offset += piece.length;
  }
  return offset === bytes.length;
}

function chunkMissing(project: string, digest: Digest, cause: unknown): NotFoundError {
  return new NotFoundError('chunk_missing', `chunk ${digest} is not on this server`, {
    hint: reuploadHint(project, digest),
    cause,
  });
}

function chunkCorrupt(project: string, digest: Digest): ArtifactError {
  return new ArtifactError('chunk_corrupt', `chunk ${digest} does not match its digest`, {
    hint: `The damaged copy was set aside. ${reuploadHint(project, digest)}`,
  });
}

/**
 * How a chunk the server lost is sent again. A plain sync sends only what the ops it replays
 * need, so it does not resend the chunks of a run it already synced (docs/artifacts.md, Repair).
 */
export function reuploadHint(project: string, digest: Digest): string {
  return (
    `From a store that holds the run intact, run 'tidemark sync --resend <run>' (project ` +
    `${project}), which sends chunk ${digest} and any other the server lacks again ` +
    '(docs/artifacts.md, Repair).'
  );
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
