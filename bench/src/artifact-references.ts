import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { getHasher } from '@tidemark/core';
import xxhash from 'xxhash-wasm';

/**
 * The physical references the artifact figures are measured against, each on the same disk and
 * in the same run as the product: what the machine does with no content addressing at all.
 */

const BLOCK = 8 * 1024 * 1024;

/** Writes `size` random bytes to `path` and fsyncs, so the file starts out clean in the cache. */
export function writeRandomFile(path: string, size: number): void {
  const block = Buffer.allocUnsafe(BLOCK);
  const fd = openSync(path, 'w');
  try {
    for (let written = 0; written < size; written += BLOCK) {
      randomFillSync(block);
      writeSync(fd, block, 0, Math.min(BLOCK, size - written));
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Seconds to write `size` bytes from memory to a new file and fsync it: sequential at its best. */
export function sequentialWriteSeconds(path: string, size: number): number {
  const block = Buffer.allocUnsafe(BLOCK);
  randomFillSync(block);
  const started = performance.now();
  const fd = openSync(path, 'w');
  try {
    for (let written = 0; written < size; written += BLOCK) {
      writeSync(fd, block, 0, Math.min(BLOCK, size - written));
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const seconds = (performance.now() - started) / 1000;
  rmSync(path);
  return seconds;
}

/** Seconds to read a file and hash it with one xxh64 pass: the least any re-log can cost. */
export async function xxh64Seconds(path: string): Promise<number> {
  const api = await xxhash();
  return readAndHash(path, () => {
    const state = api.create64(0n);
    return { update: (bytes) => state.update(bytes), done: () => state.digest() };
  });
}

/** Seconds to read a file and compute tidemark's 128-bit digest of it (two xxh64 passes). */
export async function digestSeconds(path: string): Promise<number> {
  const hasher = await getHasher();
  return readAndHash(path, () => {
    const state = hasher.stream();
    return { update: (bytes) => state.update(bytes), done: () => state.digest() };
  });
}

function readAndHash(
  path: string,
  start: () => { update(bytes: Uint8Array): void; done(): unknown },
): number {
  const block = Buffer.allocUnsafe(BLOCK);
  const started = performance.now();
  const state = start();
  const fd = openSync(path, 'r');
  try {
    for (;;) {
      const read = readSync(fd, block, 0, BLOCK, null);
      if (read === 0) break;
      state.update(block.subarray(0, read));
    }
  } finally {
    closeSync(fd);
  }
  state.done();
  return (performance.now() - started) / 1000;
}

/**
 * Flushes every dirty page of the machine, so that one measurement does not pay for the
 * writeback of the one before it.
 */
export function flushDisk(): void {
  spawnSync('sync', { stdio: 'ignore' });
}
