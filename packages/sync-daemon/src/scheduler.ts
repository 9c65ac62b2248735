import { isTidemarkError, type Logger } from '@tidemark/core';
import { type BackoffPolicy, backoffDelay } from './backoff.js';
import type { DaemonFailure, DaemonPhase, PassSummary } from './daemon-state.js';
import { RemoteError } from './remote-error.js';
import type { SyncReport } from './sync-once.js';
import type { SyncWindow } from './sync-window.js';
import { realTimers, type TimerHandle, type Timers } from './timers.js';

/** Why a pass was asked for. */
export type TriggerReason =
  | 'start'
  | 'journal'
  | 'poll'
  | 'schedule'
  | 'manual'
  | 'retry'
  | 'window'
  | 'more';

export interface SchedulerOptions {
  /** One sync pass; it must stop at its next request boundary once `signal` aborts. */
  pass: (signal: AbortSignal) => Promise<SyncReport>;
  backoff: BackoffPolicy;
  /** The wait after a failure that will not heal by itself (auth, a refused request). */
  authRetryMs: number;
  window?: SyncWindow | null;
  logger: Logger;
  /** Called after every change of `status`. */
  onChange?: (status: SchedulerStatus) => void;
  /** Milliseconds since the epoch. */
  clock?: () => number;
  /** A number in [0, 1), for the jitter of the backoff. */
  random?: () => number;
  timers?: Timers;
}

export interface SchedulerStatus {
  phase: DaemonPhase;
  lastSuccessAt: number | null;
  lastError: DaemonFailure | null;
  nextAttemptAt: number | null;
  lastPass: PassSummary | null;
}

/** How long to look again when a cron window does not open within its 8-day lookahead. */
const FAR_RECHECK_MS = 24 * 60 * 60_000;

/**
 * Decides when sync passes run, one at a time (issue 5, point 2).
 *
 * Triggers (new journal entries, cron ticks, the safety poll, a signal from the user) ask for
 * a pass; one that arrives during a pass asks for another right after it. While backing off
 * after a failure only the retry timer (or a manual trigger) starts a pass, so a busy writer
 * cannot turn an outage into a retry storm. Outside the sync window nothing runs; a pass in
 * flight when the window closes stops at its next request boundary.
 *
 * Errors are logged the litestream way: one `sync_errors_started` line when a streak begins
 * (and one more if it turns from an outage into a refusal or back), one `sync_recovered` when a
 * pass succeeds again, and only debug lines in between.
 */
