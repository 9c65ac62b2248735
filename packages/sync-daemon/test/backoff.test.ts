import { backoffDelay } from '@tidemark/sync-daemon';
import { describe, expect, it } from 'vitest';

const policy = { baseMs: 1_000, maxMs: 60_000 };

describe('backoffDelay', () => {
  it('doubles the wait per failure, between half and all of the planned wait', () => {
    const low = [1, 2, 3, 4].map((n) => backoffDelay(n, policy, () => 0));
    const high = [1, 2, 3, 4].map((n) => backoffDelay(n, policy, () => 0.999_999));

    expect(low).toEqual([500, 1_000, 2_000, 4_000]);
    expect(high).toEqual([1_000, 2_000, 4_000, 8_000]);
  });

  it('never grows past the cap, however many failures', () => {
    for (const failures of [7, 8, 30, 1_000, Number.MAX_SAFE_INTEGER]) {
      const delay = backoffDelay(failures, policy, () => 0.999_999);
      expect(delay).toBeLessThanOrEqual(60_000);
      expect(delay).toBeGreaterThanOrEqual(30_000);
    }
  });

  it('spreads daemons that failed together over the jitter range', () => {
    const draws = [0, 0.25, 0.5, 0.75];
    const delays = draws.map((draw) => backoffDelay(3, policy, () => draw));

    expect(new Set(delays).size).toBe(draws.length);
    expect(delays).toEqual([2_000, 2_500, 3_000, 3_500]);
  });

  it('waits at least as long as Retry-After asks, but no longer than the cap', () => {
    expect(backoffDelay(1, policy, () => 0, 7_000)).toBe(7_000);
    expect(backoffDelay(1, policy, () => 0, 10 * 60_000)).toBe(60_000);
    expect(backoffDelay(6, policy, () => 0, 1_000)).toBe(16_000);
  });

  it('answers the same delay for the same arguments', () => {
    const a = backoffDelay(5, policy, () => 0.4, 3_000);
    const b = backoffDelay(5, policy, () => 0.4, 3_000);
    expect(a).toBe(b);
  });
});
