import { open } from 'node:fs/promises';
import { BlockReader } from './block-reader.js';
import { type ChunkGuide, loadGuide, saveGuide } from './chunk-guide.js';
import { nextCut } from './chunker.js';
import { ArtifactError } from './errors.js';
import { digestSize, getHasher } from './hash.js';
import type { Digest } from './ids.js';
import { ObjectWriter } from './object-writer.js';

export interface IngestTask {
  source: string;
  objectsDir: string;
}

export interface IngestResult {
  size: number;
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
    const total = (await handle.stat()).size;
    const reader = new BlockReader(handle, task.source, total);
    const chunks: Digest[] = [];
    let newBytes = 0;
    let guidedBytes = 0;
    let guide: ChunkGuide | undefined;

    for (;;) {
      const available = reader.available;
      if (available === 0 && reader.atEnd) break;
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
      if (chunks.length === 0) guide = await loadGuide(task.objectsDir, digest);
      chunks.push(digest);
      reader.consume(length);
    }

    await writer.finish();
    await saveGuide(task.objectsDir, chunks);
    const size = chunks.reduce((sum, digest) => sum + digestSize(digest), 0);
    return { size, chunks, newBytes, guidedBytes };
  } catch (error) {
    await writer.abandon();
    throw error;
  } finally {
    await handle.close();
  }
}

async function openSource(source: string) {
  try {
    return await open(source, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
    throw new ArtifactError('source_unreadable', `cannot open ${source} (${code})`, {
      hint: 'Check the path and its permissions; it must exist when the artifact is logged.',
      cause: error,
    });
  }
}
