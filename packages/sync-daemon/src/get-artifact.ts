import {
  type ArtifactStore,
  type Digest,
  decodeManifest,
  getHasher,
  getRun,
  isDigest,
  isTidemarkError,
  type Manifest,
  NotFoundError,
  objectPath,
  type RunDetail,
  readSeries,
  restoreManifest,
  type SeriesPoint,
  writeFileDurablyAsync,
} from '@tidemark/core';
import type Database from 'better-sqlite3';
import type { RemoteClient } from './remote-client.js';
import { isRemoteError, RemoteError } from './remote-error.js';

export interface GetArtifactOptions {
  runId: string;
  /** The path the artifact was logged at (`upload`), or a file series with `step`. */
  path: string;
  /** Picks the point of a file series (`logFile`) instead of an uploaded artifact. */
  step?: number;
  /** The file or folder to create; its parent must exist or be creatable. */
  out: string;
  /** Replace whatever is at `out` with exactly the artifact; otherwise an existing `out` is refused. */
  replace?: boolean;
  /**
   * The local store: tried first, chunk by chunk. Its database is only read; objects of one of
   * its runs that it lacks or holds damaged are written back once downloaded and verified.
   */
  local?: { db: Database.Database; objects: ArtifactStore };
  /** A server to fetch from when the run or some of its objects are not local. */
  remote?: RemoteClient;
}

export interface GetArtifactReport {
  runId: string;
  path: string;
  step: number | null;
  kind: 'file' | 'dir';
  manifest: Digest;
  out: string;
  files: number;
  bytes: number;
  /** Objects read from the local store and downloaded from the server. */
  localObjects: number;
  remoteObjects: number;
  /** Downloaded objects written back to the local store, which lacked them or held them damaged. */
  storedObjects: number;
  /** Why writing downloaded objects back to the local store stopped; the restore is unaffected. */
  storeFailure: { code: string; message: string } | null;
}

/** Chunks fetched ahead of the one being written when downloading. */
const PREFETCH = 4;

/**
 * Restores an artifact of a run to `out`: from the local store when it holds the run, object
 * by object, and from the server for the run or for any object the store lacks or finds
 * damaged. Every object is checked against its digest wherever it comes from (invariant 4):
 * the local store verifies on read and `RemoteClient.getChunk` verifies what it downloads.
 * When the run is one of the local store's own, each downloaded object is put back into it,
 * so `tidemark verify` passes afterwards; a failure to put back is answered in `storeFailure`
 * and never fails the restore. `out` is written all or nothing (`restoreManifest`).
 */
export async function getArtifact(options: GetArtifactOptions): Promise<GetArtifactReport> {
  const { local, remote } = options;
  const counts = { localObjects: 0, remoteObjects: 0, storedObjects: 0 };
  let storeFailure: GetArtifactReport['storeFailure'] = null;
  const found = locateLocally(options) ?? (await locateRemotely(options));

  // Only objects of a run the local store holds go back into it: anything else is not its own
  // and gc would remove it again.
  const putBack = async (digest: Digest, bytes: Buffer): Promise<void> => {
    if (local === undefined || !found.local || storeFailure !== null) return;
    try {
      if (await storeAgain(local.objects, digest, bytes)) counts.storedObjects += 1;
    } catch (error) {
      const why = isTidemarkError(error)
        ? error.message
        : ((error as NodeJS.ErrnoException).code ?? String(error));
      storeFailure = {
        code: isTidemarkError(error) ? error.code : 'write_failed',
        message: `putting object ${digest} back into ${local.objects.dir} failed: ${why}`,
      };
    }
  };

  const readObject = async (digest: Digest): Promise<Buffer> => {
    if (local?.objects.has(digest)) {
      try {
        const bytes = await local.objects.read(digest);
        counts.localObjects += 1;
        return bytes;
      } catch (error) {
        if (remote === undefined || !isTidemarkError(error)) throw error;
      }
    }
    if (remote === undefined || found.project === undefined) throw notLocal(digest);
    const bytes = await download(remote, found.project, digest);
    counts.remoteObjects += 1;
    await putBack(digest, bytes);
    return bytes;
  };

  const manifest = decodeManifest(await readObject(found.manifest), found.manifest);
  const result = await restoreManifest(manifest, options.out, inOrderAhead(manifest, readObject), {
    replace: options.replace === true,
  });
  return {
    runId: options.runId,
    path: options.path,
    step: options.step ?? null,
    kind: manifest.type,
    manifest: found.manifest,
    out: options.out,
    files: result.files,
    bytes: result.bytes,
    ...counts,
    storeFailure,
  };
}

interface Located {
  manifest: Digest;
  /** The run's project, known once the server has been asked; needed to download objects. */
  project: string | undefined;
  /** The run is in the local store, so its objects belong there. */
  local: boolean;
}

