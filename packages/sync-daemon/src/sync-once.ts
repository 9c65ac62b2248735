import { performance } from 'node:perf_hooks';
import {
  type JournalEntry,
  type Logger,
  type RunId,
  type Seq,
  type Store,
  silentLogger,
  ValidationError,
} from '@tidemark/core';
import { ChunkUploader } from './chunk-uploader.js';
import type { RemoteClient } from './remote-client.js';
import { normalizeRemoteUrl } from './remote-url.js';
import { type ReplayContext, replayBatch } from './replay-batch.js';
import { MAX_OPS_PER_REQUEST, planRequests } from './request-batches.js';
import { SyncLedger } from './sync-ledger.js';

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
  /** HTTP calls to `sendOps`; `0` when there was nothing new. */
  requests: number;
  /** Runs quarantined by this pass, and runs whose entries it skipped for an older quarantine. */
  quarantined: Array<{ runId: RunId; reason: string }>;
  /** The cursor after the pass: the remote's, or with `only` the project's. */
  cursor: Seq;
  /** Entries after the cursor that a pass of the same kind still has to look at. */
  pending: number;
}

const DEFAULT_LIMITS: SyncLimits = {
  maxEntries: 2_000,
  maxPoints: 50_000,
  maxRequestBytes: 16 * 1024 * 1024,
};
const KNOWN_OPTIONS = new Set([
  'remote',
  'only',
  'limits',
  'uploadConcurrency',
  'logger',
  'onProgress',
  'clock',
  'signal',
]);

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
  const reported = new Map<RunId, string>();
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
      ledger.quarantine(runId, reason);
      quarantined.set(runId, reason);
      reported.set(runId, reason);
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
  // Nothing to send still costs one small request: it proves the server and the token, so a
  // revoked token or a dead server is reported instead of passing as a quiet success.
  if (start >= end) {
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
        const held = quarantined.get(runId);
        if (held !== undefined) {
          counts.opsSkipped += 1;
          reported.set(runId, held);
          continue;
        }
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
      code: error instanceof Error && 'code' in error ? String(error.code) : null,
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
    quarantined: [...reported].map(([runId, reason]) => ({ runId, reason })),
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
    cursor: result.cursor,
    pending: result.pending,
    ms: Math.round(performance.now() - started),
  });
  return result;
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

function validateOptions(options: SyncOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw invalidOption(
      'syncOnce takes an options object',
      'Call syncOnce(store, remote, { only }).',
    );
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw invalidOption(
        `syncOnce has no option '${key}'`,
        `Known options: ${[...KNOWN_OPTIONS].join(', ')}.`,
      );
    }
  }

  if (
    options.only !== undefined &&
    (typeof options.only !== 'string' || options.only.length === 0)
  ) {
    throw invalidOption(
      'only must be a project name',
      "Pass only: 'team/project', or leave it out.",
    );
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw invalidOption('onProgress must be a function', 'Pass (progress) => { ... }.');
  }

  const concurrency = options.uploadConcurrency;
  if (
    concurrency !== undefined &&
    (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
  ) {
    throw invalidOption(
      'uploadConcurrency must be a whole number from 1 to 64',
      'Leave it out for 4.',
    );
  }

  for (const [name, value] of Object.entries(options.limits ?? {})) {
    if (!(name in DEFAULT_LIMITS)) {
      throw invalidOption(
        `limits has no field '${name}'`,
        'Known limits: maxEntries, maxPoints, maxRequestBytes.',
      );
    }
    if (!Number.isInteger(value) || (value as number) < 1) {
      throw invalidOption(
        `limits.${name} must be a whole number of at least 1`,
        `Leave limits.${name} out for the default.`,
      );
    }
  }
  if ((options.limits?.maxEntries ?? 0) > MAX_OPS_PER_REQUEST) {
    throw invalidOption(
      `limits.maxEntries may be at most ${MAX_OPS_PER_REQUEST}`,
      'The protocol caps a request at 10,000 ops.',
    );
  }
}

function invalidOption(message: string, hint: string): ValidationError {
  return new ValidationError('invalid_option', message, { hint });
}
