import { type Dirent, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { hintName } from './chunk-guide.js';
import { ArtifactError } from './errors.js';
import { isDigest } from './hash.js';
import type { Digest } from './ids.js';
import { countLiveWriters, tryLockGc } from './ingest-lock.js';
import { HINTS_DIR, isFanOutName, TEMP_PREFIX } from './object-layout.js';
import { liveObjects } from './object-references.js';
import type { Store } from './store.js';

export interface GcOptions {
  /** Objects and temp files younger than this are kept whatever refers to them (default 1 h). */
  graceMs?: number;
  /** Report what would be removed without removing it. */
  dryRun?: boolean;
  /** How long to wait for writers that are ingesting right now (default 60 s). */
  maxWaitMs?: number;
  /** Milliseconds since the epoch; defaults to the store's clock. */
  clock?: () => number;
}

export interface GcReport {
  /** Objects in the store before gc. */
  objects: number;
  /** Objects some run, file series point or journal entry refers to. */
  referenced: number;
  removed: number;
  removedBytes: number;
  /** Unreferenced objects kept because they are younger than the grace period. */
  young: number;
  /** Temp files of interrupted writes removed. */
  tempFiles: number;
  dryRun: boolean;
}

const DEFAULT_GRACE_MS = 60 * 60 * 1000;
const RETRY_MS = 100;

/**
 * Removes the objects nothing in the store refers to: chunks of a snapshot whose process died
 * before recording it, objects fetched by `tidemark get` and never recorded, and what runs that
 * no longer exist referred to. An object is removed only when (1) no live writer holds a pending
 * marker, checked under the gc lock (see ingest-lock.ts), (2) it is unreferenced, and (3) its
 * file is older than the grace period, which also covers writers that do not know the
 * protocol. Refuses to remove anything when a referenced manifest cannot be read, since the
 * chunks it lists are then unknown (docs/artifacts.md, "Garbage collection").
 */
export async function collectGarbage(store: Store, options: GcOptions = {}): Promise<GcReport> {
  const clock = options.clock ?? store.clock;
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const objectsDir = store.objects.dir;
  const deadline = clock() + (options.maxWaitMs ?? 60_000);

  for (;;) {
    const lock = tryLockGc(objectsDir, clock());
    if (lock !== undefined) {
      try {
        if (countLiveWriters(objectsDir, clock()) === 0) {
          return await sweep(store, graceMs, options.dryRun === true, clock());
        }
      } finally {
        lock.release();
      }
    }
    if (clock() > deadline) {
      throw new ArtifactError('gc_busy', `${objectsDir} is being written or collected`, {
        hint: "Another process is logging artifacts or running gc; run 'tidemark gc' again later.",
        retryable: true,
      });
    }
    await delay(RETRY_MS);
  }
}

async function sweep(store: Store, graceMs: number, dryRun: boolean, now: number) {
  const objectsDir = store.objects.dir;
  const { live, unreadable } = await liveObjects(store.db, store.objects);
  const first = unreadable[0];
  if (first !== undefined) {
    throw new ArtifactError(
      'gc_unsafe',
      `manifest ${first.digest} is referenced but cannot be read (${first.code}); ${unreadable.length} such`,
      {
        hint: "Nothing was removed. Run 'tidemark verify', restore the manifest ('tidemark get' fetches it from a server), then gc again.",
      },
    );
  }

  const report: GcReport = {
    objects: 0,
    referenced: 0,
    removed: 0,
    removedBytes: 0,
    young: 0,
    tempFiles: 0,
    dryRun,
  };
  const remove = (path: string): void => {
    if (!dryRun) rmSync(path, { force: true });
  };

  for (const folder of listDir(objectsDir)) {
    if (!folder.isDirectory() || !isFanOutName(folder.name)) continue;
    const folderPath = join(objectsDir, folder.name);
    for (const entry of listDir(folderPath)) {
      const path = join(folderPath, entry.name);
      const age = now - mtimeOf(path);
      if (entry.name.startsWith(TEMP_PREFIX)) {
        if (age > graceMs) {
          remove(path);
          report.tempFiles += 1;
        }
        continue;
      }
      if (!isDigest(entry.name)) continue;

      report.objects += 1;
      if (live.has(entry.name)) {
        report.referenced += 1;
      } else if (age <= graceMs) {
        report.young += 1;
      } else {
        remove(path);
        report.removed += 1;
        report.removedBytes += Number(entry.name.slice(33));
      }
    }
  }

  removeStaleHints(objectsDir, live, remove);
  return report;
}

/** A hint named by a first chunk that is gone can never guide a snapshot again. */
function removeStaleHints(objectsDir: string, live: Set<Digest>, remove: (p: string) => void) {
  const kept = new Set([...live].map(hintName));
  const folder = join(objectsDir, HINTS_DIR);
  for (const entry of listDir(folder)) {
    if (!kept.has(entry.name)) remove(join(folder, entry.name));
  }
}

function listDir(folder: string): Dirent[] {
  try {
    return readdirSync(folder, { withFileTypes: true });
  } catch {
    return [];
  }
}

/** A file that vanished meanwhile counts as brand new, so it is never removed by mistake. */
function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}
