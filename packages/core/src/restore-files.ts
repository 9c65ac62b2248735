import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { toArtifactWriteError } from './durable-file.js';
import { isTidemarkError } from './errors.js';
import type { Digest } from './ids.js';
import type { Manifest } from './manifest.js';

/** Where the bytes of a chunk come from: the local store, a server, or both in turn. */
export type ChunkSource = (digest: Digest) => Promise<Uint8Array>;

export interface RestoreResult {
  files: number;
  bytes: number;
}

/**
 * Writes the file or directory a manifest describes to `out`. Each file is assembled under a
 * temp name beside its target, fsynced and renamed into place, so a failed or interrupted
 * restore never leaves a torn file under the real name. The chunk source must check every
 * chunk against its digest (invariant 4); entry paths were checked when the manifest was read.
 */
export async function restoreManifest(
  manifest: Manifest,
  out: string,
  readChunk: ChunkSource,
): Promise<RestoreResult> {
  const files =
    manifest.type === 'file'
      ? [{ path: out, chunks: manifest.chunks }]
      : manifest.entries.map((entry) => ({
          path: join(out, ...entry.path.split('/')),
          chunks: entry.chunks,
        }));
  if (manifest.type === 'dir') await mkdir(out, { recursive: true });

  let bytes = 0;
  for (const file of files) {
    await mkdir(dirname(file.path), { recursive: true });
    bytes += await writeRestoredFile(file.path, file.chunks, readChunk);
  }
  return { files: files.length, bytes };
}

async function writeRestoredFile(
  target: string,
  chunks: readonly Digest[],
  readChunk: ChunkSource,
): Promise<number> {
  const temp = `${target}.tidemark-${randomBytes(4).toString('hex')}`;
  let written = 0;
  try {
    const handle = await open(temp, 'wx');
    try {
      for (const chunk of chunks) {
        const bytes = await readChunk(chunk);
        let done = 0;
        while (done < bytes.length) {
          const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, written);
          done += bytesWritten;
          written += bytesWritten;
        }
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    if (isTidemarkError(error)) throw error;
    throw toArtifactWriteError(error, target);
  }
  return written;
}
