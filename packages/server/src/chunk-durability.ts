import { closeSync, fsyncSync, openSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  type Digest,
  fsyncFolder,
  fsyncFolderAsync,
  type Hasher,
  type Logger,
  toArtifactWriteError,
} from '@tidemark/core';
import type Database from 'better-sqlite3';

/** fsyncs issued at once by a commit; enough to keep the disk's queue full. */
const SYNCS_IN_FLIGHT = 16;

/**
 * Unsynced bytes after which written chunks start being fsynced in the background. A large
 * upload then keeps the disk writing while more chunks arrive, and its commit finds little left
 * to do; small uploads stay below it and are synced together at commit.
 */
const EARLY_SYNC_BYTES = 32 * 1024 * 1024;

/**
 * Which chunk files were written but not yet fsynced (`pending_chunks`). An upload answers as
 * soon as its chunk is written and renamed into place; making it durable is deferred to
 * `commit`, which a client calls once after its uploads and before it sends the ops that need
 * them, so a thousand chunks cost a few journal commits instead of a thousand (protocol:
 * Chunks). Once enough unsynced bytes pile up during a large upload, they are fsynced in the
 * background meanwhile, so the disk is not idle until the commit. Nothing relies on a pending chunk across a crash: an op is applied only after its
 * chunks are durable (`commitSync`), and at startup every chunk still pending is re-hashed and
 * kept only if intact (`recover`).
 */
export class PendingChunks {
  readonly #db: Database.Database;
  readonly #path: (digest: Digest) => string;
  readonly #isPending: Database.Statement;
  readonly #add: Database.Statement;
  readonly #remove: Database.Statement;
  readonly #logger: Logger;
  /** Written chunks not yet handed to a background sync, and their bytes. */
  #unsynced: Digest[] = [];
  #unsyncedBytes = 0;
  /** The background syncs under way; a commit waits for them before syncing the rest. */
  #settling: Promise<void> = Promise.resolve();

  constructor(db: Database.Database, path: (digest: Digest) => string, logger: Logger) {
    this.#db = db;
    this.#logger = logger;
    this.#path = path;
    this.#isPending = db.prepare('SELECT 1 FROM pending_chunks WHERE digest = ?').pluck();
    this.#add = db.prepare('INSERT OR REPLACE INTO pending_chunks (digest, at) VALUES (?, ?)');
    this.#remove = db.prepare('DELETE FROM pending_chunks WHERE digest = ?');
  }

  /** Records a chunk file written without fsync; call in the transaction that records it. */
  add(digest: Digest, now: number): void {
    this.#add.run(digest, now);
  }

  /**
   * Notes a chunk file written and recorded by `add`; past a threshold of unsynced bytes, starts
   * fsyncing those files in the background. A failure there is only logged: the chunks stay
   * pending and the commit that needs them syncs them again and reports what fails.
   */
  written(digest: Digest, size: number): void {
    this.#unsynced.push(digest);
    this.#unsyncedBytes += size;
    if (this.#unsyncedBytes < EARLY_SYNC_BYTES) return;

    const batch = this.#unsynced;
    this.#unsynced = [];
    this.#unsyncedBytes = 0;
    this.#settling = this.#settling.then(() =>
      this.#sync(batch).then(
        () => undefined,
        (error: unknown) => {
          this.#logger.warn('early_sync_failed', { chunks: batch.length, error: String(error) });
        },
      ),
    );
  }

  /** Resolves once no background sync is under way; a closing server waits for it. */
  settled(): Promise<void> {
    return this.#settling;
  }

  /** Makes the pending ones of `digests` durable: each file, then each folder, fsynced. */
  async commit(digests: readonly Digest[]): Promise<number> {
    await this.#settling;
    return this.#sync(digests);
  }

  async #sync(digests: readonly Digest[]): Promise<number> {
    const pending = [...new Set(digests)].filter((d) => this.#isPending.get(d) !== undefined);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < pending.length) {
        const digest = pending[next++] as Digest;
        await fsyncFile(this.#path(digest));
      }
    };
    await Promise.all(Array.from({ length: Math.min(SYNCS_IN_FLIGHT, pending.length) }, worker));
    const folders = new Set(pending.map((digest) => dirname(this.#path(digest))));
    await Promise.all([...folders].map((folder) => fsyncFolderAsync(folder)));
    this.#forget(pending);
    return pending.length;
  }

  /** `commit` without awaiting, for the op path, which runs inside a transaction. */
  commitSync(digests: readonly Digest[]): void {
    const pending = [...new Set(digests)].filter((d) => this.#isPending.get(d) !== undefined);
    if (pending.length === 0) return;
    for (const digest of pending) {
      const fd = openSync(this.#path(digest), 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    for (const folder of new Set(pending.map((digest) => dirname(this.#path(digest))))) {
      fsyncFolder(folder);
    }
    this.#forget(pending);
  }

  /**
   * At startup: a chunk still pending was answered as stored but may not have reached the disk
   * whole before the server stopped. An intact one is made durable; any other is removed with
   * every project's claim on it, so clients are told it is missing and send it again.
   */
  recover(hasher: Hasher, logger: Logger): { kept: number; dropped: number } {
    const pending = this.#db.prepare('SELECT digest FROM pending_chunks').pluck().all() as Digest[];
    let dropped = 0;
    for (const digest of pending) {
      const path = this.#path(digest);
      let intact = false;
      try {
        intact = hasher.digest(readFileSync(path)) === digest;
      } catch {
        intact = false;
      }
      if (intact) {
        this.commitSync([digest]);
        continue;
      }
      rmSync(path, { force: true });
      this.#db.prepare('DELETE FROM project_chunks WHERE digest = ?').run(digest);
      this.#forget([digest]);
      dropped += 1;
      logger.warn('pending_chunk_dropped', { digest });
    }
    return { kept: pending.length - dropped, dropped };
  }

  #forget(digests: readonly Digest[]): void {
    this.#db.transaction(() => {
      for (const digest of digests) this.#remove.run(digest);
    })();
  }
}

async function fsyncFile(path: string): Promise<void> {
  try {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw toArtifactWriteError(error, path);
  }
}
