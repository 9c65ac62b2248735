import {
  ArtifactError,
  type ChunkBatchResponse,
  type Digest,
  digestSize,
  getHasher,
  isDigest,
  isProjectName,
  type Logger,
  type MissingChunksResponse,
  NotFoundError,
  type TidemarkError,
} from '@tidemark/core';
import { assertProjectAccess } from './auth.js';
import { BodyBuffers } from './body-buffers.js';
import { type BatchOutcome, batchDigests, readChunkBatch } from './chunk-batch.js';
import { type ChunkStore, reuploadHint } from './chunk-store.js';
import { badRequest, RequestError } from './errors.js';
import { readBodyInto, readJson } from './http-io.js';
import type { ServerLimits } from './limits.js';
import { projectParam } from './query-params.js';
import type { Router } from './router.js';
import { UploadsInProgress } from './uploads-in-progress.js';

/**
 * The chunk endpoints. Every answer is about the named project only: presence, upload and
 * download never consult what other projects hold (invariant 9). A batch logs, at debug level,
 * what became of each chunk it carried (`chunk_received`, status 0 for one cut off mid-way).
 */
export function addChunkRoutes(
  router: Router,
  chunks: ChunkStore,
  limits: ServerLimits,
  clock: () => number,
  logger: Logger,
): void {
  // As many as uploads usually run at once; more are allocated when needed, and dropped after.
  const buffers = new BodyBuffers(limits.maxChunkBytes, 8);
  const uploads = new UploadsInProgress();

  router.add('POST', '/api/v1/chunks/missing', async ({ req, principal }) => {
    const body = await readJson(req, limits.maxJsonBodyBytes);
    const { project, digests } = parseMissingRequest(body, limits.maxDigestsPerRequest);
    assertProjectAccess(principal, project);
    await uploads.settled(project, limits.presenceWaitMs);
    const answer: MissingChunksResponse = { missing: chunks.missing(project, digests) };
    return { status: 200, json: answer };
  });

  router.add('POST', '/api/v1/chunks/commit', async ({ req, principal }) => {
    const body = await readJson(req, limits.maxJsonBodyBytes);
    const { project, digests } = parseMissingRequest(body, limits.maxDigestsPerRequest);
    assertProjectAccess(principal, project);
    await uploads.settled(project, limits.presenceWaitMs);
    const answer: MissingChunksResponse = { missing: await chunks.commit(project, digests) };
    return { status: 200, json: answer };
  });

  router.add('PUT', '/api/v1/chunks/:digest', async ({ req, url, params, principal }) => {
    const digest = digestParam(params.digest);
    const project = projectParam(url);
    assertProjectAccess(principal, project);
    const size = digestSize(digest);
    if (size > limits.maxChunkBytes) {
      throw new RequestError(
        413,
        'body_too_large',
        `chunk ${digest} is larger than ${limits.maxChunkBytes} bytes`,
        {
          hint: 'Chunks are cut at 4 MiB by tidemark clients; this one was not.',
        },
      );
    }
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) !== size) throw mismatch(digest);

    // The server re-hashes every chunk it receives and trusts no digest a client names (invariant 4).
    const hashing = (await getHasher()).stream();
    const buffer = buffers.take();
    try {
      const stored = await uploads.track(project, async () => {
        const bytes = await readBodyInto(req, buffer.subarray(0, size), (piece) =>
          hashing.update(piece),
        );
        if (bytes === undefined || hashing.digest() !== digest) throw mismatch(digest);
        return chunks.put(project, digest, bytes, clock(), await getHasher());
      });
      return { status: stored ? 201 : 200, json: { stored } };
    } finally {
      buffers.give(buffer);
    }
  });

  router.add('POST', '/api/v1/chunks/batch', async ({ req, url, principal }) => {
    const project = projectParam(url);
    assertProjectAccess(principal, project);
    const digests = batchDigests(url, limits);

    // Each chunk is checked and kept as soon as it is whole; one refused does not stop the rest.
    const answer: ChunkBatchResponse = { stored: 0, refused: [] };
    const hasher = await getHasher();
    const refuse = (digest: Digest, error: TidemarkError, status: number): void => {
      answer.refused.push({ digest, code: error.code, message: error.message });
      logger.debug('chunk_received', { project, digest, status });
    };
    const batch = {
      take: async (
        digest: Digest,
        pieces: readonly Buffer[],
        outcome: BatchOutcome,
      ): Promise<void> => {
        if (outcome === 'mismatch') {
          refuse(digest, mismatch(digest), 400);
          return;
        }
        try {
          const stored = await chunks.put(project, digest, pieces, clock(), hasher);
          if (stored) answer.stored += 1;
          logger.debug('chunk_received', { project, digest, status: stored ? 201 : 200 });
        } catch (error) {
          if (!(error instanceof RequestError) || error.code !== 'digest_collision') throw error;
          refuse(digest, error, error.status);
        }
      },
      cut: (digest: Digest) => logger.debug('chunk_received', { project, digest, status: 0 }),
    };
    await uploads.track(project, () => readChunkBatch(req, digests, hasher, batch));
    return { status: 200, json: answer };
  });

  router.add('GET', '/api/v1/chunks/:digest', async ({ url, params, principal }) => {
    const digest = digestParam(params.digest);
    const project = projectParam(url);
    assertProjectAccess(principal, project);
    if (!chunks.holds(project, digest)) {
      throw new NotFoundError('chunk_not_found', `project ${project} holds no chunk ${digest}`, {
        hint: reuploadHint(project, digest),
      });
    }
    const bytes = await chunks.readAsync(project, digest, await getHasher());
    return { status: 200, bytes, contentType: 'application/octet-stream' };
  });
}

function parseMissingRequest(body: unknown, max: number): { project: string; digests: Digest[] } {
  const request = body as { project?: unknown; digests?: unknown } | null;
  if (typeof request !== 'object' || request === null || !Array.isArray(request.digests)) {
    throw badRequest('invalid_request', 'the body must be an object { project, digests: [...] }');
  }
  if (!isProjectName(request.project)) {
    throw badRequest('invalid_project', 'project is not a valid project name');
  }
  if (request.digests.length > max) {
    throw badRequest(
      'too_many_digests',
      `a request asks about at most ${max} digests`,
      'Split the list.',
    );
  }
  const bad = request.digests.findIndex((digest) => !isDigest(digest));
  if (bad !== -1) throw badRequest('invalid_digest', `digests[${bad}] is not a digest`);
  return { project: request.project, digests: request.digests as Digest[] };
}

function digestParam(value: string | undefined): Digest {
  if (!isDigest(value)) {
    throw badRequest(
      'invalid_digest',
      'the path does not end in a digest',
      "Digests look like '<32 hex>-<size>'.",
    );
  }
  return value;
}

function mismatch(digest: Digest): ArtifactError {
  return new ArtifactError('digest_mismatch', `the bytes received do not match chunk ${digest}`, {
    hint: "Upload the chunk again; if this repeats, run 'tidemark verify' on the sending store.",
    retryable: true,
  });
}
