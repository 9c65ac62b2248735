import type { Logger, Op, OpsResponse, RunId } from '@tidemark/core';
import type { ChunkUploader } from './chunk-uploader.js';
import type { RemoteClient } from './remote-client.js';
import { RemoteError } from './remote-error.js';
import { checkOpsResponse } from './wire-answers.js';

export interface ReplayCounts {
  opsSent: number;
  opsApplied: number;
  opsDuplicate: number;
  opsSkipped: number;
  requests: number;
}

/** What replaying one request needs from the pass around it. */
export interface ReplayContext {
  remote: RemoteClient;
  storeId: string;
  uploader: ChunkUploader;
  counts: ReplayCounts;
  logger: Logger;
  isQuarantined(runId: RunId): boolean;
  quarantine(runId: RunId, reason: string): void;
}

/**
 * Replays one request's worth of ops and resolves once every op is settled: applied,
 * duplicate, or its run quarantined. Only then may the cursor pass them (invariant 3).
 *
 * Objects first, then the ops. An op refused with `missing_chunks` means the server no
 * longer holds what this pass believed it did: every belief is dropped, the server is asked
 * again, and the op is sent once more. A `forbidden` refusal ends the pass with an auth error,
 * since a better token fixes it; any other refusal quarantines the op's run (invariant 7). A
 * RemoteError is thrown as it is, leaving the cursor where it was.
 */
export async function replayBatch(ctx: ReplayContext, ops: readonly Op[]): Promise<void> {
  const ready = await settleObjects(ctx, ops, true);
  if (ready.length === 0) return;
  const retry = await send(ctx, ready, false);
  if (retry.length === 0) return;

  ctx.logger.info('missing_chunks_retry', { ops: retry.length });
  ctx.uploader.forget();
  const again = await settleObjects(ctx, retry, false);
  if (again.length === 0) return;
  await send(ctx, again, true);
}

/** Uploads what `ops` need; answers the ops still worth sending. */
async function settleObjects(
  ctx: ReplayContext,
  ops: readonly Op[],
  first: boolean,
): Promise<Op[]> {
  const problems = await ctx.uploader.ensure(ops.filter((op) => !ctx.isQuarantined(op.runId)));
  for (const [runId, reason] of problems) ctx.quarantine(runId, reason);

  const kept = ops.filter((op) => !ctx.isQuarantined(op.runId));
  if (first) ctx.counts.opsSkipped += ops.length - kept.length;
  return kept;
}

/** Sends ops and sorts the answers; answers the ops refused for missing objects, to retry. */
async function send(ctx: ReplayContext, ops: Op[], resend: boolean): Promise<Op[]> {
  const request = { storeId: ctx.storeId, ops };
  const response = checkOpsResponse(request, await ctx.remote.sendOps(request), 'POST /api/v1/ops');
  ctx.counts.requests += 1;
  if (!resend) ctx.counts.opsSent += ops.length;

  // A `forbidden` op is the token's problem, not its run's: the pass ends before any refusal of
  // this answer quarantines a run, and the cursor stays before the request (invariant 3).
  const denied = response.results.findIndex(
    (result) => result.status === 'rejected' && result.code === 'forbidden',
  );
  if (denied !== -1) throw RemoteError.forbidden('POST /api/v1/ops', (ops[denied] as Op).project);

  const retry: Op[] = [];
  response.results.forEach((result, i) => {
    const op = ops[i] as Op;
    if (result.status === 'applied') ctx.counts.opsApplied += 1;
    else if (result.status === 'duplicate') ctx.counts.opsDuplicate += 1;
    else if (result.code === 'missing_chunks' && !resend) retry.push(op);
    else ctx.quarantine(op.runId, refusal(result));
  });
  return retry;
}

function refusal(result: OpsResponse['results'][number]): string {
  const code = result.code ?? 'rejected';
  const reason = result.reason === undefined ? '' : `: ${result.reason.slice(0, 300)}`;
  return `refused by the server (${code})${reason}`;
}
