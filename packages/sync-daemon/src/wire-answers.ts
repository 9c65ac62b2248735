import {
  type ChunkRefusal,
  type Digest,
  isDigest,
  type OpsRequest,
  type OpsResponse,
} from '@tidemark/core';
import type { HealthAnswer, WhoAmI } from './remote-client.js';
import { RemoteError } from './remote-error.js';

const OP_STATUSES = new Set(['applied', 'duplicate', 'rejected']);

/**
 * Checks an ops answer against the request it answers: one result per op, same ids, same
 * order (protocol: Exactly once). Anything else could make the cursor pass an op the server
 * never applied, so it is a protocol error and the cursor stays.
 */
export function checkOpsResponse(
  request: OpsRequest,
  body: unknown,
  endpoint: string,
): OpsResponse {
  const results = isObject(body) ? body.results : undefined;
  if (!Array.isArray(results) || results.length !== request.ops.length) {
    throw RemoteError.protocol(endpoint, `expected ${request.ops.length} results`);
  }

  return {
    results: results.map((result: unknown, i) => {
      const op = request.ops[i];
      if (
        !isObject(result) ||
        op === undefined ||
        result.id !== op.id ||
        !OP_STATUSES.has(result.status as string)
      ) {
        throw RemoteError.protocol(endpoint, `result ${i} does not answer op ${op?.id ?? '?'}`);
      }
      return {
        id: op.id,
        status: result.status as OpsResponse['results'][number]['status'],
        ...(typeof result.code === 'string' ? { code: result.code } : {}),
        ...(typeof result.reason === 'string' ? { reason: result.reason } : {}),
      };
    }),
  };
}

/** Checks a missing-chunks answer: digests, each one that was asked about. */
export function checkMissing(asked: readonly Digest[], body: unknown, endpoint: string): Digest[] {
  const missing = isObject(body) ? body.missing : undefined;
  if (!Array.isArray(missing) || !missing.every(isDigest)) {
    throw RemoteError.protocol(endpoint, 'the answer is not a list of digests');
  }

  const wanted = new Set<string>(asked);
  if (!missing.every((digest) => wanted.has(digest))) {
    throw RemoteError.protocol(endpoint, 'the answer names a digest that was not asked about');
  }
  return [...new Set(missing)];
}

/** The refusals of a `POST /api/v1/chunks/batch` answer, each naming a chunk of the batch. */
export function checkRefusals(
  sent: readonly Digest[],
  body: unknown,
  endpoint: string,
): ChunkRefusal[] {
  const refused = isObject(body) ? body.refused : undefined;
  const wanted = new Set<string>(sent);
  if (
    !Array.isArray(refused) ||
    !refused.every(
      (item) =>
        isObject(item) &&
        isDigest(item.digest) &&
        wanted.has(item.digest) &&
        typeof item.code === 'string' &&
        typeof item.message === 'string',
    )
  ) {
    throw RemoteError.protocol(endpoint, 'the answer is not a list of refusals of chunks sent');
  }
  return refused.map((item: ChunkRefusal) => ({
    digest: item.digest,
    code: item.code,
    message: item.message,
  }));
}

export function checkHealth(body: unknown, endpoint: string): HealthAnswer {
  if (!isObject(body) || body.ok !== true || typeof body.protocol !== 'number') {
    throw RemoteError.protocol(endpoint, 'the answer is not a health report');
  }
  return { ok: true, protocol: body.protocol };
}

export function checkWhoAmI(body: unknown, endpoint: string): WhoAmI {
  if (
    !isObject(body) ||
    typeof body.token !== 'string' ||
    !Array.isArray(body.projects) ||
    !body.projects.every((project) => typeof project === 'string')
  ) {
    throw RemoteError.protocol(endpoint, 'the answer does not describe a token');
  }
  return { token: body.token, projects: [...body.projects] };
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
