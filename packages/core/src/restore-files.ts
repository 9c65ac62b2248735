import { randomBytes } from 'node:crypto';
import { access, constants, lstat, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fsyncFolderAsync } from './durable-file.js';
import { ArtifactError, isTidemarkError } from './errors.js';
import type { Digest } from './ids.js';
import type { Manifest } from './manifest.js';

/** Where the bytes of a chunk come from: the local store, a server, or both in turn. */
export type ChunkSource = (digest: Digest) => Promise<Uint8Array>;

export interface RestoreResult {
  files: number;
  bytes: number;
}

export interface RestoreOptions {
  /**
   * Replace whatever is at `out` (a file, a folder, a link) with exactly the artifact. Without
   * it a restore refuses an `out` that exists (`target_exists`).
   */
  replace?: boolean;
}

/**
 * Writes the file or directory a manifest describes to `out`, all or nothing. Everything is
 * written into a fresh temp entry beside `out` (a short name, so a target whose name is at the
 * length limit still fits), fsynced, and renamed to `out` only once every chunk has arrived
 * and been written; a failure removes the temp entry and leaves `out` as it was. Restore only
 * writes inside what it created itself, so no link already on disk is ever followed, and an
 * entry path that would land outside `out` is refused (`unsafe_path`) before anything is
 * written. The chunk source must check every chunk against its digest (invariant 4).
 */
export async function restoreManifest(
  manifest: Manifest,
  out: string,
  readChunk: ChunkSource,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  const parent = dirname(out);
  const staged = join(parent, tempName('new'));
  const files =
    manifest.type === 'file'
      ? [{ path: staged, chunks: manifest.chunks }]
      : manifest.entries.map((entry) => ({
          path: entryTarget(staged, entry.path, out),
          chunks: entry.chunks,
        }));
  if (options.replace !== true && (await exists(out))) throw targetExists(out);
  await makeFolder(parent);

  let bytes = 0;
  try {
    const folders = new Set<string>();
    if (manifest.type === 'dir') {
      await mkdir(staged);
      folders.add(staged);
    }
    for (const file of files) {
      for (let f = dirname(file.path); f.length > staged.length; f = dirname(f)) folders.add(f);
      await mkdir(dirname(file.path), { recursive: true });
      bytes += await writeFile(file.path, file.chunks, readChunk);
    }
    // Deepest first: a folder's entries are durable before the folder holding it is synced.
    for (const folder of [...folders].sort((a, b) => b.length - a.length)) {
      await fsyncFolderAsync(folder);
    }
    await swapIn(staged, out, options.replace === true);
    await fsyncFolderAsync(parent);
  } catch (error) {
    await rm(staged, { recursive: true, force: true }).catch(() => undefined);
    // Only the file system's errors are ours to explain; the chunk source's pass unchanged.
    if (isTidemarkError(error) || (error as NodeJS.ErrnoException).syscall === undefined) {
      throw error;
    }
    throw await restoreWriteError(error, out);
  }
  return { files: files.length, bytes };
}

/**
 * Maps a failed write of a restore to an error saying what to do. The codes are stable so a
 * caller can word the hint for its own options (the CLI names `--out`).
 */
export async function restoreWriteError(error: unknown, path: string): Promise<ArtifactError> {
  if (error instanceof ArtifactError) return error;
  let code = (error as NodeJS.ErrnoException).code ?? 'unknown';
  // A recursive mkdir below a read-only or forbidden folder reports ENOENT, not the reason.
  if (code === 'ENOENT') code = (await accessProblem(path)) ?? code;
  const options = { cause: error };
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new ArtifactError('disk_full', `no space left to restore ${path}`, {
        ...options,
        hint: 'Free disk space, then restore again; nothing partial was kept.',
      });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new ArtifactError(
        'target_unwritable',
        `cannot write ${path} (${code === 'EROFS' ? 'read-only file system' : code})`,
        { ...options, hint: 'Restore into a folder this user can write.' },
      );
    case 'ENOTDIR':
    case 'EEXIST':
      return new ArtifactError(
        'target_blocked',
        `cannot restore to ${path}: a file is in the way`,
        {
          ...options,
          hint: 'Restore into a folder, not into or below a file.',
        },
      );
    case 'EISDIR':
      return new ArtifactError(
        'target_blocked',
        `cannot restore to ${path}: a folder is in the way`,
        {
          ...options,
          hint: 'Restore somewhere else, or ask for the folder to be replaced.',
        },
      );
    case 'ENAMETOOLONG':
      return new ArtifactError(
        'name_too_long',
        `a name in ${path} is too long for the file system`,
        {
          ...options,
          hint: 'Restore into a folder with a shorter path, or onto a file system allowing longer names.',
        },
      );
    default:
      return new ArtifactError('write_failed', `restoring ${path} failed (${code})`, {
        ...options,
        retryable: true,
      });
  }
}

