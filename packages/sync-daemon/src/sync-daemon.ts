import { type Logger, Store } from '@tidemark/core';
import { type ScheduledTask, schedule as scheduleCron } from 'node-cron';
import type { DaemonConfig } from './daemon-config.js';
import { type DaemonState, writeDaemonState } from './daemon-state.js';
import { type Fault, FaultyRemote } from './fault-points.js';
import { HttpRemoteClient } from './http-remote-client.js';
import { opsRequestBytesFor, RateLimiter, requestTimeoutFor } from './rate-limiter.js';
import type { RemoteClient } from './remote-client.js';
import { Scheduler, type SchedulerStatus } from './scheduler.js';
import { StoreLock } from './store-lock.js';
import { type SyncProgress, syncOnce } from './sync-once.js';
import type { Timers } from './timers.js';
import { WakeWatcher } from './wake-watcher.js';

export interface SyncDaemonOptions {
  config: DaemonConfig;
  /** Where the daemon's structured lines go; the caller decides the file or stream. */
  logger: Logger;
  /** A remote to use instead of HTTP to `config.remote` (tests use a `FakeRemote`). */
  remote?: RemoteClient;
  /** Test-only: die at these points of a pass (see `parseFaults`). */
  faults?: Fault[];
  /** What a fault does; the default sends SIGKILL to this process. */
  onFault?: (fault: Fault) => void;
  clock?: () => number;
  random?: () => number;
  timers?: Timers;
  /** How often a long pass logs `sync_progress` (default 10 s). */
  progressEveryMs?: number;
}

/** syncOnce's own lines are per pass; the daemon reports passes and error streaks itself. */
const PER_PASS_EVENTS = new Set(['sync_start', 'sync_done', 'sync_failed']);

/**
 * The sync daemon of one store folder: the lock that makes it the only one, the scheduler that
 * runs passes, the wake-ups that feed it (file watching, cron ticks), and the state file that
 * `tidemark daemon status` reads. `start` resolves once it holds the lock and has asked for a
 * first pass; `stop` undoes everything in reverse.
 *
 * @example
 * const daemon = await SyncDaemon.start({ config: loadDaemonConfig({ storeDir }), logger });
 * process.once('SIGTERM', () => void daemon.stop());
 */
export class SyncDaemon {
  readonly config: DaemonConfig;
  readonly #logger: Logger;
  readonly #lock: StoreLock;
  readonly #store: Store;
  readonly #scheduler: Scheduler;
  readonly #clock: () => number;
  readonly #startedAt: number;
  #watcher: WakeWatcher | undefined;
  #cron: ScheduledTask | undefined;
  #covered = 0;
  #stopping: Promise<void> | undefined;

