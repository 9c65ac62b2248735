import { existsSync, mkdirSync, readdirSync, readFileSync, type Stats, statSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Piscina } from 'piscina';
import { writeFileDurably } from './durable-file.js';
import { ArtifactError, NotFoundError } from './errors.js';
import { getHasher } from './hash.js';
import type { Digest } from './ids.js';
import { decodeManifest, encodeManifest, type Manifest } from './manifest.js';
import { objectPath } from './object-layout.js';
import type { SnapshotFailure, SnapshotResult, SnapshotTask } from './snapshot-worker.js';

/** What logging a file or directory recorded. */
export interface Snapshot {
  manifest: Digest;
  kind: 'file' | 'dir';
  size: number;
  fileCount: number;
  newBytes: number;
}

/**
 * The content-addressed object folder of a store. Chunks and manifests are objects named by
 * their digest; identical content is stored once however often and wherever it is logged.
 * Snapshotting runs in a worker pool so that hashing a large checkpoint never stalls the
 * caller's event loop (a training loop keeps stepping).
 */
export class ArtifactStore {
  readonly dir: string;
  #pool: Piscina<SnapshotTask, SnapshotResult | SnapshotFailure> | undefined;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
  }

  /** Records the bytes of a file or directory as they are now. Resolves once durable. */
  async snapshot(source: string): Promise<Snapshot> {
    const stats = statOrThrow(source);
    if (stats.isFile()) {
      const result = await this.#snapshotFile(source);
      const manifest: Manifest = { v: 1, type: 'file', size: result.size, chunks: result.chunks };
      const digest = await this.putObject(encodeManifest(manifest));
      return {
        manifest: digest,
        kind: 'file',
        size: result.size,
        fileCount: 1,
        newBytes: result.newBytes,
      };
    }
    if (!stats.isDirectory()) {
      throw new ArtifactError('not_a_file', `${source} is neither a file nor a directory`, {
        hint: 'Log regular files or directories of them.',
      });
    }

    const files = listFiles(source);
    const results = await Promise.all(files.map((file) => this.#snapshotFile(join(source, file))));
    const entries = files.map((file, i) => {
      const result = results[i] as SnapshotResult;
      return { path: file.split(sep).join('/'), size: result.size, chunks: result.chunks };
    });
    const size = entries.reduce((total, entry) => total + entry.size, 0);
    const digest = await this.putObject(encodeManifest({ v: 1, type: 'dir', size, entries }));
    const newBytes = results.reduce((total, result) => total + result.newBytes, 0);
    return { manifest: digest, kind: 'dir', size, fileCount: files.length, newBytes };
  }

  /** Stores a small object from memory (manifests) and returns its digest. */
  async putObject(bytes: Uint8Array): Promise<Digest> {
    const digest = (await getHasher()).digest(bytes);
    const target = objectPath(this.dir, digest);
    if (!existsSync(target)) writeFileDurably(target, bytes);
    return digest;
  }

  /** Stores an object received from elsewhere after checking it matches its digest. */
  async putVerified(digest: Digest, bytes: Uint8Array): Promise<void> {
    const actual = (await getHasher()).digest(bytes);
    if (actual !== digest) {
      throw new ArtifactError('digest_mismatch', `received bytes do not match object ${digest}`, {
        retryable: true,
      });
    }
    const target = objectPath(this.dir, digest);
    if (!existsSync(target)) writeFileDurably(target, bytes);
  }

  has(digest: Digest): boolean {
    return existsSync(objectPath(this.dir, digest));
  }

  /** Reads an object and checks its bytes against its digest (invariant 4). */
  async read(digest: Digest): Promise<Buffer> {
    const path = objectPath(this.dir, digest);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (error) {
      throw new NotFoundError('object_missing', `object ${digest} is not in ${this.dir}`, {
        hint: "Run 'tidemark verify' to list missing objects.",
        cause: error,
      });
    }
    if ((await getHasher()).digest(bytes) !== digest) {
      throw new ArtifactError('object_corrupt', `object ${digest} does not match its digest`, {
        hint: "Run 'tidemark verify'; if the run was synced, 'tidemark get' can fetch it again.",
      });
    }
    return bytes;
  }

  async readManifest(digest: Digest): Promise<Manifest> {
    return decodeManifest(await this.read(digest), digest);
  }

  /**
   * Writes the file or directory a manifest describes to `out`. Each file is assembled in a
   * temp name beside its target and renamed into place, so a failed restore leaves no torn file.
   */
  async restore(manifestDigest: Digest, out: string): Promise<Manifest> {
    const manifest = await this.readManifest(manifestDigest);
    const files =
      manifest.type === 'file'
        ? [{ path: out, chunks: manifest.chunks }]
        : manifest.entries.map((entry) => ({
            path: join(out, ...entry.path.split('/')),
            chunks: entry.chunks,
          }));
    if (manifest.type === 'dir') await mkdir(out, { recursive: true });

    for (const file of files) {
      await mkdir(dirname(file.path), { recursive: true });
      const temp = `${file.path}.tidemark-partial`;
      const handle = await open(temp, 'w');
      try {
        for (const chunk of file.chunks) {
          await handle.write(await this.read(chunk));
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, file.path);
    }
    return manifest;
  }

  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.destroy();
  }

  async #snapshotFile(source: string): Promise<SnapshotResult> {
    this.#pool ??= new Piscina<SnapshotTask, SnapshotResult | SnapshotFailure>({
      filename: new URL('./snapshot-worker.js', import.meta.url).href,
      maxThreads: 2,
      idleTimeout: 2000,
    });
    const result = await this.#pool.run({ source, objectsDir: this.dir });
    if ('failed' in result) {
      const { code, message, hint, retryable } = result.failed;
      throw new ArtifactError(code, message, {
        retryable,
        ...(hint === undefined ? {} : { hint }),
      });
    }
    return result;
  }
}

function statOrThrow(source: string): Stats {
  try {
    return statSync(source);
  } catch (error) {
    throw new ArtifactError('source_missing', `cannot read ${source}`, {
      hint: 'Check the path; it must exist when the artifact is logged.',
      cause: error,
    });
  }
}

/** Relative paths of every regular file below `root`, sorted so manifests are stable. */
function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const full = join(folder, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) out.push(relative(root, full));
    }
  };
  walk(root);
  return out.sort();
}
