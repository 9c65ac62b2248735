import { join } from 'node:path';
import type { Digest } from './ids.js';

/** Where an object lives under an objects folder: two hex digits of fan-out, then the digest. */
export function objectPath(objectsDir: string, digest: Digest): string {
  return join(objectsDir, digest.slice(0, 2), digest);
}