  private constructor(options: SyncDaemonOptions, lock: StoreLock, store: Store) {
    this.config = options.config;
    this.#logger = options.logger;
    this.#lock = lock;
    this.#store = store;
    this.#clock = options.clock ?? Date.now;
    this.#startedAt = this.#clock();

    const remote = withFaults(options, buildRemote(options));
    const logger = options.logger;
    const quiet: Logger = {
      debug: (event, fields) => logger.debug(event, fields),
      info: (event, fields) =>
        PER_PASS_EVENTS.has(event) ? logger.debug(event, fields) : logger.info(event, fields),
      warn: (event, fields) =>
        PER_PASS_EVENTS.has(event) ? logger.debug(event, fields) : logger.warn(event, fields),
      error: (event, fields) => logger.error(event, fields),
    };

    this.#scheduler = new Scheduler({
      pass: async (signal) => {
        this.#covered = store.journal.lastSeq();
        return syncOnce(store, remote, {
          ...(this.config.only === null ? {} : { only: this.config.only }),
          limits: {
            maxEntries: this.config.batchOps,
            maxRequestBytes: opsRequestBytesFor(this.config.maxRate),
          },
          uploadConcurrency: this.config.uploadConcurrency,
          logger: quiet,
          signal,
          onProgress: progressLogger(logger, options.progressEveryMs ?? 10_000),
        });
      },
      backoff: this.config.backoff,
      authRetryMs: this.config.authRetryMs,
      window: this.config.window,
      logger,
      onChange: (status) => this.#persist(status),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.random === undefined ? {} : { random: options.random }),
      ...(options.timers === undefined ? {} : { timers: options.timers }),
    });
  }

  /** Takes the store's daemon lock, opens the store and starts syncing. */
  static async start(options: SyncDaemonOptions): Promise<SyncDaemon> {
    const { config, logger } = options;
    const store = Store.open({ dir: config.storeDir, create: false, logger });
    let lock: StoreLock;
    try {
      lock = StoreLock.acquire(store.dir);
    } catch (error) {
      await store.close();
      throw error;
    }

    const daemon = new SyncDaemon(options, lock, store);
    daemon.#begin(options);
    return daemon;
  }

  get status(): SchedulerStatus {
    return this.#scheduler.status;
  }

  /** Runs a pass now, ending any backoff wait (SIGUSR1). */
  syncNow(): void {
    this.#logger.info('sync_requested');
    this.#scheduler.trigger('manual');
  }

  /** Stops syncing, waits up to `graceMs` for the pass in flight, releases the lock. */
  stop(graceMs = 10_000): Promise<void> {
    this.#stopping ??= this.#shutdown(graceMs);
    return this.#stopping;
  }

  #begin(options: SyncDaemonOptions): void {
    const { config } = this;
    this.#logger.info('daemon_started', {
      pid: process.pid,
      store: config.storeDir,
      remote: config.remote,
      only: config.only,
      schedule: config.schedule,
      window: config.window?.text ?? null,
      watch: config.watch,
      max_rate: config.maxRate,
    });

    if (config.watch) {
      this.#watcher = new WakeWatcher({
        dir: this.#store.dir,
        debounceMs: config.debounceMs,
        pollMs: config.pollMs,
        hasNews: () => this.#store.journal.lastSeq() > this.#covered,
        onWake: (reason) => this.#scheduler.trigger(reason),
        logger: this.#logger,
        ...(options.timers === undefined ? {} : { timers: options.timers }),
      });
      this.#watcher.start();
    }
    if (config.schedule !== null) {
      this.#cron = scheduleCron(config.schedule, () => this.#scheduler.trigger('schedule'), {
        name: 'tidemark-sync',
        logger: cronLogger(this.#logger),
      });
    }
    this.#scheduler.trigger('start');
  }

  async #shutdown(graceMs: number): Promise<void> {
    this.#logger.info('daemon_stopping', { busy: this.#scheduler.busy });
    this.#watcher?.close();
    await this.#cron?.destroy();
    await this.#scheduler.stop(graceMs);
    this.config.window?.dispose();
    try {
      await this.#store.close();
    } finally {
      this.#lock.release();
      this.#logger.info('daemon_stopped');
    }
  }

  #persist(status: SchedulerStatus): void {
    const state: DaemonState = {
      version: 1,
      pid: process.pid,
      remote: this.config.remote,
      only: this.config.only,
      startedAt: this.#startedAt,
      ...status,
      updatedAt: this.#clock(),
    };
    try {
      writeDaemonState(this.#store.dir, state);
    } catch (error) {
      this.#logger.warn('state_write_failed', { message: (error as Error).message });
    }
  }
}

function buildRemote(options: SyncDaemonOptions): RemoteClient {
  if (options.remote !== undefined) return options.remote;
  const { config } = options;
  return new HttpRemoteClient({
    url: config.remote,
    token: config.token,
    timeouts: {
      ...config.timeouts,
      requestMs: requestTimeoutFor(config.maxRate, config.timeouts.requestMs),
    },
    logger: options.logger,
    ...(config.maxRate === null
      ? {}
      : { rateLimiter: new RateLimiter({ bytesPerSecond: config.maxRate }) }),
  });
}

function withFaults(options: SyncDaemonOptions, remote: RemoteClient): RemoteClient {
  const faults = options.faults ?? [];
  if (faults.length === 0) return remote;
  const fire =
    options.onFault ??
    ((fault: Fault) => {
      options.logger.warn('fault_injected', { point: fault.point, nth: fault.nth });
      process.kill(process.pid, 'SIGKILL');
    });
  return new FaultyRemote(remote, faults, fire);
}

function progressLogger(logger: Logger, everyMs: number): (progress: SyncProgress) => void {
  const started = performance.now();
  let last = started;
  return (progress) => {
    const now = performance.now();
    if (now - last < everyMs) return;
    last = now;
    const seconds = (now - started) / 1000;
    logger.info('sync_progress', {
      ops_done: progress.opsDone,
      ops_total: progress.opsTotal,
      bytes_done: progress.bytesDone,
      bytes_total: progress.bytesTotal,
      ops_per_s: Math.round(progress.opsDone / seconds),
      bytes_per_s: Math.round(progress.bytesDone / seconds),
    });
  };
}

/** node-cron reports missed ticks and the like as text; route it into our lines. */
function cronLogger(logger: Logger) {
  const text = (message: string | Error): string =>
    message instanceof Error ? message.message : message;
  return {
    info: (message: string) => logger.debug('cron', { message }),
    warn: (message: string) => logger.warn('cron', { message }),
    error: (message: string | Error) => logger.error('cron', { message: text(message) }),
    debug: (message: string | Error) => logger.debug('cron', { message: text(message) }),
  };
}
