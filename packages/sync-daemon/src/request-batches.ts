import type { JournalEntry } from '@tidemark/core';

/** The protocol's cap on one ops request (docs/protocol.md, Limits), less room for the envelope. */
export const MAX_OPS_REQUEST_BYTES = 64 * 1024 * 1024 - 64 * 1024;
export const MAX_OPS_PER_REQUEST = 10_000;

export interface RequestPlan {
  /** Consecutive entries per request, in journal order. */
  requests: JournalEntry[][];
  /** Entries whose op alone exceeds what any request may carry. */
  oversized: JournalEntry[];
}

/**
 * Cuts entries into requests of at most `maxBytes` of JSON (an op larger than that travels
 * alone) and at most 10,000 ops, keeping journal order so each request's last entry is the
 * place the cursor may move to once it is answered.
 */
export function planRequests(entries: readonly JournalEntry[], maxBytes: number): RequestPlan {
  const requests: JournalEntry[][] = [];
  const oversized: JournalEntry[] = [];
  let current: JournalEntry[] = [];
  let bytes = 0;

  for (const entry of entries) {
    const size = Buffer.byteLength(JSON.stringify(entry.op), 'utf8') + 1;
    if (size > MAX_OPS_REQUEST_BYTES) {
      oversized.push(entry);
      continue;
    }
    if (current.length > 0 && (bytes + size > maxBytes || current.length >= MAX_OPS_PER_REQUEST)) {
      requests.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }

  if (current.length > 0) requests.push(current);
  return { requests, oversized };
}
