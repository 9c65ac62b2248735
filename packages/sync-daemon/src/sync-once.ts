import { performance } from 'node:perf_hooks';
import {
  type JournalEntry,
  type Logger,
  NotFoundError,
  type RunId,
  type Seq,
  type Store,
  silentLogger,
  ValidationError,
} from '@tidemark/core';
import { ChunkUploader } from './chunk-uploader.js';
import {
  type ReleaseRequest,
  replayReleasedRun,
  replayRunEntries,
  runsToRelease,
} from './release-quarantine.js';
import type { RemoteClient } from './remote-client.js';
import { normalizeRemoteUrl } from './remote-url.js';
import { type ReplayContext, replayBatch } from './replay-batch.js';
import { planRequests } from './request-batches.js';
import { SyncLedger } from './sync-ledger.js';
import { DEFAULT_LIMITS, validateOptions } from './sync-options.js';

export interface SyncLimits {
  /** Journal entries read at a time (default 2,000; at most 10,000, the protocol's cap). */
  maxEntries: number;
  /** Points read at a time; an entry is never split (default 50,000). */
  maxPoints: number;
  /** JSON bytes of one ops request; an op larger than this travels alone (default 16 MiB). */
  maxRequestBytes: number;
}

export interface SyncProgress {
  opsDone: number;
  opsTotal: number;
  /** Object bytes uploaded so far. */
  bytesDone: number;
  /** Object bytes the server said it lacks so far; grows as the pass learns more. */
  bytesTotal: number;
}

export interface SyncOptions {
  /** The remote's name in the local store (cursor, quarantine); defaults to `remote.url`. */
  remote?: string;
  /** Sync only this project's runs; other projects' entries wait for a pass without `only`. */
  only?: string;
  limits?: Partial<SyncLimits>;
  /** Objects uploaded at once (default 4). */
  uploadConcurrency?: number;
  logger?: Logger;
  onProgress?: (progress: SyncProgress) => void;
  /** Milliseconds since the epoch for cursor and quarantine times; defaults to the store's clock. */
  clock?: () => number;
  /** Checked between requests: an aborted pass stops there, cursor at the last answered request. */
  signal?: AbortSignal;
  /**
   * Quarantined runs to release first: `'all'` of this remote's, or run ids (each must be
   * held). Every entry of a released run is sent again from its start.
   */
  release?: ReleaseRequest;
  /**
   * Runs to send again from their first entry, with every object the server lacks: after the
   * server lost or set aside a chunk of a run it had. Ops it applied answer `duplicate`.
   */
  resend?: readonly string[];
}

/** A run held back from the remote. */
export interface QuarantinedRun {
  runId: RunId;
  reason: string;
  /** Quarantined by this pass; otherwise held since an earlier one. */
  isNew: boolean;
}

export interface SyncReport {
  /** The remote in normal form, as the cursor is keyed. */
  remote: string;
  only: string | null;
  /** Ops sent in requests the server answered (a resend after `missing_chunks` counts once). */
  opsSent: number;
  opsApplied: number;
  opsDuplicate: number;
  /** Entries of quarantined runs that this pass did not send. */
  opsSkipped: number;
  chunksSent: number;
  bytesSent: number;
  /** Objects the server already held, so they were not sent. */
  chunksSkipped: number;
  /** HTTP calls to `sendOps`, or `1` for the `whoami` of a pass with nothing new to send. */
  requests: number;
  /** Every run held back for this remote after the pass, those of earlier passes included. */
  quarantined: QuarantinedRun[];
  /** Runs this pass released and sent again from their start. */
  released: RunId[];
  /** Runs this pass sent again from their start on request (`resend`). */
  resent: RunId[];
  /** The cursor after the pass: the remote's, or with `only` the project's. */
  cursor: Seq;
  /** Entries after the cursor that a pass of the same kind still has to look at. */
  pending: number;
}

/**
 * One sync pass: replays this store's journal after the remote's cursor, uploading the objects
 * ops refer to first, and moves the cursor after each answered request (invariant 3).
 *
 * The pass reads up to the journal's last entry at its start; entries written meanwhile are
 * left for the next pass (`pending` counts them). With nothing new it makes one small request.
 * It never retries a failed call: an unreachable server or a 5xx throws a retryable
 * RemoteError, an auth failure a non-retryable one, and the cursor stays at the last request
 * the server answered. It keeps no state between calls; a scheduler calls it again.
 *
 * With `only`, the project's entries are sent and confirmed under a cursor of their own, and
 * the remote's cursor stops before the first entry of another project; a later pass without
 * `only` sends those and skips what the project cursor already confirmed.
 *
 * Quarantined runs stay held and are listed in every report until a pass releases them
 * (`release`); a released run is sent again from its first entry before the rest.
 *
 * @example
 * const report = await syncOnce(store, new HttpRemoteClient({ url, token }));
 */
