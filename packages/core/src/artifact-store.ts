import {
  closeSync,
  existsSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  type Stats,
  statSync,
} from 'node:fs';
import { join, sep } from 'node:path';
import { Piscina } from 'piscina';
import { saveGuide } from './chunk-guide.js';
import { writeFileDurablyAsync } from './durable-file.js';
import { ArtifactError, NotFoundError } from './errors.js';
import { digestSize, getHasher } from './hash.js';
import type { Digest } from './ids.js';
import { beginIngest } from './ingest-lock.js';
import { listFiles } from './list-files.js';
import { decodeManifest, encodeManifest, isEntryPath, type Manifest } from './manifest.js';
import { objectPath } from './object-layout.js';
import { PendingWork } from './pending-work.js';
import { type RestoreResult, restoreManifest } from './restore-files.js';
import type {
  HashResult,
  HashTask,
  SnapshotFailure,
  SnapshotResult,
  SnapshotTask,
  SplitPlan,
} from './snapshot-worker.js';

/** What logging a file or directory recorded. */
export interface Snapshot {
  manifest: Digest;
  kind: 'file' | 'dir';
  size: number;
  fileCount: number;
  /** Bytes written as new objects; content the store already held costs nothing. */
  newBytes: number;
  /** Bytes matched at hashing speed against an earlier version of the same file. */
  guidedBytes: number;
}

/** Objects re-hashed per worker task when verifying: enough to amortize the hand-off. */
const HASH_BATCH_BYTES = 64 * 1024 * 1024;

const POOL_THREADS = 2;

/** Files of a folder snapshotted at once: one running and one waiting per pool thread. */
const FILES_IN_FLIGHT = 2 * POOL_THREADS;

/**
 * The content-addressed object folder of a store. Chunks and manifests are objects named by
 * their digest; identical content is stored once however often and wherever it is logged.
 * Snapshotting runs in a worker pool so that hashing a large checkpoint never stalls the
 * caller's event loop (a training loop keeps stepping). `docs/artifacts.md` describes the
 * layout, the chunking and the durability and gc rules this class keeps.
 */
export class ArtifactStore {
  readonly dir: string;
  #pool: Piscina | undefined;
  readonly #tasks = new PendingWork();

  /** With `create: false` the folder is left alone, for readers that must change nothing. */
  constructor(dir: string, options: { create?: boolean } = {}) {
    this.dir = dir;
    if (options.create !== false) mkdirSync(dir, { recursive: true });
  }

  /**
   * Snapshots `source` and hands the result to `record`, which must reference it from the
   * database before it returns. Until then a pending marker keeps `gc` from deleting the new
   * objects, or the old ones the snapshot reuses. Resolves once the objects are durable and
   * `record` has returned.
   */
  async ingest<T>(source: string, record: (snapshot: Snapshot) => T): Promise<T> {
    const marker = await beginIngest(this.dir);
    try {
      return record(await this.snapshot(source));
    } finally {
      marker.release();
    }
  }

  /**
   * Records the bytes of a file or directory as they are now and resolves once they are
   * durable. The objects are unreferenced until the caller records the manifest; use `ingest`
   * unless a pending marker is already held.
   */
  async snapshot(source: string): Promise<Snapshot> {
    const stats = statOrThrow(source);
    if (stats.isFile()) {
      const result = await this.#snapshotFile(source);
      const manifest: Manifest = { v: 1, type: 'file', size: result.size, chunks: result.chunks };
      return {
        manifest: await this.putObject(encodeManifest(manifest)),
        kind: 'file',
        size: result.size,
        fileCount: 1,
        newBytes: result.newBytes,
        guidedBytes: result.guidedBytes,
      };
    }
    if (!stats.isDirectory()) {
      throw new ArtifactError('not_a_file', `${source} is neither a file nor a directory`, {
        hint: 'Log regular files or directories of them.',
      });
    }

    // Every name is checked before the first object is written: a folder refused here leaves
    // nothing behind, and no manifest is ever written that a reader would refuse.
    const files = listFiles(source);
    const paths = files.map((file) => file.split(sep).join('/'));
    assertEntryPaths(source, paths);
    const results = await this.#snapshotFiles(files.map((file) => join(source, file)));
    const entries = paths.map((path, i) => {
      const result = results[i] as SnapshotResult;
      return { path, size: result.size, chunks: result.chunks };
    });
    const size = entries.reduce((total, entry) => total + entry.size, 0);
    const digest = await this.putObject(encodeManifest({ v: 1, type: 'dir', size, entries }));
    return {
      manifest: digest,
      kind: 'dir',
      size,
      fileCount: files.length,
      newBytes: results.reduce((total, result) => total + result.newBytes, 0),
      guidedBytes: results.reduce((total, result) => total + result.guidedBytes, 0),
    };
  }

