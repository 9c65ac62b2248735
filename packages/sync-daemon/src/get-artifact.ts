import {
  type ArtifactStore,
  type Digest,
  decodeManifest,
  getRun,
  isDigest,
  isTidemarkError,
  type Manifest,
  NotFoundError,
  type RunDetail,
  readSeries,
  restoreManifest,
  type SeriesPoint,
} from '@tidemark/core';
import type Database from 'better-sqlite3';
import type { RemoteClient } from './remote-client.js';

export interface GetArtifactOptions {
  runId: string;
  /** The path the artifact was logged at (`upload`), or a file series with `step`. */
  path: string;
  /** Picks the point of a file series (`logFile`) instead of an uploaded artifact. */
  step?: number;
  /** The file or folder to create; its parent must exist or be creatable. */
  out: string;
  /** The local store, read-only: tried first, chunk by chunk. */
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
}

/** Chunks fetched ahead of the one being written when downloading. */
const PREFETCH = 4;

/**
 * Restores an artifact of a run to `out`: from the local store when it holds the run, object
 * by object, and from the server for the run or for any object the store lacks or finds
 * damaged. Every object is checked against its digest wherever it comes from (invariant 4):
 * the local store verifies on read and `RemoteClient.getChunk` verifies what it downloads.
 */
export async function getArtifact(options: GetArtifactOptions): Promise<GetArtifactReport> {
  const { local, remote } = options;
  const counts = { localObjects: 0, remoteObjects: 0 };
  const found = locateLocally(options) ?? (await locateRemotely(options));

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
    const bytes = await remote.getChunk(found.project, digest);
    counts.remoteObjects += 1;
    return bytes;
  };

  const manifest = decodeManifest(await readObject(found.manifest), found.manifest);
  const result = await restoreManifest(manifest, options.out, inOrderAhead(manifest, readObject));
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
  };
}

interface Located {
  manifest: Digest;
  /** The run's project, known once the server has been asked; needed to download objects. */
  project: string | undefined;
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
  return { manifest, project: remote === undefined ? undefined : run.project };
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
  return { manifest: pickManifest(run, points, options), project: run.project };
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

function notLocal(digest: Digest): NotFoundError {
  return new NotFoundError('object_missing', `object ${digest} is not in the local store`, {
    hint: "Pass --remote (or set TIDEMARK_REMOTE) to fetch it from a server, or run 'tidemark verify'.",
  });
}
