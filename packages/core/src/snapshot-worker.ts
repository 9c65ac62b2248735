import { readFile } from 'node:fs/promises';
import { TidemarkError } from './errors.js';
import { getHasher } from './hash.js';
import type { Digest } from './ids.js';
import {
  type IngestResult,
  type IngestTask,
  ingestFile,
  planSplit,
  type SplitPlan,
} from './ingest-file.js';

export type SnapshotTask = IngestTask;
export type SnapshotResult = IngestResult;
export type { SplitPlan };

/** Errors lose their class crossing a worker boundary, so they travel as plain data. */
export interface SnapshotFailure {
  failed: { code: string; message: string; hint?: string; retryable: boolean };
}

export interface HashTask {
  objects: Array<{ digest: Digest; path: string }>;
}

/** What re-hashing found wrong with each object that is not intact. */
export interface HashResult {
  bytes: number;
  damaged: Array<{ digest: Digest; problem: 'mismatch' | 'unreadable' | 'missing' }>;
}

/**
 * Runs in a piscina worker: snapshots one file (see `ingestFile`), so that chunking and hashing
 * a large checkpoint never stalls the event loop of the process that logs it.
 */
export default async function snapshotFile(
  task: SnapshotTask,
): Promise<SnapshotResult | SnapshotFailure> {
  try {
    return await ingestFile(task);
  } catch (error) {
    return asFailure(error, task.source);
  }
}

function asFailure(error: unknown, source: string): SnapshotFailure {
  if (error instanceof TidemarkError) return { failed: error.toJSON() };
  const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
  return {
    failed: {
      code: 'snapshot_failed',
      message: `could not snapshot ${source} (${code})`,
      retryable: false,
    },
  };
}

/** Runs in a piscina worker: where a second worker may start on a large file. */
export async function planSnapshot(task: {
  source: string;
  size: number;
}): Promise<SplitPlan | SnapshotFailure> {
  try {
    return await planSplit(task.source, task.size);
  } catch (error) {
    return asFailure(error, task.source);
  }
}

/** Runs in a piscina worker: re-hashes stored objects and reports those that do not match. */
export async function hashObjects(task: HashTask): Promise<HashResult> {
  const hasher = await getHasher();
  const result: HashResult = { bytes: 0, damaged: [] };
  for (const { digest, path } of task.objects) {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      result.damaged.push({ digest, problem: missing ? 'missing' : 'unreadable' });
      continue;
    }
    result.bytes += bytes.length;
    if (hasher.digest(bytes) !== digest) result.damaged.push({ digest, problem: 'mismatch' });
  }
  return result;
}
