import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh folder per test, so no two tests share a store. */
export function tempDir(prefix = 'tidemark-core-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
