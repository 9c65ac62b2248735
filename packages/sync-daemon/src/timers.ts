/** A pending timer; only the `Timers` that made it knows what it is. */
export type TimerHandle = unknown;

/** Timer functions the scheduler and the watcher use, injectable so tests drive time by hand. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, Math.min(ms, 2 ** 31 - 1))),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
