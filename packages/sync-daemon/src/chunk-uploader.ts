import {
  CHUNK_MAX,
  type ChunkRefusal,
  type Digest,
  digestSize,
  isTidemarkError,
  type Logger,
  type Manifest,
  manifestChunks,
  type Op,
  type RunId,
  type Store,
} from '@tidemark/core';
import { forEachLimit } from './for-each-limit.js';
import { referencedManifests } from './op-objects.js';
import type { RemoteClient } from './remote-client.js';
import { RemoteError } from './remote-error.js';
import { BATCH_BYTES, planBatches } from './upload-batches.js';
import { WireTurn } from './wire-turn.js';

export interface UploadStats {
  chunksSent: number;
  bytesSent: number;
  /** Objects the server already held, so they were not sent. */
  chunksSkipped: number;
  /** Bytes of the objects the server said it lacks, sent or not yet. */
  bytesPlanned: number;
}

export interface ChunkUploaderOptions {
  concurrency: number;
  logger: Logger;
  /** Called after every object sent. */
  onUpload: () => void;
}

/** How many digests one `missingChunks` call asks about. */
const ASK_SLICE = 5_000;

/** Local failures that will not heal by trying again: the run is quarantined instead. */
const LOCAL_OBJECT_PROBLEMS = new Set(['object_missing', 'object_corrupt', 'bad_manifest']);

/**
 * Makes the objects that ops refer to present on the remote before the ops are sent. Lives
 * for one sync pass: what it believes the server holds comes from the server's answers in
 * this pass only, and `forget()` drops even that after the server contradicts it.
 */
export class ChunkUploader {
  readonly stats: UploadStats = { chunksSent: 0, bytesSent: 0, chunksSkipped: 0, bytesPlanned: 0 };
  readonly #store: Store;
  readonly #remote: RemoteClient;
  readonly #options: ChunkUploaderOptions;
  readonly #present = new Map<string, Set<Digest>>();
  readonly #manifests = new Map<Digest, Manifest | string>();
  /**
   * One body on the wire at a time, while the uploads before it wait for their answers: a
   * pass killed at any moment has at most one chunk half sent, the only one sent again.
   */
  readonly #wire = new WireTurn();
  readonly #buffers: Buffer[] = [];
  readonly #batchBuffers: Buffer[] = [];
  /** Cleared when the server refuses a batch as a whole: objects then go one by one. */
  #batching = true;

  constructor(store: Store, remote: RemoteClient, options: ChunkUploaderOptions) {
    this.#store = store;
    this.#remote = remote;
    this.#options = options;
  }

  /** Drops every belief about what the server holds; the next `ensure` asks again. */
  forget(): void {
    this.#present.clear();
  }

  /**
   * Uploads, per project, the manifests and chunks `ops` refer to that the server lacks,
   * chunks before manifests. Answers the runs whose objects cannot be sent and why (a local
   * object missing or damaged, or refused by the server); their ops must not be sent.
   * Throws the RemoteError of any failure that may heal (unreachable, 5xx) or that is the
   * token's (401, and a 403 for the project).
   */
  async ensure(ops: readonly Op[]): Promise<Map<RunId, string>> {
    const problems = new Map<RunId, string>();
    const needs = new Map<string, Map<Digest, Set<RunId>>>();
    const manifests = new Set<Digest>();
    const need = (project: string, digest: Digest, runId: RunId): void => {
      const digests = needs.get(project) ?? new Map<Digest, Set<RunId>>();
      needs.set(project, digests);
      const runs = digests.get(digest) ?? new Set<RunId>();
      digests.set(digest, runs);
      runs.add(runId);
    };

    for (const op of ops) {
      for (const digest of referencedManifests(op)) {
        const manifest = await this.#readManifest(digest);
        if (typeof manifest === 'string') {
          if (!problems.has(op.runId)) problems.set(op.runId, manifest);
          continue;
        }
        manifests.add(digest);
        need(op.project, digest, op.runId);
        for (const chunk of manifestChunks(manifest)) need(op.project, chunk, op.runId);
      }
    }

    for (const [project, digests] of needs) {
      const missing = await this.#askMissing(project, [...digests.keys()]);

      const failed = new Set<Digest>();
      const fail = (digest: Digest, failure: string): void => {
        failed.add(digest);
        for (const runId of digests.get(digest) ?? []) {
          if (!problems.has(runId)) problems.set(runId, failure);
        }
      };
      const upload = async (digest: Digest, attempts?: number): Promise<void> => {
        const failure = await this.#upload(project, digest, attempts);
        if (failure !== undefined) fail(digest, failure);
      };
      const { concurrency } = this.#options;
      const send = async (objects: Digest[]): Promise<void> => {
        if (this.#remote.putChunks === undefined) {
          await forEachLimit(objects, concurrency, upload);
          return;
        }
        await forEachLimit(planBatches(objects), concurrency, (batch) =>
          this.#uploadBatch(project, batch, fail, upload),
        );
      };

      // A server may check a manifest's chunks when it receives it, so chunks go first.
      const [chunks, lists] = partition(missing, (digest) => !manifests.has(digest));
      await send(chunks);
      await send(lists);
      // Objects that failed are needed only by runs whose ops will not be sent.
      const needed = [...digests.keys()].filter((digest) => !failed.has(digest));
      await this.#commit(project, needed, upload);
    }
    return problems;
  }

