import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHUNK_MAX } from './chunker.js';
import { digestSize, isDigest } from './hash.js';
import type { Digest } from './ids.js';
import { HINTS_DIR, TEMP_PREFIX } from './object-layout.js';

/** Files with fewer chunks gain too little from a guide to be worth a hint file. */
const MIN_GUIDED_CHUNKS = 3;

/**
 * The chunk list of an earlier file that began with the same first chunk, used to snapshot a
 * new version at hashing speed: where the new file holds the same bytes, the next chunk is
 * the earlier one, so it is hashed and compared instead of searched for a cut point.
 *
 * This is sound because a cut depends only on the bytes from the chunk's start: bytes equal to
 * an earlier chunk are cut exactly there again. The one exception is an earlier file's last
 * chunk, which ended where that file did; it is taken only when the new file ends there too.
 * The guide is a hint and never trusted: every chunk taken from it was hashed from the new
 * bytes and matched its digest, digest and size (docs/artifacts.md, "Snapshots").
 */
export class ChunkGuide {
  readonly #chunks: readonly Digest[];
  readonly #index = new Map<Digest, number>();
  #next = 1;

  constructor(chunks: readonly Digest[]) {
    this.#chunks = chunks;
    chunks.forEach((digest, i) => {
      if (!this.#index.has(digest)) this.#index.set(digest, i);
    });
  }

  /**
   * The chunk expected next, if the guide has one that fits the bytes left: `available` bytes
   * are in hand and `atEnd` says whether they reach the end of the snapshot.
   */
  expect(available: number, atEnd: boolean): Digest | undefined {
    const digest = this.#chunks[this.#next];
    if (digest === undefined) return undefined;
    const size = digestSize(digest);
    if (size === 0 || size > CHUNK_MAX || size > available) return undefined;
    const last = this.#next === this.#chunks.length - 1;
    if (last && !(atEnd && available === size)) return undefined;
    return digest;
  }

  /**
   * Follows the guide from the chunk that starts at byte `offset`, for a snapshot that starts
   * there; a guide with no chunk starting there is picked up again after the first chunk that
   * is in it.
   */
  seek(offset: number): void {
    let at = 0;
    for (let i = 0; i < this.#chunks.length; i++) {
      if (at === offset) {
        this.#next = i;
        return;
      }
      at += digestSize(this.#chunks[i] as Digest);
    }
    this.#next = this.#chunks.length;
  }

  /** Whether the next chunk of the guide is longer than the `available` bytes in hand. */
  wantsMore(available: number): boolean {
    const digest = this.#chunks[this.#next];
    if (digest === undefined) return false;
    const size = digestSize(digest);
    return size <= CHUNK_MAX && size > available;
  }

  /** Records the chunk the snapshot cut or took next, and follows the guide from there. */
  follow(digest: Digest): void {
    const at = this.#chunks[this.#next] === digest ? this.#next : this.#index.get(digest);
    this.#next = at === undefined ? this.#chunks.length : at + 1;
  }
}

/** Loads the guide stored under a file's first chunk; any unreadable hint is ignored. */
export async function loadGuide(
  objectsDir: string,
  first: Digest,
): Promise<ChunkGuide | undefined> {
  let text: string;
  try {
    text = await readFile(hintPath(objectsDir, first), 'utf8');
  } catch {
    return undefined;
  }
  const chunks = text.split('\n').filter((line) => line.length > 0);
  if (chunks[0] !== first || !chunks.every(isDigest)) return undefined;
  return new ChunkGuide(chunks as Digest[]);
}

/**
 * Stores a file's chunk list as the guide for later files that begin with its first chunk.
 * A hint is a cache: it is replaced atomically but never fsynced, and losing one only costs
 * the next snapshot its speed.
 */
export async function saveGuide(objectsDir: string, chunks: readonly Digest[]): Promise<void> {
  const first = chunks[0];
  if (first === undefined || chunks.length < MIN_GUIDED_CHUNKS) return;
  const folder = join(objectsDir, HINTS_DIR);
  const temp = join(folder, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
  try {
    await mkdir(folder, { recursive: true });
    await writeFile(temp, `${chunks.join('\n')}\n`);
    await rename(temp, hintPath(objectsDir, first));
  } catch {
    await rm(temp, { force: true }).catch(() => undefined);
  }
}

/** A hint is named by the hash part of the first chunk's digest; its first line is all of it. */
export function hintPath(objectsDir: string, first: Digest): string {
  return join(objectsDir, HINTS_DIR, hintName(first));
}

export function hintName(first: Digest): string {
  return first.slice(0, 32);
}