export async function syncOnce(
  store: Store,
  remote: RemoteClient,
  options: SyncOptions = {},
): Promise<SyncReport> {
  validateOptions(options);
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const logger = options.logger ?? silentLogger;
  const only = options.only;
  const started = performance.now();
  const name = normalizeRemoteUrl(options.remote ?? remote.url);
  const ledger = new SyncLedger(store, name, options.clock ?? store.clock);

  const remoteStart = ledger.cursor();
  const projectCursors = only === undefined ? ledger.projectCursors() : new Map<string, Seq>();
  const start =
    only === undefined ? remoteStart : (Math.max(remoteStart, ledger.projectCursor(only)) as Seq);
  // A writer that never stops must not keep one pass going forever.
  const end = store.journal.lastSeq();

  const quarantined = ledger.quarantined();
  const releasing = new Set(runsToRelease(quarantined, options.release, ledger.remote));
  const fresh = new Set<RunId>();
  const counts = { opsSent: 0, opsApplied: 0, opsDuplicate: 0, opsSkipped: 0, requests: 0 };
  const progress: SyncProgress = {
    opsDone: 0,
    opsTotal: end > start ? ledger.countAfter(start) - ledger.countAfter(end) : 0,
    bytesDone: 0,
    bytesTotal: 0,
  };

  const uploader = new ChunkUploader(store, remote, {
    concurrency: options.uploadConcurrency ?? 4,
    logger,
    onUpload: () => emitProgress(),
  });
  const emitProgress = (): void => {
    progress.bytesDone = uploader.stats.bytesSent;
    progress.bytesTotal = uploader.stats.bytesPlanned;
    options.onProgress?.({ ...progress });
  };
  const ctx: ReplayContext = {
    remote,
    storeId: store.storeId,
    uploader,
    counts,
    logger,
    isQuarantined: (runId) => quarantined.has(runId),
    quarantine: (runId, reason) => {
      if (quarantined.has(runId)) return;
      // A run refused again while being released keeps the new reason, not the old one.
      if (releasing.has(runId)) ledger.release(runId);
      ledger.quarantine(runId, reason);
      quarantined.set(runId, reason);
      fresh.add(runId);
      logger.warn('run_quarantined', { remote: ledger.remote, run_id: runId });
    },
  };

  // With `only`, the remote's cursor may move only up to the first entry of another project.
  let remoteCap =
    only === undefined || start === remoteStart ? Number.POSITIVE_INFINITY : remoteStart;
  const confirm = (seq: Seq): void => {
    if (only !== undefined) ledger.advanceProject(only, seq);
    const reach = Math.min(seq, remoteCap);
    if (reach > remoteStart) ledger.advance(reach as Seq);
  };

  // An `only` pass stands on the remote's cursor until it confirms something of its own.
  const reached = (): Seq =>
    only === undefined
      ? ledger.cursor()
      : (Math.max(ledger.cursor(), ledger.projectCursor(only)) as Seq);

  logger.info('sync_start', {
    remote: ledger.remote,
    only: only ?? null,
    from_seq: start,
    to_seq: end,
  });

  // Released runs go first: their skipped entries lie behind the cursor, out of the loop's reach.
  const released: RunId[] = [];
  const release = { store, ledger, replay: ctx, limits, end, ...signalOf(options) };
  for (const runId of releasing) quarantined.delete(runId);
  try {
    for (const runId of releasing) {
      if (await replayReleasedRun(release, runId)) released.push(runId);
    }
  } catch (error) {
    logger.warn('sync_failed', { remote: ledger.remote, code: codeOf(error), cursor: reached() });
    throw error;
  }
  if (released.length > 0) logger.info('runs_released', { remote: ledger.remote, runs: released });

  // Resent runs go up to the cursor; what lies after it the loop below sends anyway.
  const resent: RunId[] = [];
  try {
    for (const runId of runsToResend(store, quarantined, options.resend)) {
      if (await replayRunEntries(release, runId, Math.min(start, end) as Seq)) resent.push(runId);
    }
  } catch (error) {
    logger.warn('sync_failed', { remote: ledger.remote, code: codeOf(error), cursor: reached() });
    throw error;
  }
  if (resent.length > 0) logger.info('runs_resent', { remote: ledger.remote, runs: resent });

  // Nothing to send still costs one small request: it proves the server and the token, so a
  // revoked token or a dead server is reported instead of passing as a quiet success.
  if (start >= end && releasing.size === 0 && resent.length === 0) {
    await remote.whoami();
    counts.requests += 1;
  }

  const readPage = (after: Seq): JournalEntry[] =>
    after >= end ? [] : store.journal.readAfter(after, limits).filter((entry) => entry.seq <= end);
  let donePages = 0;
  try {
    let page = readPage(start);
    while (page.length > 0) {
      const last = page.at(-1) as JournalEntry;
      // The next page is read while this one's requests are with the server, so reading the
      // journal and applying on the server overlap. It is only read ahead: nothing about it is
      // sent or confirmed before this page is done, so order and the cursor rule are unchanged.
      const ahead = readAhead(() => readPage(last.seq));

      const toSend: JournalEntry[] = [];
      for (const entry of page) {
        const { runId, project } = entry.op;
        if (only !== undefined && project !== only) {
          if (!quarantined.has(runId)) remoteCap = Math.min(remoteCap, entry.seq - 1);
          continue;
        }
        if (quarantined.has(runId)) {
          counts.opsSkipped += 1;
          continue;
        }
        // A released run was sent up to the pass's end already.
        if (releasing.has(runId)) continue;
        // A project cursor from an earlier `only` pass already covers this entry.
        if (only === undefined && entry.seq <= (projectCursors.get(project) ?? 0)) continue;
        toSend.push(entry);
      }

      const plan = planRequests(toSend, limits.maxRequestBytes);
      for (const entry of plan.oversized) {
        ctx.quarantine(entry.op.runId, `op ${entry.op.id} is larger than a request may carry`);
      }

      const position = new Map(page.map((entry, i) => [entry.seq, i + 1]));
      for (const request of plan.requests) {
        options.signal?.throwIfAborted();
        const tail = request.at(-1) as JournalEntry;
        logger.debug('sync_request', {
          ops: request.length,
          first_seq: request[0]?.seq,
          last_seq: tail.seq,
        });
        await replayBatch(
          ctx,
          request.map((entry) => entry.op),
        );
        confirm(tail.seq);
        progress.opsDone = donePages + (position.get(tail.seq) ?? 0);
        emitProgress();
      }

      confirm(last.seq);
      donePages += page.length;
      progress.opsDone = donePages;
      emitProgress();
      page = await ahead;
    }
  } catch (error) {
    logger.warn('sync_failed', {
      remote: ledger.remote,
      code: codeOf(error),
      cursor: reached(),
      ops_applied: counts.opsApplied,
    });
    throw error;
  }

  const cursor = reached();
  if (only === undefined) ledger.dropProjectCursorsUpTo(cursor);
  const result: SyncReport = {
    remote: ledger.remote,
    only: only ?? null,
    ...counts,
    chunksSent: uploader.stats.chunksSent,
    bytesSent: uploader.stats.bytesSent,
    chunksSkipped: uploader.stats.chunksSkipped,
    quarantined: [...ledger.quarantined()].map(([runId, reason]) => ({
      runId,
      reason,
      isNew: fresh.has(runId),
    })),
    released,
    resent,
    cursor,
    pending: ledger.countAfter(cursor, only),
  };
  logger.info('sync_done', {
    remote: result.remote,
    ops_sent: result.opsSent,
    ops_applied: result.opsApplied,
    ops_duplicate: result.opsDuplicate,
    chunks_sent: result.chunksSent,
    bytes_sent: result.bytesSent,
    quarantined: result.quarantined.length,
    quarantined_new: fresh.size,
    cursor: result.cursor,
    pending: result.pending,
    ms: Math.round(performance.now() - started),
  });
  return result;
}

