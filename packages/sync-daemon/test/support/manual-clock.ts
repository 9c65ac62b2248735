import type { Timers } from '@tidemark/sync-daemon';

interface Pending {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * A clock and timers that move only when the test says so. `advance` fires due timers in
 * time order and lets the promises they start settle before moving on.
 */
export class ManualClock implements Timers {
  now: number;
  #pending: Pending[] = [];
  #next = 1;

  constructor(start = Date.UTC(2030, 0, 1, 12, 0, 0)) {
    this.now = start;
  }

  readonly clock = (): number => this.now;

  setTimeout(fn: () => void, ms: number): number {
    const id = this.#next++;
    this.#pending.push({ id, at: this.now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#pending = this.#pending.filter((timer) => timer.id !== handle);
  }

  /** When the earliest pending timer is due, or undefined if none is pending. */
  nextAt(): number | undefined {
    return this.#pending.reduce<number | undefined>(
      (min, timer) => (min === undefined || timer.at < min ? timer.at : min),
      undefined,
    );
  }

  async advance(ms: number): Promise<void> {
    const target = this.now + ms;
    await settle();
    for (;;) {
      const due = this.#pending
        .filter((timer) => timer.at <= target)
        .sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (due === undefined) break;
      this.#pending = this.#pending.filter((timer) => timer !== due);
      this.now = due.at;
      due.fn();
      await settle();
    }
    this.now = target;
  }
}

/** Lets every promise chain that is ready run to its end. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}
