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

/** One project's copy of a chunk: every project has its own file (chunk-layout.ts). */
export interface ChunkCopy {
  project: string;
  digest: Digest;
}

/**
 * Which chunk files were written but not yet fsynced (`pending_chunks`, one row per project's
 * copy). An upload answers as soon as its chunk is written and renamed into place; making it
 * durable is deferred to `commit`, which a client calls once after its uploads and before it
 * sends the ops that need them, so a thousand chunks cost a few journal commits instead of a
 * thousand (protocol: Chunks). Once enough unsynced bytes pile up during a large upload, they
 * are fsynced in the background meanwhile, so the disk is not idle until the commit. Nothing
 * relies on a pending chunk across a crash: an op is applied only after its chunks are durable
 * (`commitSync`), and at startup every chunk still pending is re-hashed and kept only if intact
 * (`recover`).
 */
export class PendingChunks {
  readonly #db: Database.Database;
  readonly #path: (project: string, digest: Digest) => string;
  readonly #root: string;
  readonly #isPending: Database.Statement;
  readonly #add: Database.Statement;
  readonly #remove: Database.Statement;
  readonly #logger: Logger;
  /** Written copies not yet handed to a background sync, and their bytes. */
  #unsynced: ChunkCopy[] = [];
  #unsyncedBytes = 0;
  /** The background syncs under way; a commit waits for them before syncing the rest. */
  #settling: Promise<void> = Promise.resolve();

  /**
   * `path` names a project's copy of a chunk, somewhere below `root`; a sync fsyncs every folder
   * from the file's up to `root`, so folders created for new copies are durable too.
   */
  constructor(
    db: Database.Database,
    path: (project: string, digest: Digest) => string,
    root: string,
    logger: Logger,
  ) {
    this.#db = db;
    this.#logger = logger;
    this.#path = path;
    this.#root = root;
    this.#isPending = db
      .prepare('SELECT 1 FROM pending_chunks WHERE project = ? AND digest = ?')
      .pluck();
    this.#add = db.prepare(
      'INSERT OR REPLACE INTO pending_chunks (project, digest, at) VALUES (?, ?, ?)',
    );
    this.#remove = db.prepare('DELETE FROM pending_chunks WHERE project = ? AND digest = ?');
  }

  /** Records a chunk file written without fsync; call in the transaction that records it. */
  add(project: string, digest: Digest, now: number): void {
    this.#add.run(project, digest, now);
  }

  /**
   * Notes a chunk file written and recorded by `add`; past a threshold of unsynced bytes, starts
   * fsyncing those files in the background. A failure there is only logged: the chunks stay
   * pending and the commit that needs them syncs them again and reports what fails.
   */
  written(project: string, digest: Digest, size: number): void {
    this.#unsynced.push({ project, digest });
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

  /** Makes `project`'s pending copies of `digests` durable: each file, then each folder. */
  async commit(project: string, digests: readonly Digest[]): Promise<number> {
    await this.#settling;
    return this.#sync(digests.map((digest) => ({ project, digest })));
  }

  async #sync(copies: readonly ChunkCopy[]): Promise<number> {
    const pending = this.#pendingOf(copies);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < pending.length) {
        const copy = pending[next++] as ChunkCopy;
        await fsyncFile(this.#path(copy.project, copy.digest));
      }
    };
    await Promise.all(Array.from({ length: Math.min(SYNCS_IN_FLIGHT, pending.length) }, worker));
    const folders = this.#foldersOf(pending.map((copy) => this.#path(copy.project, copy.digest)));
    await Promise.all(folders.map((folder) => fsyncFolderAsync(folder)));
    this.#forget(pending);
    return pending.length;
  }

  /** `commit` without awaiting, for the op path, which runs inside a transaction. */
  commitSync(project: string, digests: readonly Digest[]): void {
    this.#commitSync(this.#pendingOf(digests.map((digest) => ({ project, digest }))));
  }

  #commitSync(pending: readonly ChunkCopy[]): void {
    if (pending.length === 0) return;
    const paths = pending.map((copy) => this.#path(copy.project, copy.digest));
    for (const path of paths) {
      const fd = openSync(path, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    for (const folder of this.#foldersOf(paths)) fsyncFolder(folder);
    this.#forget(pending);
  }

  /**
   * At startup: a copy still pending was answered as stored but may not have reached the disk
   * whole before the server stopped. An intact one is made durable; any other is removed with
   * its project's claim on it, so that project's clients are told it is missing and send it
   * again.
   */
  recover(hasher: Hasher, logger: Logger): { kept: number; dropped: number } {
    const pending = this.#db
      .prepare('SELECT project, digest FROM pending_chunks')
      .all() as ChunkCopy[];
    const unclaim = this.#db.prepare('DELETE FROM project_chunks WHERE project = ? AND digest = ?');
    const intact: ChunkCopy[] = [];
    for (const copy of pending) {
      const path = this.#path(copy.project, copy.digest);
      try {
        if (hasher.digest(readFileSync(path)) === copy.digest) {
          intact.push(copy);
          continue;
        }
      } catch {
        // Unreadable counts as damaged: the client sends it again.
      }
      rmSync(path, { force: true });
      unclaim.run(copy.project, copy.digest);
      this.#forget([copy]);
      logger.warn('pending_chunk_dropped', { project: copy.project, digest: copy.digest });
    }
    this.#commitSync(intact);
    return { kept: intact.length, dropped: pending.length - intact.length };
  }

  /** The copies of `copies` still pending, without repeats. */
  #pendingOf(copies: readonly ChunkCopy[]): ChunkCopy[] {
    const seen = new Set<string>();
    return copies.filter((copy) => {
      const key = `${copy.project}\n${copy.digest}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return this.#isPending.get(copy.project, copy.digest) !== undefined;
    });
  }

  /**
   * The folders holding `paths` and their parents up to the root, without repeats: a copy's
   * folder, its project's folder and the chunks folder may each have been created for it.
   */
  #foldersOf(paths: readonly string[]): string[] {
    const folders = new Set<string>();
    for (const path of paths) {
      for (let folder = dirname(path); !folders.has(folder); folder = dirname(folder)) {
        folders.add(folder);
        if (folder === this.#root || folder === dirname(folder)) break;
      }
    }
    return [...folders];
  }

  #forget(copies: readonly ChunkCopy[]): void {
    this.#db.transaction(() => {
      for (const copy of copies) this.#remove.run(copy.project, copy.digest);
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
