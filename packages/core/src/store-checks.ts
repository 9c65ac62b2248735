import type Database from 'better-sqlite3';
import { writerDeathReason } from './run-writers.js';
import { blockCount, expectedBlockLength } from './series-blocks.js';
import { finding, type VerifyCheck, type VerifyFinding } from './verify-check.js';

/**
 * The store's own rules, checked on a database SQLite can read at the current schema: every row
 * points at rows that exist, series summaries and packed blocks agree with the points, the
 * journal covers every point once and no cursor is ahead of it, and no run is left running by a
 * dead writer.
 */
export const CONTENT_CHECKS: readonly VerifyCheck[] = [
  {
    name: 'references',
    needs: 'database',
    run({ db }) {
      const out: VerifyFinding[] = [];
      for (const [what, sql] of ORPHAN_QUERIES) {
        const n = count(db as Database.Database, sql);
        if (n > 0) {
          out.push(
            finding('references', 'error', 'orphan_rows', `${n} ${what}`, {
              hint: "'tidemark verify --repair' rebuilds the store from what can be read.",
            }),
          );
        }
      }
      return out;
    },
  },
  {
    name: 'summaries',
    needs: 'database',
    run({ db }) {
      const out: VerifyFinding[] = [];
      const stale = (db as Database.Database).prepare(STALE_SUMMARIES).all() as Array<{
        run_id: string;
        path: string;
      }>;
      if (stale.length > 0) {
        const sample = stale
          .slice(0, 5)
          .map((s) => `${s.run_id} ${s.path}`)
          .join(', ');
        out.push(
          finding(
            'summaries',
            'warning',
            'summary_mismatch',
            `${stale.length} series summaries disagree with their points (${sample})`,
            { hint: "'tidemark verify --repair' recomputes them from the points." },
          ),
        );
      }
      const blocks =
        count(db as Database.Database, BAD_BLOCKS) + malformedBlocks(db as Database.Database);
      if (blocks > 0) {
        out.push(
          finding(
            'summaries',
            'warning',
            'blocks_mismatch',
            `the packed copy of ${blocks} series disagrees with its bookkeeping`,
            { hint: "'tidemark verify --repair' drops packed copies; points are kept." },
          ),
        );
      }
      return out;
    },
  },
  {
    name: 'journal',
    needs: 'database',
    run({ db }) {
      const d = db as Database.Database;
      const out: VerifyFinding[] = [];
      const mark = Number(
        (d.prepare("SELECT value FROM meta WHERE key = 'sealed_point'").pluck().get() as
          | string
          | undefined) ?? 0,
      );
      const top = (d.prepare('SELECT max(rowid) FROM points').pluck().get() as number | null) ?? 0;
      if (mark > top) {
        out.push(
          finding(
            'journal',
            'warning',
            'points_missing',
            `the journal covers points up to row ${mark} but the newest point is row ${top}`,
            { hint: 'Points were lost after they were recorded; see the other findings.' },
          ),
        );
      }
      const covered = count(
        d,
        "SELECT coalesce(sum(coalesce(point_count, last_point - first_point + 1)), 0) AS n FROM journal WHERE kind = 'points'",
      );
      const present = d.prepare('SELECT count(*) FROM points WHERE rowid <= ?').pluck().get(mark);
      if (present !== covered && mark <= top) {
        out.push(
          finding(
            'journal',
            'warning',
            'journal_coverage',
            `${present} points are sealed but journal entries cover ${covered}`,
            { hint: 'Some points may not reach a server, or reach it twice; report this.' },
          ),
        );
      }
      const newest = Math.max(
        count(d, 'SELECT coalesce(max(seq), 0) AS n FROM journal'),
        count(d, "SELECT coalesce(max(seq), 0) AS n FROM sqlite_sequence WHERE name = 'journal'"),
      );
      for (const cursor of d.prepare('SELECT remote, seq FROM sync_cursors').all() as Array<{
        remote: string;
        seq: number;
      }>) {
        if (cursor.seq > newest) {
          out.push(
            finding(
              'journal',
              'error',
              'cursor_ahead',
              `the cursor of ${cursor.remote} is at entry ${cursor.seq}, past the last entry ${newest}`,
              { hint: 'New entries at or below the cursor would never be sent; report this.' },
            ),
          );
        }
      }
      return out;
    },
  },
  {
    name: 'runs',
    needs: 'database',
    run({ db, now, staleAfterMs }) {
      const writers = (db as Database.Database)
        .prepare(
          `SELECT w.run_id, w.writer_id, w.host, w.pid, w.heartbeat_at FROM run_writers w
           JOIN runs r ON r.id = w.run_id WHERE w.ended_at IS NULL AND r.state = 'running'`,
        )
        .all() as Parameters<typeof writerDeathReason>[0][];
      const dead = writers.filter((w) => writerDeathReason(w, now, staleAfterMs) !== undefined);
      const runs = new Set(dead.map((w) => w.run_id));
      if (runs.size === 0) return [];
      return [
        finding(
          'runs',
          'info',
          'writers_gone',
          `${runs.size} running run(s) have writers that are gone (${[...runs].slice(0, 5).join(', ')})`,
          { hint: 'The next open of the store marks them crashed.' },
        ),
      ];
    },
  },
];