/**
 * Where an entry of a directory manifest goes below `root`. Manifests are checked when they
 * are read, but one written by an older or foreign writer must still never climb out.
 */
function entryTarget(root: string, path: string, out: string): string {
  const segments = path.split('/');
  const target = join(root, ...segments);
  const inside = relative(root, target);
  const safe =
    segments.every((s) => s !== '' && s !== '.' && s !== '..' && !s.includes('\0')) &&
    inside !== '' &&
    !inside.startsWith('..') &&
    !isAbsolute(inside);
  if (!safe) {
    throw new ArtifactError(
      'unsafe_path',
      `the artifact lists a file '${path}' that would be written outside ${out}`,
      {
        hint:
          'Nothing was restored. The manifest was written by an older or foreign writer; ' +
          'log the artifact again with this version.',
      },
    );
  }
  return target;
}

/**
 * Creates a folder and its missing parents one level at a time. Node's recursive mkdir retries
 * forever where a parent exists but refuses new entries with ENOENT (as /proc does).
 */
async function makeFolder(folder: string): Promise<void> {
  const missing: string[] = [];
  for (let at = resolve(folder); !(await exists(at)); at = dirname(at)) {
    missing.unshift(at);
    if (dirname(at) === at) break;
  }
  for (const level of missing) {
    try {
      await mkdir(level);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      // The parent exists, so ENOENT here means it takes no new entries.
      if (code === 'ENOENT') {
        throw new ArtifactError('target_unwritable', `cannot create ${level} (${code})`, {
          cause: error,
          hint: 'Restore into a folder this user can write.',
        });
      }
      throw await restoreWriteError(error, folder);
    }
  }
}

/** Writes a new file (never an existing one: `wx`), fsynced; answers its length. */
async function writeFile(
  target: string,
  chunks: readonly Digest[],
  readChunk: ChunkSource,
): Promise<number> {
  let written = 0;
  const handle = await open(target, 'wx');
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
  return written;
}

/**
 * Renames the staged entry to `out`. A file replaces a file or link in one rename; anything
 * else in the way is first renamed aside, so `out` holds either the old entry or the new one
 * at every instant, and is removed once the new one is in place. `rm` removes links, never
 * what they point at.
 */
async function swapIn(staged: string, out: string, replace: boolean): Promise<void> {
  const existing = await lstat(out).catch(() => undefined);
  // Checked again here: something may have appeared at `out` while the chunks arrived.
  if (existing !== undefined && !replace) throw targetExists(out);
  const stagedIsDir = (await lstat(staged)).isDirectory();
  if (existing === undefined || (!existing.isDirectory() && !stagedIsDir)) {
    await rename(staged, out);
    return;
  }

  const aside = join(dirname(out), tempName('old'));
  await rename(out, aside);
  try {
    await rename(staged, out);
  } catch (error) {
    await rename(aside, out).catch(() => undefined);
    throw error;
  }
  // The artifact is in place; what was there before is only garbage now.
  await rm(aside, { recursive: true, force: true }).catch(() => undefined);
}

/** A hidden name short enough to fit in any folder whatever the target's own length. */
function tempName(kind: 'new' | 'old'): string {
  return `.tidemark-${kind}-${randomBytes(4).toString('hex')}`;
}

async function exists(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => undefined)) !== undefined;
}

function targetExists(out: string): ArtifactError {
  return new ArtifactError('target_exists', `${out} already exists`, {
    hint: 'Restore somewhere else, or ask for it to be replaced (tidemark get --force).',
  });
}

/** Why the nearest existing folder above `path` cannot be written to, if that is the reason. */
async function accessProblem(path: string): Promise<string | undefined> {
  let folder = dirname(path);
  while (!(await exists(folder)) && dirname(folder) !== folder) folder = dirname(folder);
  try {
    await access(folder, constants.W_OK);
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code;
  }
}