  /** Stores a small object from memory (manifests) durably and returns its digest. */
  async putObject(bytes: Uint8Array): Promise<Digest> {
    const digest = (await getHasher()).digest(bytes);
    const target = objectPath(this.dir, digest);
    if (!existsSync(target)) await writeFileDurablyAsync(target, bytes);
    return digest;
  }

  /** Stores an object received from elsewhere after checking it matches its digest. */
  async putVerified(digest: Digest, bytes: Uint8Array): Promise<void> {
    const actual = (await getHasher()).digest(bytes);
    if (actual !== digest) {
      throw new ArtifactError('digest_mismatch', `received bytes do not match object ${digest}`, {
        retryable: true,
      });
    }
    const target = objectPath(this.dir, digest);
    if (!existsSync(target)) await writeFileDurablyAsync(target, bytes);
  }

  has(digest: Digest): boolean {
    return existsSync(objectPath(this.dir, digest));
  }

  /**
   * Reads an object and checks its bytes against its digest (invariant 4). The read is
   * synchronous: an object is at most a chunk of a few MiB, read from the page cache faster
   * than a round trip through the thread pool.
   */
  async read(digest: Digest): Promise<Buffer> {
    const path = objectPath(this.dir, digest);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (error) {
      throw missingObject(digest, this.dir, error);
    }
    if ((await getHasher()).digest(bytes) !== digest) throw corruptObject(digest);
    return bytes;
  }

  /**
   * An object read into a caller's buffer (a view of `target`; a new buffer when the object is
   * larger) without the digest check, for bytes on their way to a receiver that re-hashes every
   * object it is sent (the server, invariant 4). Checking on both ends of one transfer spends a
   * core on a check the receiver repeats anyway. Only the length is checked: a wrong one needs
   * no hash to be seen, and would garble a body of objects sent back to back. When the receiver
   * refuses an object as not matching its digest, `read` it to tell local damage from damage on
   * the way.
   */
  readIntoUnchecked(digest: Digest, target: Buffer): Buffer {
    if (digestSize(digest) <= target.length) return this.#readRaw(digest, target);

    let bytes: Buffer;
    try {
      bytes = readFileSync(objectPath(this.dir, digest));
    } catch (error) {
      throw missingObject(digest, this.dir, error);
    }
    if (bytes.length !== digestSize(digest)) throw corruptObject(digest);
    return bytes;
  }

  /**
   * Reads an object that fits in `target` with synchronous calls: an object is at most a chunk of
   * a few MiB, read from the page cache faster than a round trip through the thread pool. A file
   * whose length is not the digest's is damaged (bytes cut off or added), hashed or not.
   */
  #readRaw(digest: Digest, target: Buffer): Buffer {
    const size = digestSize(digest);
    const path = objectPath(this.dir, digest);
    let length = 0;
    let onDisk: number;
    try {
      const fd = openSync(path, 'r');
      try {
        onDisk = fstatSync(fd).size;
        for (let read = -1; read !== 0 && length < size; length += read) {
          read = readSync(fd, target, length, size - length, length);
        }
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      throw missingObject(digest, this.dir, error);
    }
    if (onDisk !== size || length !== size) throw corruptObject(digest);
    return target.subarray(0, length);
  }

  async readManifest(digest: Digest): Promise<Manifest> {
    return decodeManifest(await this.read(digest), digest);
  }

  /** Writes the file or directory a manifest describes to `out`, every chunk verified. */
  async restore(manifestDigest: Digest, out: string): Promise<RestoreResult> {
    const manifest = await this.readManifest(manifestDigest);
    return restoreManifest(manifest, out, (digest) => this.read(digest));
  }

