import { type FSWatcher, watch } from 'node:fs';
import type { Logger } from '@tidemark/core';
import { realTimers, type TimerHandle, type Timers } from './timers.js';

export type WakeReason = 'journal' | 'poll';

export interface WakeWatcherOptions {
  /** The store folder; its `store.db*` files change when anything is written. */
  dir: string;
  /** Wait after the first change of a burst before looking (issue 5: soon, not per write). */
  debounceMs: number;
  /** The slow safety check, for file systems where change events do not arrive. */
  pollMs: number;
  /** Whether the journal holds entries no pass has looked at; must be cheap. */
  hasNews: () => boolean;
  onWake: (reason: WakeReason) => void;
  logger: Logger;
  timers?: Timers;
}

/**
 * Wakes the daemon when new journal entries land, without polling fast: it watches the store
 * folder for changes to the database files, waits `debounceMs` after the first one so that a
 * training loop writing all the time causes one wake-up per interval rather than one per
 * write, then asks `hasNews`. Our own cursor writes change the files too; `hasNews` answers
 * false for those. A slow poll asks `hasNews` as well, in case change events never come
 * (network file systems, containers with odd mounts).
 */
export class WakeWatcher {
  readonly #options: WakeWatcherOptions;
  readonly #timers: Timers;
  #watcher: FSWatcher | undefined;
  #debounce: TimerHandle | undefined;
  #poll: TimerHandle | undefined;
  #closed = false;

  constructor(options: WakeWatcherOptions) {
    this.#options = options;
    this.#timers = options.timers ?? realTimers;
  }

  start(): void {
    try {
      this.#watcher = watch(this.#options.dir, { persistent: true }, (_event, name) => {
        if (name === null || String(name).startsWith('store.db')) this.#changed();
      });
      this.#watcher.on('error', (error) => {
        this.#options.logger.warn('watch_failed', { message: error.message });
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch (error) {
      this.#options.logger.warn('watch_unavailable', {
        dir: this.#options.dir,
        message: (error as Error).message,
        poll_ms: this.#options.pollMs,
      });
    }
    this.#schedulePoll();
  }

  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#debounce !== undefined) this.#timers.clearTimeout(this.#debounce);
    if (this.#poll !== undefined) this.#timers.clearTimeout(this.#poll);
  }

  #changed(): void {
    if (this.#closed || this.#debounce !== undefined) return;
    this.#debounce = this.#timers.setTimeout(() => {
      this.#debounce = undefined;
      this.#look('journal');
    }, this.#options.debounceMs);
  }

  #schedulePoll(): void {
    if (this.#closed) return;
    this.#poll = this.#timers.setTimeout(() => {
      this.#look('poll');
      this.#schedulePoll();
    }, this.#options.pollMs);
  }

  #look(reason: WakeReason): void {
    if (this.#closed) return;
    let news: boolean;
    try {
      news = this.#options.hasNews();
    } catch (error) {
      this.#options.logger.warn('journal_check_failed', { message: (error as Error).message });
      return;
    }
    if (news) this.#options.onWake(reason);
  }
}
