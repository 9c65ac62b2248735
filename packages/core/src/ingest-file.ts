import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { BlockReader } from './block-reader.js';
import { type ChunkGuide, loadGuide, saveGuide } from './chunk-guide.js';
import { CHUNK_MAX, nextCut } from './chunker.js';
import { ArtifactError } from './errors.js';
import { digestSize, getHasher } from './hash.js';
import type { Digest } from './ids.js';
import { ObjectWriter } from './object-writer.js';

export interface IngestTask {
  source: string;
  objectsDir: string;
  /** The snapshot's size; defaults to the file's size when opened. */
  size?: number;
  /** Where this part starts: 0, or a cut point found by `planSplit`. */
  from?: number;
  /** Stop once a cut falls exactly here; a part whose cuts pass it goes on to the end. */
  until?: number;
  /** The file's first chunk, naming the guide to follow from `from`. */
  guideKey?: Digest;
  /** Store this part's chunk list as a guide for later versions (default true). */
  saveHint?: boolean;
}

export interface IngestResult {
  size: number;
  /** Where this part ended: `until` when a cut fell on it, else the end of the snapshot. */
  end: number;
  chunks: Digest[];
  /** Bytes written as new objects; chunks already present cost nothing. */
  newBytes: number;
  /** Bytes taken at hashing speed from the chunk list of an earlier version of the file. */
  guidedBytes: number;
}

/** Object writes kept in flight while the next chunks are hashed. */
const WRITES_IN_FLIGHT = 3;

/**
 * Snapshots one file into the objects folder: reads it once up to the size it had when opened,
 * cuts it into content-defined chunks, hashes each and writes those the store lacks. Every
 * chunk is hashed from the very bytes that are written, so a file appended or rewritten while
 * it is read can never yield an object whose digest does not match its content (invariant 4).
 * Resolves once every chunk is durable; runs in a snapshot worker, off the caller's thread.
 */
export async function ingestFile(task: IngestTask): Promise<IngestResult> {
  const hasher = await getHasher();
  const handle = await openSource(task.source);
  const writer = new ObjectWriter(task.objectsDir, { maxInFlight: WRITES_IN_FLIGHT });
  try {
    const total = task.size ?? (await handle.stat()).size;
    const from = task.from ?? 0;
    const reader = new BlockReader(handle, task.source, total, from);
    const chunks: Digest[] = [];
    let newBytes = 0;
    let guidedBytes = 0;
    let position = from;
    let guide: ChunkGuide | undefined;
    if (task.guideKey !== undefined) {
      guide = await loadGuide(task.objectsDir, task.guideKey);
      guide?.seek(from);
    }

    for (;;) {
      const available = reader.available;
      if (available === 0 && reader.atEnd) break;
      if (position === task.until) break;
      const { buffer, start } = reader;

      let digest: Digest | undefined;
      let length = 0;
      const expected = guide?.expect(available, reader.atEnd);
      if (expected === undefined && guide?.wantsMore(available) === true && !reader.atEnd) {
        await reader.advance();
        continue;
      }
      if (expected !== undefined) {
        length = digestSize(expected);
        if (hasher.digest(buffer.subarray(start, start + length)) === expected) {
          digest = expected;
          guidedBytes += length;
        }
      }
      if (digest === undefined) {
        // Reading on only when no cut is found keeps the bytes carried into the next block few.
        length = nextCut(buffer, start, reader.end, reader.atEnd);
        if (length < 0) {
          await reader.advance();
          continue;
        }
        digest = hasher.digest(buffer.subarray(start, start + length));
      }

      const chunk = buffer.subarray(start, start + length);
      if (await writer.put(digest, chunk, reader.pin())) newBytes += length;
      guide?.follow(digest);
      if (chunks.length === 0 && task.guideKey === undefined) {
        guide = await loadGuide(task.objectsDir, digest);
      }
      chunks.push(digest);
      reader.consume(length);
      position += length;
    }

    await writer.finish();
    if (task.saveHint !== false) await saveGuide(task.objectsDir, chunks);
    const size = chunks.reduce((sum, digest) => sum + digestSize(digest), 0);
    return { size, end: position, chunks, newBytes, guidedBytes };
  } catch (error) {
    await writer.abandon();
    throw error;
  } finally {
    await handle.close();
  }
}

/**
 * Opens a file to snapshot. A FIFO put where the file was listed would block a plain open (and
 * the pool thread with it) until a writer appears, so the open does not wait and what it opened
 * is checked to be a regular file.
 */
async function openSource(source: string) {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(source, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
    throw new ArtifactError('source_unreadable', `cannot open ${source} (${code})`, {
      hint: 'Check the path and its permissions; it must exist when the artifact is logged.',
      cause: error,
    });
  }
  let regular = false;
  try {
    regular = (await handle.stat()).isFile();
  } finally {
    if (!regular) await handle.close();
  }
  if (regular) return handle;
  throw new ArtifactError('not_a_file', `${source} is no longer a regular file`, {
    hint: 'Another process replaced the file while it was logged; log it again.',
    retryable: true,
  });
}

export interface SplitPlan {
  /** A cut point near the middle where the second part may start; undefined: do not split. */
  at: number | undefined;
  /** The digest of the file's first chunk. */
  first: Digest;
}

/** Bytes of the chain cut before the middle, so that it has met the file's own chain there. */
const LEAD_IN = 16 * 1024 * 1024;

/**
 * Picks where a second worker may start on a large file. Cut points depend only on the bytes
 * since the previous cut, so two chains of cuts over the same bytes, started at different
 * places, meet at a common cut within a few chunks and agree from there on. This chains cuts
 * from 16 MiB before the middle and answers its first cut past the middle: the snapshot's own
 * chain, coming from the file's start, almost surely passes through it too. The first part
 * stops there only if one of its cuts falls exactly on it, so the result is always the one a
 * single pass would give (see `ingestFile`, `until`).
 */
export async function planSplit(source: string, size: number): Promise<SplitPlan> {
  const hasher = await getHasher();
  const handle = await openSource(source);
  try {
    const head = Buffer.allocUnsafe(Math.min(size, CHUNK_MAX));
    await readFully(handle, head, 0, source);
    const firstCut = nextCut(head, 0, head.length, head.length === size);
    const first = hasher.digest(head.subarray(0, firstCut));

    const middle = Math.floor(size / 2);
    const start = Math.max(0, Math.floor((middle - LEAD_IN) / CHUNK_MAX) * CHUNK_MAX);
    // The first cut past the middle is at most CHUNK_MAX after the last one before it.
    const window = Buffer.allocUnsafe(Math.min(size - start, middle - start + CHUNK_MAX));
    await readFully(handle, window, start, source);
    const final = start + window.length === size;
    let at = 0;
    while (start + at < middle) {
      const cut = nextCut(window, at, window.length, final);
      if (cut < 0) return { at: undefined, first };
      at += cut;
    }
    const split = start + at;
    return { at: size - split > CHUNK_MAX ? split : undefined, first };
  } finally {
    await handle.close();
  }
}

async function readFully(
  handle: Awaited<ReturnType<typeof open>>,
  into: Buffer,
  position: number,
  source: string,
): Promise<void> {
  for (let done = 0; done < into.length; ) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) {
      throw new ArtifactError('source_changed', `${source} ended while being read`, {
        hint: 'Another process truncated the file while it was logged; log it again.',
        retryable: true,
      });
    }
    done += bytesRead;
  }
}
