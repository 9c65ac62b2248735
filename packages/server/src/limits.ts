import { ValidationError } from '@tidemark/core';

/**
 * The sizes and counts a server accepts from one request (DESIGN invariant 9). The defaults are
 * the ones `docs/protocol.md` promises; tests lower them to reach the edges cheaply.
 */
export interface ServerLimits {
  /** Largest `POST /api/v1/ops` body, in bytes. */
  maxOpsBodyBytes: number;
  /** Largest chunk a `PUT /api/v1/chunks/<digest>` may carry, in bytes. */
  maxChunkBytes: number;
  /** Largest `POST /api/v1/chunks/batch` body, in bytes. */
  maxBatchBytes: number;
  /** The most chunks one batch carries. */
  maxChunksPerBatch: number;
  /** Largest body of the other JSON requests (`chunks/missing`), in bytes. */
  maxJsonBodyBytes: number;
  maxOpsPerRequest: number;
  maxDigestsPerRequest: number;
  /** The most runs one `GET /api/v1/runs` answers with. */
  maxRunsPerPage: number;
  /**
   * Longest a presence question (`chunks/missing`, `chunks/commit`) waits for the project's
   * uploads under way to settle, in milliseconds (uploads-in-progress.ts).
   */
  presenceWaitMs: number;
}

export const DEFAULT_LIMITS: Readonly<ServerLimits> = Object.freeze({
  maxOpsBodyBytes: 64 * 1024 * 1024,
  maxChunkBytes: 8 * 1024 * 1024,
  maxBatchBytes: 64 * 1024 * 1024,
  maxChunksPerBatch: 64,
  maxJsonBodyBytes: 4 * 1024 * 1024,
  maxOpsPerRequest: 10_000,
  maxDigestsPerRequest: 10_000,
  maxRunsPerPage: 1000,
  presenceWaitMs: 5000,
});

/** Merges caller limits over the defaults, refusing values that are not positive integers. */
export function resolveLimits(limits: Partial<ServerLimits> = {}): ServerLimits {
  const out: ServerLimits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(limits)) {
    if (!(key in DEFAULT_LIMITS)) {
      throw new ValidationError('invalid_option', `createServer: unknown limit '${key}'`, {
        hint: `Known limits: ${Object.keys(DEFAULT_LIMITS).join(', ')}.`,
      });
    }
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new ValidationError(
        'invalid_option',
        `createServer: limits.${key} must be a positive integer`,
        {
          hint: `Got ${String(value)}.`,
        },
      );
    }
    out[key as keyof ServerLimits] = value;
  }
  return out;
}