const ORPHAN_QUERIES: Array<[string, string]> = [
  [
    'points belong to no series',
    'SELECT count(*) AS n FROM points WHERE series_id NOT IN (SELECT id FROM series)',
  ],
  [
    'series belong to no run',
    'SELECT count(*) AS n FROM series WHERE run_id NOT IN (SELECT id FROM runs)',
  ],
  [
    'fields belong to no run',
    'SELECT count(*) AS n FROM fields WHERE run_id NOT IN (SELECT id FROM runs)',
  ],
  [
    'tags belong to no run',
    'SELECT count(*) AS n FROM tags WHERE run_id NOT IN (SELECT id FROM runs)',
  ],
  [
    'files belong to no run',
    'SELECT count(*) AS n FROM files WHERE run_id NOT IN (SELECT id FROM runs)',
  ],
  [
    'runs belong to no project',
    'SELECT count(*) AS n FROM runs WHERE project_id NOT IN (SELECT id FROM projects)',
  ],
  [
    'journal entries belong to no run',
    'SELECT count(*) AS n FROM journal WHERE run_id NOT IN (SELECT id FROM runs)',
  ],
];

const STALE_SUMMARIES = `
  SELECT s.run_id, s.path FROM series s
  LEFT JOIN (
    SELECT series_id, count(*) AS n, sum(flag = 1) AS nans, min(value) AS lo, max(value) AS hi,
           min(step) AS first_step, max(step) AS last_step
    FROM points GROUP BY series_id
  ) a ON a.series_id = s.id
  WHERE s.point_count IS NOT coalesce(a.n, 0)
     OR s.nan_count IS NOT coalesce(a.nans, 0)
     OR (s.type = 'float' AND (s.min_value IS NOT a.lo OR s.max_value IS NOT a.hi))
     OR s.first_step IS NOT a.first_step
     OR s.last_step IS NOT a.last_step
  LIMIT 1000`;

const BAD_BLOCKS = `
  SELECT count(*) AS n FROM series s
  LEFT JOIN (
    SELECT series_id, sum(point_count) AS packed, max(last_point) AS through
    FROM series_blocks GROUP BY series_id
  ) b ON b.series_id = s.id
  WHERE s.packed_count IS NOT coalesce(b.packed, 0)
     OR s.packed_count > s.point_count
     OR (b.packed > 0 AND s.packed_through < b.through)`;

/** Blocks whose header disagrees with their row or their own length. */
function malformedBlocks(db: Database.Database): number {
  const rows = db
    .prepare(
      'SELECT point_count, substr(data, 1, 8) AS head, length(data) AS size FROM series_blocks',
    )
    .raw()
    .iterate() as IterableIterator<[number, Buffer, number]>;
  let bad = 0;
  for (const [points, head, size] of rows) {
    if (expectedBlockLength(head) !== size || blockCount(head) !== points) bad += 1;
  }
  return bad;
}

function count(db: Database.Database, sql: string): number {
  return (db.prepare(sql).get() as { n: number }).n;
}
