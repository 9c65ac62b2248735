import { randomBytes } from 'node:crypto';
import {
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ArtifactError } from './errors.js';
import { GC_LOCK, PENDING_DIR, TEMP_PREFIX } from './object-layout.js';

/**
 * The handshake that keeps `gc` from deleting an object a concurrent writer is about to record
 * (docs/artifacts.md, "Garbage collection"). A writer writes a pending marker before it looks
 * at or writes any object and removes it once the database row that references its objects is
 * committed; gc takes an exclusive lock file and then looks for markers. Each side creates its
 * own file before it looks for the other's, so at least one of them sees the other: a writer
 * that sees the lock waits for it, and gc that sees a marker gives the lock back and tries
 * again later, so neither can wait on the other forever.
 */

/** A marker or lock older than this is stale even when its owner cannot be checked. */
const STALE_AFTER_MS = 24 * 60 * 60 * 1000;
const POLL_MS = 50;

interface Owner {
  pid: number;
  host: string;
  at: number;
}

export interface IngestMarker {
  /** Removes the marker; call once the objects are referenced from the database. */
  release(): void;
}

/**
 * Announces an ingest. Resolves once no live gc holds the lock; a writer waits at most
 * `maxWaitMs` (default 10 minutes) for one.
 */
export async function beginIngest(
  objectsDir: string,
  options: { maxWaitMs?: number; clock?: () => number } = {},
): Promise<IngestMarker> {
  const clock = options.clock ?? Date.now;
  const folder = join(objectsDir, PENDING_DIR);
  const path = join(folder, `${process.pid}-${randomBytes(6).toString('hex')}`);
  mkdirSync(folder, { recursive: true });
  const temp = writeOwnerFile(folder, clock());
  renameSync(temp, path);
  const marker: IngestMarker = { release: () => rmSync(path, { force: true }) };

  const deadline = clock() + (options.maxWaitMs ?? 10 * 60 * 1000);
  while (gcHoldsLock(objectsDir, clock())) {
    if (clock() > deadline) {
      marker.release();
      throw new ArtifactError('gc_in_progress', `a gc of ${objectsDir} did not finish in time`, {
        hint: "Log the artifact again once 'tidemark gc' has finished.",
        retryable: true,
      });
    }
    await delay(POLL_MS);
  }
  return marker;
}

export interface GcLock {
  release(): void;
}

/** Takes the gc lock, or answers undefined while another live gc holds it. */
export function tryLockGc(objectsDir: string, now: number): GcLock | undefined {
  const path = join(objectsDir, GC_LOCK);
  // link() creates the lock with its content in one step and fails if it exists, so nobody
  // ever reads a lock that is still empty.
  const temp = writeOwnerFile(objectsDir, now);
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        linkSync(temp, path);
        return { release: () => rmSync(path, { force: true }) };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      if (!isStale(path, now)) return undefined;
      rmSync(path, { force: true });
    }
    return undefined;
  } finally {
    rmSync(temp, { force: true });
  }
}

/** Counts the markers of live writers, removing those their writers left behind. */
export function countLiveWriters(objectsDir: string, now: number): number {
  const folder = join(objectsDir, PENDING_DIR);
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return 0;
  }
  let live = 0;
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const path = join(folder, name);
    if (isStale(path, now)) rmSync(path, { force: true });
    else live += 1;
  }
  return live;
}

function gcHoldsLock(objectsDir: string, now: number): boolean {
  const path = join(objectsDir, GC_LOCK);
  return readOwner(path) !== undefined && !isStale(path, now);
}

/** A marker or lock whose process is gone (same host), or that is older than a day. */
function isStale(path: string, now: number): boolean {
  const owner = readOwner(path);
  if (owner === undefined) return true;
  if (now - owner.at > STALE_AFTER_MS) return true;
  return owner.host === hostname() && !isAlive(owner.pid);
}

function readOwner(path: string): Owner | undefined {
  try {
    const owner = JSON.parse(readFileSync(path, 'utf8')) as Owner;
    if (Number.isInteger(owner.pid) && typeof owner.host === 'string' && Number.isFinite(owner.at))
      return owner;
  } catch {
    // Missing, half-written or foreign: treated as no owner.
  }
  return undefined;
}

/** Writes who we are to a temp file in `folder`, to be moved or linked into place whole. */
function writeOwnerFile(folder: string, at: number): string {
  const temp = join(folder, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
  writeFileSync(temp, JSON.stringify({ pid: process.pid, host: hostname(), at } satisfies Owner));
  return temp;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
