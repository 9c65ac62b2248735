import { type Digest, digestSize } from '@tidemark/core';

/**
 * The largest body, and the most objects, one batch upload carries. Batches cut the per-request
 * work on both sides (headers, auth, a database write) to a few dozen requests per gigabyte,
 * while a pass killed mid-batch still loses only the object on the wire: the server keeps each
 * object of a batch as soon as it arrived whole.
 */
export const BATCH_BYTES = 8 * 1024 * 1024;
const BATCH_OBJECTS = 64;

/**
 * Groups objects into batches of at most BATCH_BYTES and BATCH_OBJECTS, in the given order. An
 * object larger than a batch (a big manifest) goes alone, and alone is sent one by one.
 */
export function planBatches(objects: readonly Digest[]): Digest[][] {
  const batches: Digest[][] = [];
  let batch: Digest[] = [];
  let bytes = 0;
  for (const digest of objects) {
    const size = digestSize(digest);
    if (batch.length > 0 && (bytes + size > BATCH_BYTES || batch.length === BATCH_OBJECTS)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(digest);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}
