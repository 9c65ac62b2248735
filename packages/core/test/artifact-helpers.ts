import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Digest,
  getHasher,
  initRun,
  isDigest,
  type Manifest,
  type Run,
  Store,
} from '@tidemark/core';
import { afterEach } from 'vitest';

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** A fresh folder per test, removed afterwards. */
export function scratch(prefix = 'tidemark-artifacts-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Registers work to undo after the test (servers, mounts, child processes). */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

/** A store of its own, closed after the test. */
export function openScratchStore(): { dir: string; store: Store } {
  const dir = join(scratch(), '.tidemark');
  const store = Store.open({ dir });
  cleanups.push(() => store.close());
  return { dir, store };
}

/** A run in `dir` that the test stops itself (or leaves to the cleanup). */
export async function startRun(dir: string, project = 'team/p'): Promise<Run> {
  const run = await initRun({ project, dir, captureContext: false, handleExit: false });
  cleanups.push(() => run.stop());
  return run;
}

export function randomBytes(size: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  for (let offset = 0; offset < size; offset += 64 * 1024 * 1024) {
    randomFillSync(bytes, offset, Math.min(64 * 1024 * 1024, size - offset));
  }
  return bytes;
}

export function writeRandomFile(path: string, size: number): Buffer {
  const bytes = randomBytes(size);
  writeFileSync(path, bytes);
  return bytes;
}

/** Every object file in an objects folder, by digest. */
export function storedObjects(objectsDir: string): Map<Digest, string> {
  const out = new Map<Digest, string>();
  for (const folder of readdirSync(objectsDir)) {
    if (!/^[0-9a-f]{2}$/.test(folder)) continue;
    for (const name of readdirSync(join(objectsDir, folder))) {
      if (isDigest(name)) out.set(name, join(objectsDir, folder, name));
    }
  }
  return out;
}

/** Names below the objects folder that are neither objects nor folders: leftovers of writes. */
export function strayFiles(objectsDir: string): string[] {
  return (readdirSync(objectsDir, { recursive: true }) as string[]).filter((name) => {
    const base = name.split('/').at(-1) as string;
    return base.startsWith('.tmp-') && statSync(join(objectsDir, name)).isFile();
  });
}

/** Checks every object against its digest by reading the file directly. */
export async function damagedObjects(objectsDir: string): Promise<Digest[]> {
  const hasher = await getHasher();
  const damaged: Digest[] = [];
  for (const [digest, path] of storedObjects(objectsDir)) {
    if (hasher.digest(readFileSync(path)) !== digest) damaged.push(digest);
  }
  return damaged;
}

export function chunksOf(manifest: Manifest): Digest[] {
  return manifest.type === 'file' ? manifest.chunks : manifest.entries.flatMap((e) => e.chunks);
}

/** The manifest digest recorded for `path` in run `runId`. */
export function recordedManifest(store: Store, runId: string, path: string): Digest {
  const row = store.db
    .prepare('SELECT manifest FROM files WHERE run_id = ? AND path = ?')
    .get(runId, path) as { manifest: Digest } | undefined;
  if (row === undefined) throw new Error(`no file ${path} in run ${runId}`);
  return row.manifest;
}