function codeOf(error: unknown): string | null {
  return error instanceof Error && 'code' in error ? String(error.code) : null;
}

function signalOf(options: SyncOptions): { signal?: AbortSignal } {
  return options.signal === undefined ? {} : { signal: options.signal };
}

/** Runs `read` once the current requests are on their way (after I/O), not before. */
function readAhead<T>(read: () => T): Promise<T> {
  const ahead = new Promise<T>((resolve, reject) => {
    setImmediate(() => {
      try {
        resolve(read());
      } catch (error) {
        reject(error);
      }
    });
  });
  // A pass that fails first never awaits it; its failure must not surface as unhandled.
  ahead.catch(() => {});
  return ahead;
}

/**
 * The runs a pass is asked to send again, each checked before anything is sent: a run the store
 * does not hold, or one held back from this remote, is refused with what to do instead.
 */
function runsToResend(
  store: Store,
  quarantined: ReadonlyMap<RunId, string>,
  request: readonly string[] | undefined,
): RunId[] {
  const runs = [...new Set(request ?? [])] as RunId[];
  for (const runId of runs) {
    if (quarantined.has(runId)) {
      throw new ValidationError('run_quarantined', `run ${runId} is quarantined for this remote`, {
        hint: 'Release it with --retry-run, which sends it again from its start.',
      });
    }
    if (store.journal.readRun(runId, 0 as Seq, { maxEntries: 1, maxPoints: 1 }).length === 0) {
      throw new NotFoundError('run_not_found', `this store has no entries of run ${runId}`, {
        hint: "'tidemark runs' lists the runs of this store.",
      });
    }
  }
  return runs;
}