  /**
   * Asks the server to make every object the ops need durable, those sent in an earlier pass
   * included, before the ops go out; sends once more any it says it no longer holds.
   */
  async #commit(
    project: string,
    digests: readonly Digest[],
    upload: (digest: Digest) => Promise<void>,
  ): Promise<void> {
    const commit = this.#remote.commitChunks?.bind(this.#remote);
    if (commit === undefined) return;
    for (let attempt = 1; attempt <= 2; attempt++) {
      const lost: Digest[] = [];
      for (let i = 0; i < digests.length; i += ASK_SLICE) {
        const slice = digests.slice(i, i + ASK_SLICE);
        lost.push(
          ...(await forbiddenAsAuth('POST /api/v1/chunks/commit', project, () =>
            commit(project, slice),
          )),
        );
      }
      if (lost.length === 0 || attempt === 2) return;
      const present = this.#present.get(project);
      for (const digest of lost) present?.delete(digest);
      await forEachLimit(lost, this.#options.concurrency, upload);
    }
  }

  async #readManifest(digest: Digest): Promise<Manifest | string> {
    const known = this.#manifests.get(digest);
    if (known !== undefined) return known;

    let manifest: Manifest | string;
    try {
      manifest = await this.#store.objects.readManifest(digest);
    } catch (error) {
      manifest = localProblem(error, digest);
    }
    this.#manifests.set(digest, manifest);
    return manifest;
  }

  /** Answers what the project lacks. */
  async #askMissing(project: string, digests: Digest[]): Promise<Digest[]> {
    const present = this.#present.get(project) ?? new Set<Digest>();
    this.#present.set(project, present);
    const unknown = digests.filter((digest) => !present.has(digest));

    const missing: Digest[] = [];
    for (let i = 0; i < unknown.length; i += ASK_SLICE) {
      const slice = unknown.slice(i, i + ASK_SLICE);
      const lacking = new Set(
        await forbiddenAsAuth('POST /api/v1/chunks/missing', project, () =>
          this.#remote.missingChunks(project, slice),
        ),
      );
      for (const digest of slice) {
        if (lacking.has(digest)) {
          missing.push(digest);
          this.stats.bytesPlanned += digestSize(digest);
        } else {
          present.add(digest);
          this.stats.chunksSkipped += 1;
        }
      }
    }
    return missing;
  }

  /**
   * Sends objects in one request, read back to back into one buffer. The server re-hashes each
   * (invariant 4); one it refuses as not matching its digest is checked here: damaged on this
   * disk, its runs fail; damaged on the way, it is sent once more alone. An object that cannot
   * be read is left out and reported through `fail`.
   */
  async #uploadBatch(
    project: string,
    batch: readonly Digest[],
    fail: (digest: Digest, failure: string) => void,
    upload: (digest: Digest, attempts?: number) => Promise<void>,
  ): Promise<void> {
    const putChunks = this.#remote.putChunks?.bind(this.#remote);
    if (putChunks === undefined || !this.#batching || batch.length === 1) {
      for (const digest of batch) await upload(digest);
      return;
    }

    const buffer = this.#batchBuffers.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
    try {
      const { read: sent, length } = this.#readBatch(batch, buffer, fail);
      if (sent.length === 0) return;

      let refused: ChunkRefusal[];
      const done = await this.#wire.acquire();
      try {
        refused = await forbiddenAsAuth('POST /api/v1/chunks/batch', project, () =>
          putChunks(project, sent, buffer.subarray(0, length), { onBodySent: done }),
        );
      } catch (error) {
        if (!(error instanceof RemoteError) || error.code !== 'rejected') throw error;
        // A server without batches, or with smaller limits: one by one for the rest of the pass.
        this.#batching = false;
        this.#options.logger.warn('batch_refused', {
          status: error.status,
          server_code: error.serverCode,
        });
        for (const digest of sent) await upload(digest);
        return;
      } finally {
        done();
      }

      const notKept = new Map(refused.map((refusal) => [refusal.digest, refusal.code]));
      for (const digest of sent) {
        if (!notKept.has(digest)) this.#delivered(project, digest);
      }
      for (const [digest, code] of notKept) {
        if (code === 'digest_mismatch') {
          // An intact local copy means damage on the way: one more try, alone.
          const damage = await this.#localDamage(digest);
          if (damage === undefined) await upload(digest, 1);
          else fail(digest, damage);
          continue;
        }
        this.#options.logger.warn('chunk_refused', { digest, server_code: code });
        fail(digest, `object ${digest} refused by the server (${code})`);
      }
    } finally {
      this.#batchBuffers.push(buffer);
    }
  }

  /**
   * Sends one object, trying again once (`attempts` 2) when it was damaged on the way; answers
   * why it cannot be sent, or undefined once the server holds it.
   */
  async #upload(project: string, digest: Digest, attempts = 2): Promise<string | undefined> {
    // Reused buffers: a pass reads gigabytes a chunk at a time, and fresh ones would keep the
    // garbage collector busier than the upload.
    const buffer = this.#buffers.pop() ?? Buffer.allocUnsafeSlow(CHUNK_MAX);
    try {
      return await this.#uploadWith(project, digest, buffer, attempts);
    } finally {
      this.#buffers.push(buffer);
    }
  }

  async #uploadWith(
    project: string,
    digest: Digest,
    buffer: Buffer,
    attempts: number,
  ): Promise<string | undefined> {
    for (let attempt = 1; ; attempt += 1) {
      let bytes: Buffer;
      try {
        bytes = this.#store.objects.readIntoUnchecked(digest, buffer);
      } catch (error) {
        return localProblem(error, digest);
      }

      const sent = await this.#wire.acquire();
      try {
        await forbiddenAsAuth(`PUT /api/v1/chunks/${digest}`, project, () =>
          this.#remote.putChunk(project, digest, bytes, { onBodySent: sent }),
        );
        break;
      } catch (error) {
        sent();
        if (!(error instanceof RemoteError) || error.code !== 'rejected') throw error;
        if (error.serverCode === 'digest_mismatch') {
          const damage = await this.#localDamage(digest);
          if (damage !== undefined) return damage;
          if (attempt < attempts) continue;
        }
        this.#options.logger.warn('chunk_refused', {
          digest,
          status: error.status,
          server_code: error.serverCode,
        });
        const code = error.serverCode === undefined ? '' : ` ${error.serverCode}`;
        return `object ${digest} refused by the server (${error.status ?? '?'}${code})`;
      } finally {
        sent();
      }
    }

    this.#delivered(project, digest);
    return undefined;
  }

  /**
   * After the server refused an object as not matching its digest: reads the local copy with its
   * check (invariant 4) and answers why its runs fail when it is damaged here, or undefined when
   * it is intact and the damage happened on the way.
   */
  async #localDamage(digest: Digest): Promise<string | undefined> {
    try {
      await this.#store.objects.read(digest);
      return undefined;
    } catch (error) {
      const damage = localProblem(error, digest);
      this.#options.logger.warn('local_object_damaged', { digest, problem: damage });
      return damage;
    }
  }

  /** Counts an object the server now holds, and remembers that it does for this pass. */
  #delivered(project: string, digest: Digest): void {
    this.#present.get(project)?.add(digest);
    this.stats.chunksSent += 1;
    this.stats.bytesSent += digestSize(digest);
    this.#options.onUpload();
  }

  /**
   * Reads objects back to back into `buffer`, unchecked: the server re-hashes each one. One that
   * cannot be read, or has the wrong length, is left out and reported through `fail`.
   */
  #readBatch(
    batch: readonly Digest[],
    buffer: Buffer,
    fail: (digest: Digest, failure: string) => void,
  ): { read: Digest[]; length: number } {
    const read: Digest[] = [];
    let length = 0;
    for (const digest of batch) {
      try {
        length += this.#store.objects.readIntoUnchecked(digest, buffer.subarray(length)).length;
        read.push(digest);
      } catch (error) {
        fail(digest, localProblem(error, digest));
      }
    }
    return { read, length };
  }
}

/** The reason to quarantine for a local object that cannot be read intact; rethrows the rest. */
function localProblem(error: unknown, digest: Digest): string {
  if (isTidemarkError(error) && LOCAL_OBJECT_PROBLEMS.has(error.code)) {
    return `${error.code}: local object ${digest} cannot be read intact`;
  }
  throw error;
}

/**
 * A 403 names one project the token may not touch. That is the token's problem, not the run's:
 * the pass ends with an auth error naming the project, nothing is quarantined and the cursor
 * stays before the entries, so a pass with a better token sends them.
 */
async function forbiddenAsAuth<T>(
  endpoint: string,
  project: string,
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (!(error instanceof RemoteError) || error.code !== 'auth_failed' || error.status !== 403) {
      throw error;
    }
    throw RemoteError.forbidden(endpoint, project);
  }
}

function partition<T>(items: readonly T[], test: (item: T) => boolean): [T[], T[]] {
  const yes: T[] = [];
  const no: T[] = [];
  for (const item of items) (test(item) ? yes : no).push(item);
  return [yes, no];
}
