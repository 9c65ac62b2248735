import { join } from 'node:path';
import type { Digest } from './ids.js';

/**
 * The layout of an objects folder (docs/artifacts.md): objects sit in 256 fan-out folders named
 * by the first two hex digits of their digest. Names starting with a dot are bookkeeping, never
 * objects: temp files, ingest markers, the gc lock and chunking hints.
 */
export const TEMP_PREFIX = '.tmp-';
export const PENDING_DIR = '.pending';
export const HINTS_DIR = '.hints';
export const GC_LOCK = '.gc-lock';

const FAN_OUT_NAME = /^[0-9a-f]{2}$/;

/** Where an object lives under an objects folder: two hex digits of fan-out, then the digest. */
export function objectPath(objectsDir: string, digest: Digest): string {
  return join(objectsDir, digest.slice(0, 2), digest);
}

/** Whether a folder name below the objects folder is one of the fan-out folders. */
export function isFanOutName(name: string): boolean {
  return FAN_OUT_NAME.test(name);
}
