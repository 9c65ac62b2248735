import { setTimeout as delay } from 'node:timers/promises';
import { CHUNK_MAX } from '@tidemark/core';
import { invalidConfig } from './daemon-error.js';

export interface RateLimiterOptions {
  bytesPerSecond: number;
  /**
   * Credit kept through a quiet spell (default a tenth of a second of the rate, at least
   * 64 KiB): enough that a sender late by a few scheduler ticks does not fall below the rate.
   */
  burstBytes?: number;
  /** Milliseconds, monotonic; injectable for tests. */
  clock?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** The slice a paced body is cut into: small against a second at any sane rate. */
export const PACE_SLICE = 64 * 1024;

/** Slower than this, one chunk would take most of an hour. */
export const MIN_RATE = 1_000;

const MAX_OPS_REQUEST_BYTES = 16 * 1024 * 1024;

/**
 * The largest ops request under a rate limit: about 8 seconds of the budget (at least 256 KiB),
 * so requests stay short on a slow link and the limit also holds request by request.
 */
export function opsRequestBytesFor(bytesPerSecond: number | null): number {
  if (bytesPerSecond === null) return MAX_OPS_REQUEST_BYTES;
  return Math.max(256 * 1024, Math.min(MAX_OPS_REQUEST_BYTES, Math.floor(bytesPerSecond * 8)));
}

/**
 * The overall timeout of one request under a rate limit: long enough for the largest body the
 * limit lets through (a chunk of `CHUNK_MAX`, twice over) plus a minute, never shorter than
 * `requestMs`. A fixed timeout would fail every large chunk on a slow link, forever.
 */
export function requestTimeoutFor(bytesPerSecond: number | null, requestMs: number): number {
  if (bytesPerSecond === null) return requestMs;
  return Math.max(requestMs, Math.ceil(((2 * CHUNK_MAX) / bytesPerSecond) * 1000) + 60_000);
}

/**
 * A token bucket shared by every upload and ops body of a daemon (issue 5: `--max-rate`).
 * Takers wait in arrival order. A take larger than the bucket is granted once the bucket is
 * no longer in debt and leaves it in debt, so over any span the bytes let through stay within
 * `rate × span + burst + one take`; bodies are fed through in `PACE_SLICE` pieces to keep the
 * last term small.
 */
export class RateLimiter {
  readonly bytesPerSecond: number;
  readonly #burst: number;
  readonly #clock: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  #tokens: number;
  #at: number;
  #tail: Promise<void> = Promise.resolve();

  constructor(options: RateLimiterOptions) {
    const { bytesPerSecond } = options;
    if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) {
      throw invalidConfig(
        'maxRate',
        'must be a positive number of bytes per second',
        "Pass '2MB/s'.",
      );
    }
    this.bytesPerSecond = bytesPerSecond;
    this.#burst = options.burstBytes ?? Math.max(PACE_SLICE, bytesPerSecond / 10);
    this.#clock = options.clock ?? (() => performance.now());
    this.#sleep = options.sleep ?? ((ms, signal) => delay(ms, undefined, { signal }));
    // An empty bucket at start: the first second carries the rate, not the rate plus a burst.
    this.#tokens = 0;
    this.#at = this.#clock();
  }

  /** Resolves when `bytes` may be sent. A signal abort rejects and takes nothing. */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    const turn = this.#tail.then(() => this.#wait(bytes, signal));
    this.#tail = turn.catch(() => {});
    return turn;
  }

  async #wait(bytes: number, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    this.#refill();
    if (this.#tokens < 0) {
      await this.#sleep((-this.#tokens / this.bytesPerSecond) * 1000, signal);
      this.#refill();
    }
    this.#tokens -= bytes;
  }

  #refill(): void {
    const now = this.#clock();
    const earned = ((now - this.#at) / 1000) * this.bytesPerSecond;
    this.#at = now;
    this.#tokens = Math.min(this.#burst, this.#tokens + earned);
  }
}

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/**
 * Reads a rate such as `2MB/s`, `500KiB/s` or `1.5 mb/s` into bytes per second. Decimal units
 * (KB, MB, GB) are powers of 1000 and binary ones (KiB, MiB, GiB) powers of 1024; a bare number
 * is bytes per second. `source` names the option in the error.
 */
export function parseRate(text: string, source = '--max-rate'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*(?:\/\s*s)?\s*$/i.exec(text);
  const unit = UNITS[(match?.[2] ?? 'b').toLowerCase()];
  const value = Number(match?.[1]) * (unit ?? Number.NaN);
  if (match === null || !Number.isFinite(value) || value < 1) {
    throw invalidConfig(
      source,
      `'${text}' is not a rate`,
      "Write bytes per second with a unit: '2MB/s', '500KiB/s', '1GB/s'.",
    );
  }
  if (value < MIN_RATE) {
    throw invalidConfig(source, `'${text}' is below 1KB/s`, 'Pass at least 1KB/s.');
  }
  return Math.floor(value);
}
