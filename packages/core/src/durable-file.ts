import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { ArtifactError } from './errors.js';

/**
 * Writes `bytes` to `target` so that a reader sees either nothing or all of it, and after
 * return it survives power loss: temp file in the target folder, write, size check, fsync,
 * rename, fsync the folder. The object is made read-only since stored content never changes.
 */
export function writeFileDurably(target: string, bytes: Uint8Array): void {
  const folder = dirname(target);
  mkdirSync(folder, { recursive: true });
  const temp = join(folder, `.tmp-${randomBytes(8).toString('hex')}`);

  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx', 0o444);
    let written = 0;
    while (written < bytes.length) {
      written += writeSync(fd, bytes, written, bytes.length - written);
    }
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

export function fsyncFolder(folder: string): void {
  const fd = openSync(folder, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function toArtifactWriteError(error: unknown, target: string): ArtifactError {
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
