import { type RunId, type Seq, type Store, ValidationError } from '@tidemark/core';
import { type ReplayContext, replayBatch } from './replay-batch.js';
import { planRequests } from './request-batches.js';
import type { SyncLedger } from './sync-ledger.js';

/** Which quarantined runs a pass releases: all of this remote's, or the ones named. */
export type ReleaseRequest = 'all' | readonly string[];

export interface ReleaseContext {
  store: Store;
  ledger: SyncLedger;
  replay: ReplayContext;
  limits: { maxEntries: number; maxPoints: number; maxRequestBytes: number };
  /** The last journal entry of the pass; later ones are left to the next pass. */
  end: Seq;
  signal?: AbortSignal;
}

/**
 * Picks the runs to release from those held back for the remote. A named run that is not held
 * is refused before anything is sent, so a typo never passes for a release.
 */
export function runsToRelease(
  held: ReadonlyMap<RunId, string>,
  request: ReleaseRequest | undefined,
  remote: string,
): RunId[] {
  if (request === undefined) return [];
  if (request === 'all') return [...held.keys()];

  for (const runId of request) {
    if (!held.has(runId as RunId)) {
      throw new ValidationError(
        'not_quarantined',
        `run ${runId} is not quarantined for ${remote}`,
        {
          hint: "'tidemark daemon status' lists the quarantined runs; --retry-quarantined releases them all.",
        },
      );
    }
  }
  return [...new Set(request)] as RunId[];
}

/**
 * Sends every journal entry of a released run again, from its first up to the pass's end: its
 * skipped entries lie behind the cursor, and the server answers `duplicate` for those it had
 * applied before the run was held back (protocol: Exactly once).
 *
 * The quarantine row is dropped only once every entry was answered, so a pass that fails or is
 * killed midway leaves the run held and the next release starts it over. A run the server
 * refuses again is quarantined anew with the new reason. Answers whether the run was released.
 */
export async function replayReleasedRun(ctx: ReleaseContext, runId: RunId): Promise<boolean> {
  if (!(await replayRunEntries(ctx, runId, ctx.end))) return false;
  ctx.ledger.release(runId);
  return true;
}

/**
 * Sends every journal entry of a run again, from its first up to `end`, and with them the
 * objects they refer to that the server lacks. The server answers `duplicate` for the entries it
 * had applied and changes nothing for them; what it lost, a chunk found damaged and set aside
 * included, is sent again. Answers false when the run was quarantined on the way.
 */
export async function replayRunEntries(
  ctx: ReleaseContext,
  runId: RunId,
  end: Seq,
): Promise<boolean> {
  const { replay } = ctx;
  let after = 0 as Seq;

  while (!replay.isQuarantined(runId)) {
    const page = ctx.store.journal
      .readRun(runId, after, ctx.limits)
      .filter((entry) => entry.seq <= end);
    if (page.length === 0) break;

    const plan = planRequests(page, ctx.limits.maxRequestBytes);
    for (const entry of plan.oversized) {
      replay.quarantine(runId, `op ${entry.op.id} is larger than a request may carry`);
    }
    for (const request of plan.requests) {
      ctx.signal?.throwIfAborted();
      if (replay.isQuarantined(runId)) break;
      await replayBatch(
        replay,
        request.map((entry) => entry.op),
      );
    }
    after = (page.at(-1) as (typeof page)[number]).seq;
  }
  return !replay.isQuarantined(runId);
}
