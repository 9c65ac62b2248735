export interface BackoffPolicy {
  /** The wait after the first failure, before jitter (default 1 s). */
  baseMs: number;
  /** No wait grows past this, Retry-After included (default 5 min). */
  maxMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({
  baseMs: 1_000,
  maxMs: 5 * 60_000,
});

/**
 * How long to wait before the next pass after `failures` failed passes in a row: the base
 * doubled per failure, capped, with "equal jitter" (half of it fixed, half drawn from
 * `random`) so that many daemons cut off by one outage do not all come back at once, yet none
 * retries sooner than half the planned wait. A server's Retry-After is honoured as a lower
 * bound, within the same cap, so a bad header cannot park the daemon for a day.
 *
 * Pure: the same arguments always answer the same delay.
 *
 * @example
 * backoffDelay(3, { baseMs: 1000, maxMs: 60_000 }, () => 0.5); // 3000: 4000 halved, plus 1000
 */
export function backoffDelay(
  failures: number,
  policy: BackoffPolicy,
  random: () => number,
  retryAfterMs?: number,
): number {
  const exponent = Math.min(Math.max(failures, 1) - 1, 40);
  const planned = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  const draw = Math.min(Math.max(random(), 0), 1);
  const jittered = planned / 2 + (planned / 2) * draw;

  if (retryAfterMs === undefined || !Number.isFinite(retryAfterMs)) return Math.round(jittered);
  return Math.round(Math.max(jittered, Math.min(retryAfterMs, policy.maxMs)));
}
