import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ArtifactError } from './errors.js';
import { TEMP_PREFIX } from './object-layout.js';

/**
 * Writes `bytes` to `target` so that a reader sees either nothing or all of it, and after
 * return it survives power loss: temp file in the target folder, write, size check, fsync,
 * rename, fsync the folder. The object is made read-only since stored content never changes.
 */
export function writeFileDurably(target: string, bytes: Uint8Array): void {
  const folder = dirname(target);
  mkdirSync(folder, { recursive: true });
  const temp = tempPathIn(folder);

  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx', 0o444);
    let written = 0;
    while (written < bytes.length) {
      written += writeSync(fd, bytes, written, bytes.length - written);
    }
    if (fstatSync(fd).size !== bytes.length) throw shortWrite(target);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, target);
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // The temp file may never have been created; nothing else to undo.
    }
    throw toArtifactWriteError(error, target);
  }

  fsyncFolder(folder);
}

/** `writeFileDurably` without blocking the thread: the same recipe on the libuv pool. */
export async function writeFileDurablyAsync(target: string, bytes: Uint8Array): Promise<void> {
  const folder = dirname(target);
  await mkdir(folder, { recursive: true });
  await writeAndRename(target, [bytes]);
  await fsyncFolderAsync(folder);
}

/**
 * The file half of the durable recipe: temp file beside `target`, write every part, size check,
 * fsync, rename. The caller still owes an fsync of the folder before it reports the write as
 * durable; batching those is what makes many small objects cheap (docs/artifacts.md).
 */
export async function writeAndRename(target: string, parts: readonly Uint8Array[]): Promise<void> {
  const temp = await writeTempFile(dirname(target), parts, target);
  try {
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw toArtifactWriteError(error, target);
  }
}

/**
 * Writes `parts` to a new temp file in `folder`, checks its size and fsyncs it (unless `sync`
 * is false and the caller makes it durable later), and answers its path; the caller renames
 * it into place or removes it. A failed write leaves no temp file. Errors name `target`, the
 * file the temp is meant to become.
 */
export async function writeTempFile(
  folder: string,
  parts: readonly Uint8Array[],
  target: string = folder,
  options: { sync?: boolean } = {},
): Promise<string> {
  const temp = tempPathIn(folder);
  const expected = parts.reduce((total, part) => total + part.length, 0);
  try {
    const handle = await open(temp, 'wx', 0o444);
    try {
      for (const part of parts) {
        let written = 0;
        while (written < part.length) {
          const { bytesWritten } = await handle.write(part, written, part.length - written);
          written += bytesWritten;
        }
      }
      if ((await handle.stat()).size !== expected) throw shortWrite(target);
      if (options.sync !== false) await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw toArtifactWriteError(error, target);
  }
  return temp;
}

export function fsyncFolder(folder: string): void {
  const fd = openSync(folder, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export async function fsyncFolderAsync(folder: string): Promise<void> {
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Maps a failed write to the error users see: disk full and permissions are not retryable. */
export function toArtifactWriteError(error: unknown, target: string): ArtifactError {
  if (error instanceof ArtifactError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new ArtifactError('disk_full', `no space left to write ${target}`, {
      hint: 'Free disk space, then log the artifact again; nothing partial was kept.',
      cause: error,
    });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new ArtifactError('permission_denied', `cannot write ${target}`, {
      hint: 'Check that the store folder is writable by this user.',
      cause: error,
    });
  }
  return new ArtifactError('write_failed', `writing ${target} failed (${code ?? 'unknown'})`, {
    retryable: true,
    cause: error,
  });
}

function tempPathIn(folder: string): string {
  return join(folder, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
}

function shortWrite(target: string): ArtifactError {
  return new ArtifactError('write_failed', `${target} came out shorter than written`, {
    retryable: true,
  });
}
