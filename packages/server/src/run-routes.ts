import {
  ArtifactError,
  type Digest,
  decodeManifest,
  getHasher,
  type Hasher,
  isProjectName,
  isRunId,
  type Manifest,
  NotFoundError,
} from '@tidemark/core';
import { assertProjectAccess, canAccess, type Principal } from './auth.js';
import { type ChunkStore, reuploadHint } from './chunk-store.js';
import { badRequest } from './errors.js';
import type { Reply } from './http-io.js';
import type { ServerLimits } from './limits.js';
import { integerParam } from './query-params.js';
import type { Router } from './router.js';
import type { RunQueries } from './run-queries.js';

const DEFAULT_PAGE = 100;

/**
 * The query endpoints. A run of a project the token cannot see answers exactly like a run
 * that does not exist (404), so ids cannot be probed across projects (invariant 9).
 */
export function addRunRoutes(
  router: Router,
  queries: RunQueries,
  chunks: ChunkStore,
  limits: ServerLimits,
): void {
  router.add('GET', '/api/v1/runs', ({ url, principal }) => {
    const limit = integerParam(url, 'limit', DEFAULT_PAGE, limits.maxRunsPerPage);
    const project = url.searchParams.get('project');
    if (project === null) {
      return { status: 200, json: { runs: queries.listRuns(principal.projects, limit) } };
    }
    if (!isProjectName(project))
      throw badRequest('invalid_project', 'project is not a valid project name');
    assertProjectAccess(principal, project);
    return { status: 200, json: { runs: queries.listRuns([project], limit) } };
  });

  router.add('GET', '/api/v1/runs/:id', ({ params, principal }) => {
    const { runId } = visibleRun(queries, principal, params.id);
    return { status: 200, json: queries.getRun(runId) };
  });

  router.add('GET', '/api/v1/runs/:id/series', ({ url, params, principal }) => {
    const { runId } = visibleRun(queries, principal, params.id);
    const path = url.searchParams.get('path');
    if (path === null)
      throw badRequest(
        'missing_path',
        'the query parameter path is required',
        '?path=metrics/loss',
      );
    const series = queries.readSeries(runId, path);
    if (series === undefined) {
      throw new NotFoundError('series_not_found', `run ${runId} has no series ${path}`, {
        hint: `GET /api/v1/runs/${runId} lists its series.`,
      });
    }
    return { status: 200, json: series };
  });

  router.add('GET', '/api/v1/runs/:id/files/*path', async ({ url, params, principal }) => {
    const { runId, project } = visibleRun(queries, principal, params.id);
    const path = params.path as string;
    const file = queries.getFile(runId, path);
    if (file === undefined) {
      throw new NotFoundError('file_not_found', `run ${runId} has no file ${path}`, {
        hint: `GET /api/v1/runs/${runId} lists its files.`,
      });
    }

    // The run's project's own copies: what its clients uploaded, never another project's.
    const hasher = await getHasher();
    const manifestBytes = chunks.read(project, file.manifest as Digest, hasher);
    const manifest = decodeManifest(manifestBytes, file.manifest);
    if (manifest.type === 'dir' || url.searchParams.get('manifest') === '1') {
      return { status: 200, json: manifest };
    }
    return streamFile(project, manifest, chunks, hasher);
  });
}

/** The run of the path and its project if the principal may see that run; 404 otherwise. */
function visibleRun(
  queries: RunQueries,
  principal: Principal,
  id: string | undefined,
): { runId: string; project: string } {
  const project = id !== undefined && isRunId(id) ? queries.runProject(id) : undefined;
  if (id === undefined || project === undefined || !canAccess(principal, project)) {
    throw new NotFoundError('run_not_found', `no run ${id ?? ''} on this server`, {
      hint: 'GET /api/v1/runs lists the runs this token can see.',
    });
  }
  return { runId: id, project };
}

/**
 * Answers a file's bytes chunk by chunk, each checked against its digest as it is read
 * (invariant 4). Every chunk is looked for before the headers go out, so a missing one still
 * answers with a status; one found corrupt mid-stream cuts the connection instead.
 */
function streamFile(
  project: string,
  manifest: Extract<Manifest, { type: 'file' }>,
  chunks: ChunkStore,
  hasher: Hasher,
): Reply {
  const absent = manifest.chunks.find((chunk) => !chunks.onDisk(project, chunk));
  if (absent !== undefined) {
    throw new ArtifactError(
      'chunk_missing',
      `chunk ${absent} of this file is missing on the server`,
      { hint: reuploadHint(project, absent) },
    );
  }

  async function* pieces(): AsyncGenerator<Uint8Array> {
    for (const chunk of manifest.chunks) yield await chunks.readAsync(project, chunk, hasher);
  }
  return {
    status: 200,
    stream: pieces(),
    size: manifest.size,
    contentType: 'application/octet-stream',
  };
}
