import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fsyncFolderAsync, toArtifactWriteError, writeAndRename } from './durable-file.js';
import type { Digest } from './ids.js';
import { objectPath } from './object-layout.js';

/**
 * Writes the objects of one snapshot with a few writes in flight on the libuv pool while the
 * caller keeps hashing, and fsyncs each folder once at the end instead of once per object.
 * Nothing counts as durable before `finish()` resolves: every object file was fsynced before
 * its rename, and every folder that holds an object of the snapshot, new or reused, has been
 * fsynced since (docs/artifacts.md, "Durability").
 */
export class ObjectWriter {
  readonly #objectsDir: string;
  readonly #maxInFlight: number;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #folders = new Set<string>();
  readonly #knownFolders = new Set<string>();
  #madeFolder = false;
  readonly #queued = new Set<Digest>();
  #failure: unknown;

  constructor(objectsDir: string, options: { maxInFlight: number }) {
    this.#objectsDir = objectsDir;
    this.#maxInFlight = options.maxInFlight;
  }

  /**
   * Makes sure the object is stored, writing `bytes` unless it already is. Answers whether it
   * wrote. `bytes` must have been checked against `digest` and stay unchanged until `done` is
   * called, which happens once they are no longer needed, whether written or not.
   */
  async put(digest: Digest, bytes: Uint8Array, done: () => void = () => {}): Promise<boolean> {
    try {
      this.#throwIfFailed();
    } catch (error) {
      done();
      throw error;
    }
    const target = objectPath(this.#objectsDir, digest);
    const folder = dirname(target);
    this.#folders.add(folder);
    if (this.#queued.has(digest) || existsSync(target)) {
      done();
      return false;
    }
    this.#queued.add(digest);

    while (this.#inFlight.size >= this.#maxInFlight) {
      await Promise.race(this.#inFlight);
    }
    const write = this.#write(folder, target, bytes).then(
      () => done(),
      (error: unknown) => {
        done();
        this.#failure ??= error;
      },
    );
    this.#inFlight.add(write);
    void write.finally(() => this.#inFlight.delete(write));
    return true;
  }

  /** Waits for every write, then fsyncs each folder touched; throws the first failure. */
  async finish(): Promise<void> {
    await Promise.all(this.#inFlight);
    this.#throwIfFailed();
    // A new fan-out folder is itself an entry of the objects folder.
    if (this.#madeFolder) this.#folders.add(this.#objectsDir);
    try {
      await Promise.all([...this.#folders].map((folder) => fsyncFolderAsync(folder)));
    } catch (error) {
      throw toArtifactWriteError(error, this.#objectsDir);
    }
  }

  /** Lets writes in flight settle after a failure elsewhere, so none outlives the snapshot. */
  async abandon(): Promise<void> {
    await Promise.all(this.#inFlight);
  }

  async #write(folder: string, target: string, bytes: Uint8Array): Promise<void> {
    if (!this.#knownFolders.has(folder)) {
      const made = await mkdir(folder, { recursive: true }).catch((error: unknown) => {
        throw toArtifactWriteError(error, folder);
      });
      if (made !== undefined) this.#madeFolder = true;
      this.#knownFolders.add(folder);
    }
    await writeAndRename(target, [bytes]);
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }
}
