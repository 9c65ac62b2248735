import { getHasher } from '@tidemark/core';
import type { OpApplier } from './apply-ops.js';
import { readJson } from './http-io.js';
import type { ServerLimits } from './limits.js';
import { parseOpsEnvelope } from './op-validation.js';
import type { Router } from './router.js';

/** `POST /api/v1/ops`: apply a batch of replayed ops, each at most once (invariant 3). */
export function addOpsRoutes(router: Router, applier: OpApplier, limits: ServerLimits): void {
  router.add('POST', '/api/v1/ops', async ({ req, principal }) => {
    const body = await readJson(req, limits.maxOpsBodyBytes);
    const envelope = parseOpsEnvelope(body, limits.maxOpsPerRequest);
    const hasher = await getHasher();
    return { status: 200, json: applier.apply(principal, envelope, hasher) };
  });
}
