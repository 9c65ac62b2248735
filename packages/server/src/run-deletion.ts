import { isRunId, NotFoundError } from '@tidemark/core';
import type Database from 'better-sqlite3';
import { canAccess } from './auth.js';
import type { Router } from './router.js';

/**
 * `DELETE /api/v1/runs/<id>`: removes a run and everything recorded for it, and leaves a
 * tombstone. Stores that still hold the run keep replaying its operations; the tombstone makes
 * the server refuse each of them with `run_deleted` (protocol: Deleted runs) instead of quietly
 * growing a headless copy of the run from its later points. Clients quarantine the run on that
 * answer, so a deleted run costs one refusal per store, never a retry loop.
 *
 * Every op of the run is refused from then on, one applied before the deletion and sent again
 * included: the answer a client acts on is the same whatever it had confirmed.
 */
export function addRunDeletion(router: Router, db: Database.Database, clock: () => number): void {
  const s = prepare(db);
  const remove = db.transaction((runId: string, project: string) => {
    for (const statement of s.deleteRows) statement.run(runId);
    s.deleteRun.run(runId);
    s.tombstone.run(runId, project, clock());
  });

  router.add('DELETE', '/api/v1/runs/:id', ({ params, principal }) => {
    const runId = params.id ?? '';
    const project = isRunId(runId) ? (s.runProject.get(runId) as string | undefined) : undefined;
    // A run of another project answers like a missing one, so ids cannot be probed (invariant 9).
    if (project === undefined || !canAccess(principal, project)) {
      throw new NotFoundError('run_not_found', `no run ${runId}`, {
        hint: 'GET /api/v1/runs lists the runs this token can see.',
      });
    }
    remove.immediate(runId, project);
    return { status: 200, json: { deleted: runId } };
  });
}

function prepare(db: Database.Database) {
  return {
    runProject: db.prepare('SELECT project FROM runs WHERE id = ?').pluck(),
    deleteRows: [
      db.prepare('DELETE FROM points WHERE series_id IN (SELECT id FROM series WHERE run_id = ?)'),
      db.prepare('DELETE FROM series WHERE run_id = ?'),
      db.prepare('DELETE FROM fields WHERE run_id = ?'),
      db.prepare('DELETE FROM tags WHERE run_id = ?'),
      db.prepare('DELETE FROM files WHERE run_id = ?'),
    ],
    deleteRun: db.prepare('DELETE FROM runs WHERE id = ?'),
    tombstone: db.prepare(
      'INSERT OR REPLACE INTO deleted_runs (id, project, deleted_at) VALUES (?, ?, ?)',
    ),
  };
}
