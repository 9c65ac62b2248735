import type { IncomingMessage } from 'node:http';
import { type Digest, digestSize, type Hasher, isDigest } from '@tidemark/core';
import { ChunkPieces } from './chunk-pieces.js';
import { badRequest, RequestError } from './errors.js';
import type { ServerLimits } from './limits.js';

/** What became of one chunk of a batch whose bytes arrived whole. */
export type BatchOutcome = 'intact' | 'mismatch';

/**
 * The `digests` query parameter of `POST /api/v1/chunks/batch`: comma-separated, each at most
 * `limits.maxChunkBytes`, together at most `limits.maxBatchBytes` and `maxChunksPerBatch`.
 */
export function batchDigests(url: URL, limits: ServerLimits): Digest[] {
  const text = url.searchParams.get('digests');
  if (text === null || text.length === 0) {
    throw badRequest(
      'missing_digests',
      'the query parameter digests is required',
      'List the chunks the body carries, in order: ?digests=<digest>,<digest>.',
    );
  }
  const digests = text.split(',');
  if (digests.length > limits.maxChunksPerBatch) {
    throw badRequest(
      'too_many_digests',
      `a batch carries at most ${limits.maxChunksPerBatch} chunks`,
      'Split the batch.',
    );
  }
  const bad = digests.findIndex((digest) => !isDigest(digest));
  if (bad !== -1) throw badRequest('invalid_digest', `digests[${bad}] is not a digest`);

  let total = 0;
  for (const digest of digests as Digest[]) {
    if (digestSize(digest) > limits.maxChunkBytes) {
      throw new RequestError(413, 'body_too_large', `chunk ${digest} is larger than allowed`, {
        hint: `Chunks are at most ${limits.maxChunkBytes} bytes.`,
      });
    }
    total += digestSize(digest);
  }
  if (total > limits.maxBatchBytes) {
    throw new RequestError(413, 'body_too_large', `the batch is larger than allowed`, {
      hint: `A batch carries at most ${limits.maxBatchBytes} bytes; split it.`,
    });
  }
  return digests as Digest[];
}

/**
 * Chunks of one batch being stored at once while the next ones arrive. Enough to keep every
 * thread of the pool writing while this one receives and hashes; their pieces take at most
 * about twice their bytes (chunk-pieces.ts), and a batch is at most `maxBatchBytes`.
 */
const STORING_AT_ONCE = 8;

/**
 * Reads a body made of the chunks `digests` name, back to back, and hands each to `take` as
 * soon as its last byte arrived, re-hashed: whatever arrived whole is kept even when the rest
 * of the body never comes, so an interrupted batch costs at most the chunk it was cut in.
 * A chunk is hashed piece by piece as the pieces arrive and handed over as those pieces, so its
 * bytes are never copied into one buffer. Up to STORING_AT_ONCE chunks are being stored while
 * the next arrives; all have settled when this returns or throws. A body whose declared length
 * is not the chunks' total, or that ends early or runs on past the last chunk, is refused with
 * `digest_mismatch`.
 */
export async function readChunkBatch(
  req: IncomingMessage,
  digests: readonly Digest[],
  hasher: Hasher,
  handlers: {
    take: (digest: Digest, pieces: readonly Buffer[], outcome: BatchOutcome) => Promise<void>;
    /** The chunk whose bytes had begun to arrive when the body broke off. */
    cut: (digest: Digest) => void;
  },
): Promise<void> {
  const total = digests.reduce((sum, digest) => sum + digestSize(digest), 0);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) !== total) {
    throw bodyMismatch(`is ${declared} bytes, the chunks it names ${total}`);
  }

  const storing = new Set<Promise<void>>();
  let index = 0;
  let pieces = new ChunkPieces();
  let hashing = hasher.stream();

  const handOver = async (): Promise<void> => {
    for (let digest = digests[index]; digest !== undefined; digest = digests[index]) {
      if (pieces.length < digestSize(digest)) return;
      const outcome = hashing.digest() === digest ? 'intact' : 'mismatch';
      const work: Promise<void> = handlers.take(digest, pieces.finish(), outcome).finally(() => {
        storing.delete(work);
      });
      storing.add(work);
      // A failure surfaces in the race below or in the final wait; this handler only keeps it
      // from counting as unhandled while the next chunk is being received.
      work.catch(() => undefined);
      index += 1;
      pieces = new ChunkPieces();
      hashing = hasher.stream();
      if (storing.size >= STORING_AT_ONCE) await Promise.race(storing);
    }
  };

  try {
    await handOver();
    for await (const piece of req as AsyncIterable<Buffer>) {
      for (let offset = 0; offset < piece.length; ) {
        const digest = digests[index];
        if (digest === undefined) throw bodyMismatch('runs on past the last chunk it names');
        const part = Math.min(digestSize(digest) - pieces.length, piece.length - offset);
        const bytes = part === piece.length ? piece : piece.subarray(offset, offset + part);
        hashing.update(bytes);
        pieces.add(bytes);
        offset += part;
        await handOver();
      }
    }
    if (index < digests.length) throw bodyMismatch('ends before the last chunk it names');
    await Promise.all(storing);
  } catch (error) {
    const digest = digests[index];
    if (digest !== undefined && pieces.length > 0) handlers.cut(digest);
    await Promise.allSettled(storing);
    throw error;
  }
}

function bodyMismatch(how: string): RequestError {
  return new RequestError(400, 'digest_mismatch', `the batch body ${how}`, {
    hint: 'Send the chunks named in ?digests= back to back, each whole, nothing else.',
  });
}