function locateLocally(options: GetArtifactOptions): Located | undefined {
  const { local, remote } = options;
  if (local === undefined) return undefined;
  let run: RunDetail;
  try {
    run = getRun(local.db, options.runId);
  } catch (error) {
    if (error instanceof NotFoundError && remote !== undefined) return undefined;
    throw error;
  }
  const points =
    options.step === undefined ? [] : readSeries(local.db, options.runId, options.path);
  const manifest = pickManifest(run, points, options);
  return { manifest, project: remote === undefined ? undefined : run.project, local: true };
}

async function locateRemotely(options: GetArtifactOptions): Promise<Located> {
  const { remote } = options;
  if (remote === undefined) {
    throw new NotFoundError('run_not_found', `no run ${options.runId} in the local store`, {
      hint: 'Pass --remote (or set TIDEMARK_REMOTE) to fetch it from a server.',
    });
  }
  const run = await remote.getRun(options.runId);
  const points =
    options.step === undefined ? [] : (await remote.getSeries(options.runId, options.path)).points;
  return { manifest: pickManifest(run, points, options), project: run.project, local: false };
}

function pickManifest(
  run: RunDetail,
  points: readonly SeriesPoint[],
  options: GetArtifactOptions,
): Digest {
  if (options.step === undefined) {
    const file = run.files.find((f) => f.path === options.path);
    if (file !== undefined && isDigest(file.manifest)) return file.manifest;
    throw new NotFoundError('file_not_found', `run ${run.id} has no file ${options.path}`, {
      hint: `'tidemark show ${run.id}' lists its files; for a file series pass --step.`,
    });
  }
  const point = points.findLast((p) => p.step === options.step);
  if (point !== undefined && isDigest(point.value)) return point.value;
  throw new NotFoundError(
    'file_not_found',
    `file series ${options.path} of run ${run.id} has no point at step ${options.step}`,
    { hint: `'tidemark show ${run.id}' lists its series and their last step.` },
  );
}

/**
 * Wraps `read` for a restore that asks for the manifest's chunks in order: while one chunk is
 * written the next few are already on their way.
 */
function inOrderAhead(
  manifest: Manifest,
  read: (digest: Digest) => Promise<Buffer>,
): (digest: Digest) => Promise<Buffer> {
  const order =
    manifest.type === 'file' ? manifest.chunks : manifest.entries.flatMap((e) => e.chunks);
  const started = new Map<number, Promise<Buffer>>();
  let position = 0;
  const start = (i: number): void => {
    const digest = order[i];
    if (digest === undefined || started.has(i)) return;
    const pending = read(digest);
    pending.catch(() => undefined);
    started.set(i, pending);
  };

  return (digest) => {
    if (order[position] !== digest) return read(digest);
    for (let i = position; i < position + PREFETCH; i++) start(i);
    const pending = started.get(position) as Promise<Buffer>;
    started.delete(position);
    position += 1;
    return pending;
  };
}

/**
 * Puts a downloaded object into the local store and answers whether it wrote. A missing one
 * takes the store's own put path; a damaged one is replaced by the same durable recipe (temp
 * file, fsync, rename over it, fsync the folder), since `putVerified` keeps any existing file.
 */
async function storeAgain(objects: ArtifactStore, digest: Digest, bytes: Buffer): Promise<boolean> {
  if (!objects.has(digest)) {
    await objects.putVerified(digest, bytes);
    return true;
  }
  if ((await getHasher()).digest(bytes) !== digest) return false;
  await writeFileDurablyAsync(objectPath(objects.dir, digest), bytes);
  return true;
}

/** `getChunk`, with an answer the user can act on when the server does not hold the object. */
async function download(remote: RemoteClient, project: string, digest: Digest): Promise<Buffer> {
  try {
    return await remote.getChunk(project, digest);
  } catch (error) {
    if (!isRemoteError(error) || error.status !== 404) throw error;
    throw new RemoteError(
      'rejected',
      `${error.message}: the server does not hold object ${digest} of project ${project}`,
      {
        status: 404,
        ...(error.serverCode === undefined ? {} : { serverCode: error.serverCode }),
        hint:
          'The server never received this object, or found its copy damaged and set it aside. ' +
          "On a machine whose store holds the run intact, run 'tidemark sync --resend <run>', " +
          'which sends the run again with every object the server lacks; then run get again.',
        cause: error,
      },
    );
  }
}

function notLocal(digest: Digest): NotFoundError {
  return new NotFoundError('object_missing', `object ${digest} is not in the local store`, {
    hint: "Pass --remote (or set TIDEMARK_REMOTE) to fetch it from a server, or run 'tidemark verify'.",
  });
}