export class Scheduler {
  readonly #options: SchedulerOptions;
  readonly #clock: () => number;
  readonly #random: () => number;
  readonly #timers: Timers;
  readonly #logger: Logger;
  #status: SchedulerStatus = {
    phase: 'idle',
    lastSuccessAt: null,
    lastError: null,
    nextAttemptAt: null,
    lastPass: null,
  };
  #running: Promise<void> | undefined;
  #controller: AbortController | undefined;
  #abortCause: 'stop' | 'window' | undefined;
  #wanted = false;
  #holdUntil: number | undefined;
  #timer: TimerHandle | undefined;
  #closeTimer: TimerHandle | undefined;
  #stopped = false;
  #lastCursor = -1;

  constructor(options: SchedulerOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#timers = options.timers ?? realTimers;
    this.#logger = options.logger;
  }

  get status(): SchedulerStatus {
    return { ...this.#status };
  }

  /** Whether a pass is in flight. */
  get busy(): boolean {
    return this.#running !== undefined;
  }

  /** Asks for a pass; the scheduler decides whether and when it runs. */
  trigger(reason: TriggerReason): void {
    if (this.#stopped) return;
    if (reason === 'manual' || reason === 'retry') {
      this.#holdUntil = undefined;
      this.#clearTimer();
    } else if (this.#holdUntil !== undefined) {
      this.#logger.debug('trigger_held', { reason, until: this.#holdUntil });
      return;
    }

    if (this.#running !== undefined) {
      this.#wanted = true;
      return;
    }
    const window = this.#options.window;
    if (window != null && !window.contains(this.#clock())) {
      this.#waitForWindow(window);
      return;
    }
    this.#start(reason);
  }

  /**
   * Stops: no new pass starts, the one in flight is asked to stop at its next request boundary.
   * Resolves when it has, or after `graceMs`, whichever comes first; a request still in flight
   * then is simply abandoned, which the protocol makes safe (the cursor has not moved for it).
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stopped = true;
    this.#clearTimer();
    this.#clearCloseTimer();
    this.#abortCause = 'stop';
    this.#controller?.abort();

    const running = this.#running;
    if (running !== undefined) {
      let grace: TimerHandle | undefined;
      await Promise.race([
        running,
        new Promise<void>((resolve) => {
          grace = this.#timers.setTimeout(resolve, graceMs);
        }),
      ]);
      this.#timers.clearTimeout(grace);
    }
    this.#update({ phase: 'stopped', nextAttemptAt: null });
  }

  #start(reason: TriggerReason): void {
    const controller = new AbortController();
    this.#controller = controller;
    this.#abortCause = undefined;
    this.#wanted = false;
    const started = this.#clock();
    this.#update({ phase: 'syncing', nextAttemptAt: null });
    this.#logger.debug('pass_start', { reason });

    const window = this.#options.window;
    const closes = window == null ? undefined : window.nextChange(started);
    if (closes !== undefined) {
      this.#closeTimer = this.#timers.setTimeout(() => {
        this.#abortCause = 'window';
        controller.abort();
      }, closes - started);
    }

    // A pass that throws before its first await must fail like any other, not escape here.
    this.#running = new Promise<SyncReport>((resolve) =>
      resolve(this.#options.pass(controller.signal)),
    )
      .then(
        (report) => this.#succeeded(report, started),
        (error: unknown) => this.#failed(error, controller.signal.aborted),
      )
      .catch((error: unknown) => {
        this.#logger.error('scheduler_failed', { message: String(error) });
      })
      .finally(() => {
        this.#running = undefined;
        this.#controller = undefined;
        this.#clearCloseTimer();
        this.#next();
      });
  }

  #succeeded(report: SyncReport, started: number): void {
    const now = this.#clock();
    const streak = this.#status.lastError;
    if (streak !== null) {
      this.#logger.info('sync_recovered', {
        after_failures: streak.failures,
        down_ms: now - streak.since,
        last_code: streak.code,
      });
    }

    const lastPass: PassSummary = {
      at: now,
      opsApplied: report.opsApplied,
      opsDuplicate: report.opsDuplicate,
      chunksSent: report.chunksSent,
      bytesSent: report.bytesSent,
      quarantined: report.quarantined.length,
      pending: report.pending,
      ms: now - started,
    };
    // Runs held since an earlier pass are listed every time; only a new one makes a pass busy.
    const busy =
      report.opsSent > 0 || report.chunksSent > 0 || report.quarantined.some((q) => q.isNew);
    const fields = { ...snakeCase(lastPass), cursor: report.cursor };
    if (busy) this.#logger.info('pass_done', fields);
    else this.#logger.debug('pass_done', fields);

    // Entries written during the pass: go again at once, but only while passes make progress.
    const progressed = report.cursor > this.#lastCursor;
    this.#lastCursor = report.cursor;
    if (report.pending > 0 && progressed) this.#wanted = true;

    this.#holdUntil = undefined;
    this.#update({ phase: 'idle', lastSuccessAt: now, lastError: null, lastPass });
  }

  #failed(error: unknown, aborted: boolean): void {
    if (aborted && this.#abortCause !== undefined) {
      this.#logger.info('pass_interrupted', { cause: this.#abortCause });
      return;
    }

    const now = this.#clock();
    const code = isTidemarkError(error) ? error.code : 'internal';
    const message = error instanceof Error ? error.message : String(error);
    const hint = isTidemarkError(error) ? (error.hint ?? null) : null;
    const heals = isTidemarkError(error) ? error.retryable : true;
    const previous = this.#status.lastError;
    const failures = (previous?.failures ?? 0) + 1;
    const retryAfter = error instanceof RemoteError ? error.retryAfterMs : undefined;
    const wait = heals
      ? backoffDelay(failures, this.#options.backoff, this.#random, retryAfter)
      : this.#options.authRetryMs;

    const fields = {
      code,
      message,
      retryable: heals,
      next_attempt_ms: wait,
      ...(hint ? { hint } : {}),
    };
    if (previous === null) this.#logger.warn('sync_errors_started', fields);
    // A streak that turns from an outage into something a person must fix (or back) is news;
    // an outage that alternates between resets and 5xx answers is not.
    else if (previous.retryable !== heals) this.#logger.warn('sync_errors_changed', fields);
    else this.#logger.debug('sync_retry_failed', { ...fields, failures });

    this.#holdUntil = now + wait;
    this.#wanted = false;
    this.#update({
      phase: 'backing_off',
      lastError: { code, message, hint, retryable: heals, since: previous?.since ?? now, failures },
      nextAttemptAt: this.#holdUntil,
    });
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      this.trigger('retry');
    }, wait);
  }

  /** After a pass: another one if asked for, or wait for the window if it closed meanwhile. */
  #next(): void {
    if (this.#stopped) return;
    if (this.#abortCause === 'window' && this.#options.window != null) {
      this.#waitForWindow(this.#options.window);
      return;
    }
    if (this.#wanted && this.#holdUntil === undefined) {
      this.#wanted = false;
      this.#timer = this.#timers.setTimeout(() => {
        this.#timer = undefined;
        this.trigger('more');
      }, 0);
    }
  }

  #waitForWindow(window: SyncWindow): void {
    const now = this.#clock();
    const opens = window.nextChange(now) ?? now + FAR_RECHECK_MS;
    if (this.#status.phase !== 'outside_window') {
      this.#logger.info('outside_window', {
        window: window.text,
        opens_at: new Date(opens).toISOString(),
      });
    }
    this.#clearTimer();
    this.#update({ phase: 'outside_window', nextAttemptAt: opens });
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      this.trigger('window');
    }, opens - now);
  }

  #update(change: Partial<SchedulerStatus>): void {
    this.#status = { ...this.#status, ...change };
    this.#options.onChange?.(this.status);
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #clearCloseTimer(): void {
    if (this.#closeTimer === undefined) return;
    this.#timers.clearTimeout(this.#closeTimer);
    this.#closeTimer = undefined;
  }
}

function snakeCase(summary: PassSummary): Record<string, number> {
  return {
    ops_applied: summary.opsApplied,
    ops_duplicate: summary.opsDuplicate,
    chunks_sent: summary.chunksSent,
    bytes_sent: summary.bytesSent,
    quarantined: summary.quarantined,
    pending: summary.pending,
    ms: summary.ms,
  };
}
