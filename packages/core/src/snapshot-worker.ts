import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { CHUNK_MAX, nextCut } from './chunker.js';
import { writeFileDurably } from './durable-file.js';
import { TidemarkError } from './errors.js';
import { getHasher } from './hash.js';
import type { Digest } from './ids.js';
import { objectPath } from './object-layout.js';

export interface SnapshotTask {
  source: string;
  objectsDir: string;
}

export interface SnapshotResult {
  size: number;
  chunks: Digest[];
  /** Bytes written as new objects; chunks already present cost nothing. */
  newBytes: number;
}

/** Errors lose their class crossing a worker boundary, so they travel as plain data. */
export interface SnapshotFailure {
  failed: { code: string; message: string; hint?: string; retryable: boolean };
}

const READ_SIZE = 8 * 1024 * 1024;

/**
 * Runs in a piscina worker: reads `source` once, cuts it into content-defined chunks, hashes
 * each and writes the ones the store lacks. Because every chunk is hashed from the very bytes
 * that are written, a file appended while it is read can never yield an object whose digest
 * does not match its content (invariant 4); the snapshot is the prefix read.
 */
export default async function snapshotFile(
  task: SnapshotTask,
): Promise<SnapshotResult | SnapshotFailure> {
  try {
    return await readAndStore(task);
  } catch (error) {
    if (error instanceof TidemarkError) return { failed: error.toJSON() };
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
    return {
      failed: {
        code: 'snapshot_failed',
        message: `could not read ${task.source} (${code})`,
        retryable: false,
      },
    };
  }
}

async function readAndStore(task: SnapshotTask): Promise<SnapshotResult> {
  const hasher = await getHasher();
  const fd = openSync(task.source, 'r');
  try {
    const expected = fstatSync(fd).size;
    const buffer = Buffer.allocUnsafe(READ_SIZE + CHUNK_MAX);
    const chunks: Digest[] = [];
    let size = 0;
    let newBytes = 0;
    let start = 0;
    let end = 0;
    let eof = false;

    let readTotal = 0;

    while (!eof || start < end) {
      if (!eof && end - start < CHUNK_MAX) {
        buffer.copy(buffer, 0, start, end);
        end -= start;
        start = 0;

        // The snapshot is the file as long as it was when opened; later appends are not in it.
        const want = Math.min(buffer.length - end, expected - readTotal);
        const read = want > 0 ? readSync(fd, buffer, end, want, null) : 0;
        eof = read === 0;
        readTotal += read;
        end += read;
        continue;
      }

      const cut = nextCut(buffer, start, end, eof);
      const chunk = buffer.subarray(start, start + cut);
      const digest = hasher.digest(chunk);
      const target = objectPath(task.objectsDir, digest);
      if (!existsSync(target)) {
        writeFileDurably(target, chunk);
        newBytes += chunk.length;
      }
      chunks.push(digest);
      size += cut;
      start += cut;
    }

    return { size, chunks, newBytes };
  } finally {
    closeSync(fd);
  }
}
