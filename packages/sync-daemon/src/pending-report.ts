import type Database from 'better-sqlite3';

/** What one run still has to send to a remote. */
export interface PendingRun {
  runId: string;
  project: string;
  ops: number;
  points: number;
  /**
   * An upper bound of the bytes still to send: the ops as JSON (points at their typical wire
   * size) plus the full size of every artifact logged, chunks the server holds included.
   */
  bytes: number;
}

export interface PendingReport {
  remote: string;
  only: string | null;
  cursor: number;
  ops: number;
  points: number;
  bytes: number;
  /** Runs with something pending. */
  runCount: number;
  /** The runs with the most pending first, at most `maxRuns` of them. */
  runs: PendingRun[];
  /** Runs held back from this remote, with the reason recorded when they were. */
  quarantined: Array<{ runId: string; reason: string; at: number }>;
}

/** A float point `[step, ts, value]` as JSON, roughly. */
const POINT_WIRE_BYTES = 40;

/**
 * Counts, from the store's tables, what a pass to `remote` would still send, per run. Reads
 * only; `db` may be opened read-only by another process than the daemon. Entries that an
 * `only` pass already confirmed under its project cursor, and entries of quarantined runs,
 * are not pending.
 */
export function readPending(
  db: Database.Database,
  remote: string,
  only: string | null = null,
  maxRuns = 50,
): PendingReport {
  const prefix = `${remote}#only=`;
  const cursorOf = (key: string): number =>
    (db.prepare('SELECT seq FROM sync_cursors WHERE remote = ?').pluck().get(key) as
      | number
      | undefined) ?? 0;
  const cursor =
    only === null ? cursorOf(remote) : Math.max(cursorOf(remote), cursorOf(prefix + only));

  const rows = db
    .prepare(
      `WITH project_cursors AS (
         SELECT substr(remote, length(:prefix) + 1) AS project, seq FROM sync_cursors
         WHERE substr(remote, 1, length(:prefix)) = :prefix
       )
       SELECT j.run_id AS runId, p.name AS project, count(*) AS ops,
         coalesce(sum(j.last_point - j.first_point + 1), 0) AS points,
         coalesce(sum(length(j.payload)), 0) + count(*) * 120 AS opBytes,
         coalesce(sum(CASE WHEN j.kind = 'file.add' THEN json_extract(j.payload, '$.size') END), 0)
           AS artifactBytes
       FROM journal j
       JOIN runs r ON r.id = j.run_id
       JOIN projects p ON p.id = r.project_id
       LEFT JOIN project_cursors pc ON pc.project = p.name
       WHERE j.seq > :cursor AND j.seq > coalesce(pc.seq, 0)
         AND (:only IS NULL OR p.name = :only)
         AND j.run_id NOT IN (SELECT run_id FROM quarantine WHERE remote = :remote)
       GROUP BY j.run_id`,
    )
    .all({ prefix, cursor, only, remote }) as Array<{
    runId: string;
    project: string;
    ops: number;
    points: number;
    opBytes: number;
    artifactBytes: number;
  }>;

  const runs = new Map<string, PendingRun>(
    rows.map((row) => [
      row.runId,
      {
        runId: row.runId,
        project: row.project,
        ops: row.ops,
        points: row.points,
        bytes: row.opBytes + row.points * POINT_WIRE_BYTES + row.artifactBytes,
      },
    ]),
  );
  addUnsealed(db, runs, only, remote);
  const sorted = [...runs.values()].sort(
    (a, b) => b.bytes - a.bytes || (a.runId < b.runId ? -1 : 1),
  );

  const quarantined = db
    .prepare('SELECT run_id AS runId, reason, at FROM quarantine WHERE remote = ? ORDER BY at')
    .all(remote) as PendingReport['quarantined'];
  return {
    remote,
    only,
    cursor,
    ops: sum(sorted, 'ops'),
    points: sum(sorted, 'points'),
    bytes: sum(sorted, 'bytes'),
    runCount: sorted.length,
    runs: sorted.slice(0, maxRuns),
    quarantined,
  };
}

/**
 * Points a durable `run.log` committed without a journal entry yet (above the store's seal
 * mark): the next pass seals them into entries, so they are pending too. Counted as one entry
 * per run, which is what sealing makes of up to 10,000 points.
 */
function addUnsealed(
  db: Database.Database,
  runs: Map<string, PendingRun>,
  only: string | null,
  remote: string,
): void {
  const rows = db
    .prepare(
      `SELECT s.run_id AS runId, p2.name AS project, count(*) AS points
       FROM points p CROSS JOIN series s ON s.id = p.series_id
       JOIN runs r ON r.id = s.run_id JOIN projects p2 ON p2.id = r.project_id
       WHERE p.rowid > (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'sealed_point')
         AND (:only IS NULL OR p2.name = :only)
         AND s.run_id NOT IN (SELECT run_id FROM quarantine WHERE remote = :remote)
       GROUP BY s.run_id`,
    )
    .all({ only, remote }) as Array<{ runId: string; project: string; points: number }>;
  for (const row of rows) {
    const run = runs.get(row.runId) ?? {
      runId: row.runId,
      project: row.project,
      ops: 0,
      points: 0,
      bytes: 0,
    };
    run.ops += 1;
    run.points += row.points;
    run.bytes += row.points * POINT_WIRE_BYTES;
    runs.set(row.runId, run);
  }
}

function sum(runs: PendingRun[], key: 'ops' | 'points' | 'bytes'): number {
  return runs.reduce((total, run) => total + run[key], 0);
}
