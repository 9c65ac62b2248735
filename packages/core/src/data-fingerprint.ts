import { createReadStream, type Stats, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { ValidationError } from './errors.js';
import { getHasher } from './hash.js';
import type { Digest } from './ids.js';
import { listFiles } from './list-files.js';
import type { FieldValue } from './values.js';

/** The identity of one input file or directory as a run saw it. */
export interface DataFingerprint {
  path: string;
  /** The artifact digest of the file; for a directory, of its sorted list of files and digests. */
  digest: Digest;
  size: number;
  fileCount: number;
}

/**
 * Hashes the input data a run names, so two runs can be shown to have read the same bytes.
 * Files are streamed through the artifact hasher without being copied into the store. Any
 * path that cannot be read fails the call before the run is created.
 */
export async function fingerprintData(paths: readonly string[]): Promise<DataFingerprint[]> {
  if (!Array.isArray(paths) || paths.some((p) => typeof p !== 'string' || p.length === 0)) {
    throw new ValidationError('invalid_option', 'dataFiles must be an array of paths', {
      hint: "Pass dataFiles: ['data/train.csv', 'data/images/'].",
    });
  }
  const out: DataFingerprint[] = [];
  for (const given of paths) {
    const path = resolve(given);
    const stats = statOrThrow(path);
    if (stats.isDirectory()) {
      out.push(await fingerprintDirectory(path));
    } else {
      const { digest, size } = await hashFile(path);
      out.push({ path, digest, size, fileCount: 1 });
    }
  }
  return out;
}

/** The fields a fingerprint is recorded as, under `context/data/<index>/`. */
export function fingerprintFields(prints: DataFingerprint[]): Array<[string, FieldValue]> {
  return prints.flatMap((print, i) => [
    [`context/data/${i}/path`, print.path],
    [`context/data/${i}/digest`, print.digest],
    [`context/data/${i}/size`, print.size],
    [`context/data/${i}/files`, print.fileCount],
  ]);
}

async function fingerprintDirectory(root: string): Promise<DataFingerprint> {
  const files = listFiles(root);
  const lines: string[] = [];
  let size = 0;
  for (const file of files) {
    const hashed = await hashFile(join(root, file));
    size += hashed.size;
    lines.push(`${file.split(sep).join('/')}\t${hashed.digest}\n`);
  }
  const digest = (await getHasher()).digest(Buffer.from(lines.join(''), 'utf8'));
  return { path: root, digest, size, fileCount: files.length };
}

async function hashFile(path: string): Promise<{ digest: Digest; size: number }> {
  const stream = (await getHasher()).stream();
  let size = 0;
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
      stream.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  } catch (error) {
    throw unreadable(path, error);
  }
  return { digest: stream.digest(), size };
}

function statOrThrow(path: string): Stats {
  try {
    return statSync(path);
  } catch (error) {
    throw unreadable(path, error);
  }
}

function unreadable(path: string, cause: unknown): ValidationError {
  return new ValidationError('data_file_unreadable', `cannot read data file ${path}`, {
    hint: 'Check the paths in dataFiles; the run was not started.',
    cause,
  });
}
