import { randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initRun, type Run, Store } from '@tidemark/core';
import { afterEach } from 'vitest';

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** A fresh folder removed after the test. */
export function tempDir(prefix = 'tidemark-sync-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A store folder of its own, opened for syncing and closed after the test. */
export function openTestStore(): { dir: string; store: Store } {
  const dir = join(tempDir(), '.tidemark');
  const store = Store.open({ dir });
  cleanups.push(() => store.close());
  return { dir, store };
}

/** Records one run in the store folder, lets `body` log to it, and stops it. */
export async function recordRun(
  dir: string,
  project: string,
  body: (run: Run) => Promise<void> | void,
): Promise<Run> {
  const run = await initRun({ project, dir, captureContext: false, handleExit: false });
  await body(run);
  await run.stop();
  return run;
}

/** A file of random bytes, so its chunks are unlike any other file's. */
export function randomFile(size: number): string {
  const path = join(tempDir('tidemark-artifact-'), 'blob.bin');
  writeFileSync(path, randomFillSync(Buffer.alloc(size)));
  return path;
}

/** Logs `count` float points, one durable entry each. */
export function logPoints(run: Run, path: string, count: number): void {
  for (let step = 0; step < count; step++) run.log(path, step / 10, { step });
}
