import { ArtifactError } from './errors.js';
import { isDigest } from './hash.js';
import type { Digest } from './ids.js';

/** A file as the ordered list of its chunks. */
export interface FileManifest {
  v: 1;
  type: 'file';
  size: number;
  chunks: Digest[];
}

/**
 * A directory as its files, by relative path with forward slashes, sorted. Folders are not
 * entries: an empty one is not recorded (see `isEntryPath` for the names an entry may have).
 */
export interface DirManifest {
  v: 1;
  type: 'dir';
  size: number;
  entries: Array<{ path: string; size: number; chunks: Digest[] }>;
}

export type Manifest = FileManifest | DirManifest;

/**
 * The bytes of a manifest. Throws rather than store a manifest `decodeManifest` would refuse:
 * such an object would make every later reader (get, gc, verify, the server) fail on it.
 */
export function encodeManifest(manifest: Manifest): Uint8Array {
  if (!isFileManifest(manifest) && !isDirManifest(manifest)) {
    throw new ArtifactError('bad_manifest', 'refusing to write a manifest no reader accepts', {
      hint: 'This is a bug in the writer; please report it with the folder layout logged.',
    });
  }
  return Buffer.from(JSON.stringify(manifest), 'utf8');
}

/** Parses and checks a manifest read from disk or received from a client. */
export function decodeManifest(bytes: Uint8Array, digest: string): Manifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw badManifest(digest, error);
  }
  if (isFileManifest(parsed) || isDirManifest(parsed)) return parsed;
  throw badManifest(digest);
}

/** Every chunk a manifest refers to, without repeats. */
export function manifestChunks(manifest: Manifest): Digest[] {
  const chunks =
    manifest.type === 'file' ? manifest.chunks : manifest.entries.flatMap((e) => e.chunks);
  return [...new Set(chunks)];
}

function isFileManifest(value: unknown): value is FileManifest {
  const m = value as FileManifest;
  return (
    typeof m === 'object' &&
    m !== null &&
    m.v === 1 &&
    m.type === 'file' &&
    Number.isSafeInteger(m.size) &&
    Array.isArray(m.chunks) &&
    m.chunks.every(isDigest)
  );
}

function isDirManifest(value: unknown): value is DirManifest {
  const m = value as DirManifest;
  return (
    typeof m === 'object' &&
    m !== null &&
    m.v === 1 &&
    m.type === 'dir' &&
    Number.isSafeInteger(m.size) &&
    Array.isArray(m.entries) &&
    m.entries.every(
      (e) =>
        typeof e.path === 'string' &&
        isEntryPath(e.path) &&
        Number.isSafeInteger(e.size) &&
        Array.isArray(e.chunks) &&
        e.chunks.every(isDigest),
    )
  );
}

/**
 * A name a directory manifest may list: the relative path of a file, `/` between folders, that
 * restore can write back below its target and nowhere else. Any character a POSIX file name
 * may hold is allowed, backslashes included (`t/back\slash` is one name on POSIX). Refused:
 * empty, absolute, NUL, and `.`, `..` or empty segments; and, since Windows reads a backslash
 * as a separator, a `..` between backslashes (`..\x`), which would climb out of the target
 * there. Every manifest written before backslashes were allowed passes too.
 */
export function isEntryPath(path: string): boolean {
  if (path.length === 0 || path.startsWith('/') || path.includes('\0')) return false;
  return path
    .split('/')
    .every((segment) => segment !== '' && segment !== '.' && !segment.split('\\').includes('..'));
}

/**
 * A relative path that cannot climb out of the folder it is restored into, on any platform:
 * no empty, `.` or `..` segment, no backslash, no NUL, not absolute. Artifact paths (`upload`,
 * `logFile`) follow this rule.
 */
export function isSafeRelativePath(path: string): boolean {
  if (path.length === 0 || path.startsWith('/') || path.includes('\\') || path.includes('\0')) {
    return false;
  }
  return path.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

function badManifest(digest: string, cause?: unknown): ArtifactError {
  return new ArtifactError('bad_manifest', `object ${digest} is not a valid manifest`, {
    hint: "Run 'tidemark verify' to see which objects are damaged.",
    cause,
  });
}