  /**
   * Re-hashes objects in the worker pool, a batch per task, and answers those not intact.
   * @internal used by `verifyObjects`.
   */
  async rehash(objects: ReadonlyArray<{ digest: Digest; path: string }>): Promise<HashResult> {
    const tasks: HashTask[] = [];
    let batch: HashTask = { objects: [] };
    let batchBytes = 0;
    for (const object of objects) {
      batch.objects.push(object);
      batchBytes += digestSize(object.digest);
      if (batchBytes >= HASH_BATCH_BYTES) {
        tasks.push(batch);
        batch = { objects: [] };
        batchBytes = 0;
      }
    }
    if (batch.objects.length > 0) tasks.push(batch);

    const results = await Promise.all(
      tasks.map((task) => this.#runTask<HashResult>(task, 'hashObjects')),
    );
    return {
      bytes: results.reduce((total, result) => total + result.bytes, 0),
      damaged: results.flatMap((result) => result.damaged),
    };
  }

  /**
   * Stops the worker pool once the tasks still running in it have finished; a later snapshot
   * starts a new one. Piscina must not be destroyed under a running task: the worker's answer
   * would then arrive for a task it no longer knows, and it throws where nobody can catch it.
   */
  async close(): Promise<void> {
    await this.#tasks.drain();
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.destroy();
  }

  #runTask<T>(task: object, name?: string): Promise<T> {
    this.#pool ??= new Piscina({
      filename: new URL('./snapshot-worker.js', import.meta.url).href,
      maxThreads: POOL_THREADS,
      idleTimeout: 2000,
    });
    return this.#tasks.track(
      this.#pool.run(task, name === undefined ? {} : { name }) as Promise<T>,
    );
  }

  /**
   * Snapshots the files of a folder, a few at a time. After a failure no further file is
   * started and the call waits for those already running before it rejects: the caller may
   * close the store next, and must find no worker still writing objects for this snapshot.
   */
  async #snapshotFiles(sources: readonly string[]): Promise<SnapshotResult[]> {
    const results: SnapshotResult[] = [];
    let next = 0;
    let failure: { error: unknown } | undefined;
    const lane = async (): Promise<void> => {
      while (failure === undefined && next < sources.length) {
        const index = next++;
        try {
          results[index] = await this.#snapshotFile(sources[index] as string);
        } catch (error) {
          failure ??= { error };
        }
      }
    };
    const lanes = Math.min(FILES_IN_FLIGHT, sources.length);
    await Promise.all(Array.from({ length: lanes }, lane));
    if (failure !== undefined) throw failure.error;
    return results;
  }

  /**
   * Snapshots one file. A large one is cut in two halves hashed by both pool threads at once:
   * the second starts at a cut point `planSplit` expects the first to reach, and the first
   * stops there only if it does, so the chunks are the ones a single pass would cut.
   */
  async #snapshotFile(source: string): Promise<SnapshotResult> {
    const size = statOrThrow(source).size;
    if (size < SPLIT_MIN) return this.#run({ source, objectsDir: this.dir, size });

    const plan = unwrap(
      await this.#runTask<SplitPlan | SnapshotFailure>({ source, size }, 'planSnapshot'),
    );
    if (plan.at === undefined) return this.#run({ source, objectsDir: this.dir, size });
    const common = { source, objectsDir: this.dir, size, guideKey: plan.first, saveHint: false };
    const [head, tail] = await Promise.all([
      this.#run({ ...common, until: plan.at }),
      this.#run({ ...common, from: plan.at }),
    ]);

    // A first half that cut past the split point went on to the end by itself.
    const whole = head.end === plan.at;
    const chunks = whole ? [...head.chunks, ...tail.chunks] : head.chunks;
    await saveGuide(this.dir, chunks);
    return {
      size: whole ? head.size + tail.size : head.size,
      end: size,
      chunks,
      newBytes: head.newBytes + (whole ? tail.newBytes : 0),
      guidedBytes: head.guidedBytes + (whole ? tail.guidedBytes : 0),
    };
  }

  async #run(task: SnapshotTask): Promise<SnapshotResult> {
    return unwrap(await this.#runTask<SnapshotResult | SnapshotFailure>(task));
  }
}

/** Files from this size on are snapshotted by two workers at once. */
const SPLIT_MIN = 64 * 1024 * 1024;

/** Rebuilds the error a worker sent back as data. */
function unwrap<T extends object>(result: T | SnapshotFailure): T {
  if ('failed' in result) {
    const { code, message, hint, retryable } = result.failed;
    throw new ArtifactError(code, message, {
      retryable,
      ...(hint === undefined ? {} : { hint }),
    });
  }
  return result;
}

function missingObject(digest: Digest, dir: string, cause: unknown): NotFoundError {
  return new NotFoundError('object_missing', `object ${digest} is not in ${dir}`, {
    hint: "Run 'tidemark verify' to list missing objects.",
    cause,
  });
}

function corruptObject(digest: Digest): ArtifactError {
  return new ArtifactError('object_corrupt', `object ${digest} does not match its digest`, {
    hint:
      "Run 'tidemark verify'; if the run was synced, 'tidemark get <run> <path> --remote <url>' " +
      'fetches it again.',
  });
}

/** Follows a symbolic link to what it names, as `listFiles` does inside a folder. */
function statOrThrow(source: string): Stats {
  try {
    return statSync(source);
  } catch (error) {
    if (isLink(source)) {
      throw new ArtifactError('dangling_link', `symbolic link ${source} leads nowhere`, {
        hint: 'Fix or remove the link; links are followed and their target must exist.',
        cause: error,
      });
    }
    throw new ArtifactError('source_missing', `cannot read ${source}`, {
      hint: 'Check the path; it must exist when the artifact is logged.',
      cause: error,
    });
  }
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Names `isEntryPath` refuses: a `..` between backslashes would climb out on Windows. */
function assertEntryPaths(folder: string, paths: readonly string[]): void {
  const refused = paths.find((path) => !isEntryPath(path));
  if (refused === undefined) return;
  throw new ArtifactError(
    'unsupported_name',
    `${join(folder, refused)} has a '..' between backslashes, which restore cannot write safely`,
    { hint: "Rename the file; a name may hold backslashes, but no '..' between them." },
  );
}
