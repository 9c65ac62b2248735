import {
  opsRequestBytesFor,
  parseRate,
  RateLimiter,
  requestTimeoutFor,
} from '@tidemark/sync-daemon';
import { describe, expect, it } from 'vitest';

/** A clock that sleeping moves forward, so waits are exact and instant. */
function virtualTime() {
  let now = 0;
  return {
    clock: () => now,
    sleep: async (ms: number) => {
      now += ms;
    },
    get now() {
      return now;
    },
  };
}

describe('RateLimiter', () => {
  it('lets through no more than the rate plus one burst over a span', async () => {
    const time = virtualTime();
    const limiter = new RateLimiter({
      bytesPerSecond: 2_000_000,
      burstBytes: 64 * 1024,
      clock: time.clock,
      sleep: time.sleep,
    });

    let sent = 0;
    for (;;) {
      await limiter.take(64 * 1024);
      if (time.now > 60_000) break;
      sent += 64 * 1024;
    }

    const allowed = 2_000_000 * 60 + 2 * 64 * 1024;
    expect(sent).toBeLessThanOrEqual(allowed);
    expect(sent).toBeGreaterThan(2_000_000 * 60 * 0.99);
  });

  it('grants a take larger than the bucket and makes the next taker pay for it', async () => {
    const time = virtualTime();
    const limiter = new RateLimiter({
      bytesPerSecond: 1_000,
      burstBytes: 100,
      clock: time.clock,
      sleep: time.sleep,
    });

    await limiter.take(5_000);
    expect(time.now).toBe(0);
    await limiter.take(1);
    expect(time.now).toBeCloseTo(5_000, 0);
  });

  it('serves takers in the order they came', async () => {
    const time = virtualTime();
    const limiter = new RateLimiter({
      bytesPerSecond: 100,
      burstBytes: 10,
      clock: time.clock,
      sleep: time.sleep,
    });
    const order: number[] = [];

    await Promise.all([1, 2, 3, 4].map((n) => limiter.take(50).then(() => order.push(n))));

    expect(order).toEqual([1, 2, 3, 4]);
  });

  it('gives up waiting when its signal aborts', async () => {
    const limiter = new RateLimiter({ bytesPerSecond: 1, burstBytes: 1 });
    await limiter.take(10_000);
    const controller = new AbortController();

    const waiting = limiter.take(1, controller.signal);
    controller.abort();

    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('parseRate', () => {
  it('reads decimal and binary units, with or without /s', () => {
    expect(parseRate('2MB/s')).toBe(2_000_000);
    expect(parseRate('2 mb/s')).toBe(2_000_000);
    expect(parseRate('500KiB/s')).toBe(512_000);
    expect(parseRate('1.5GB')).toBe(1_500_000_000);
    expect(parseRate('4096')).toBe(4096);
  });

  it('refuses what is not a rate, naming the option', () => {
    for (const text of ['', 'fast', '2XB/s', '-1MB/s', '0', '2MB/h', '500B/s']) {
      expect(() => parseRate(text, '--max-rate')).toThrow(
        expect.objectContaining({
          code: 'invalid_config',
          message: expect.stringContaining('--max-rate'),
        }),
      );
    }
  });
});

describe('request sizes and timeouts under a rate limit', () => {
  it('keeps ops requests to about 8 seconds of the budget', () => {
    expect(opsRequestBytesFor(null)).toBe(16 * 1024 * 1024);
    expect(opsRequestBytesFor(1_000_000)).toBe(8_000_000);
    expect(opsRequestBytesFor(1_000)).toBe(256 * 1024);
  });

  it('gives a slow link time to carry the largest chunk, never less than asked', () => {
    expect(requestTimeoutFor(null, 300_000)).toBe(300_000);
    expect(requestTimeoutFor(100_000_000, 300_000)).toBe(300_000);
    expect(requestTimeoutFor(10_000, 300_000)).toBeGreaterThan((8 * 1024 * 1024 * 1000) / 10_000);
  });
});
