import type Database from 'better-sqlite3';
import { NotFoundError } from './errors.js';
import type { RunId } from './ids.js';
import type { SeriesType } from './point-writer.js';
import type { RunState } from './run.js';
import { reading } from './sqlite-errors.js';
import { columnsToFloat, decodeField, type FieldType, type FieldValue } from './values.js';

export interface RunSummary {
  id: RunId;
  project: string;
  name: string | null;
  state: RunState;
  createdAt: number;
  endedAt: number | null;
  tags: string[];
}

export interface SeriesSummary {
  path: string;
  type: SeriesType;
  count: number;
  lastStep: number | null;
  /** The value at the highest step (float series); NaN when that point is NaN. */
  last: number | string | null;
  /** Over finite and infinite values; NaN points are never compared (invariant 6). */
  min: number | null;
  max: number | null;
  nanCount: number;
}

export interface RunDetail extends RunSummary {
  description: string | null;
  failure: string | null;
  forkOf: string | null;
  forkStep: number | null;
  host: string | null;
  fields: Array<{ path: string; type: FieldType; value: FieldValue }>;
  series: SeriesSummary[];
  files: Array<{
    path: string;
    kind: 'file' | 'dir';
    manifest: string;
    size: number;
    fileCount: number;
  }>;
}

/** Lists runs, newest first. */
export function listRuns(
  db: Database.Database,
  options: { project?: string; limit?: number } = {},
): RunSummary[] {
  return reading(db, () => listRunsOf(db, options));
}

function listRunsOf(
  db: Database.Database,
  options: { project?: string; limit?: number },
): RunSummary[] {
  const rows = db
    .prepare(
      `SELECT r.id, p.name AS project, r.name, r.state, r.created_at AS createdAt, r.ended_at AS endedAt,
              (SELECT json_group_array(tag) FROM (SELECT tag FROM tags t WHERE t.run_id = r.id ORDER BY tag)) AS tags
       FROM runs r JOIN projects p ON p.id = r.project_id
       WHERE (? IS NULL OR p.name = ?)
       ORDER BY r.created_at DESC, r.id DESC LIMIT ?`,
    )
    .all(options.project ?? null, options.project ?? null, options.limit ?? -1) as Array<
    RunSummary & { tags: string }
  >;
  return rows.map((row) => ({ ...row, tags: JSON.parse(row.tags) as string[] }));
}

/** Everything recorded about one run except its points. */
export function getRun(db: Database.Database, runId: string): RunDetail {
  return reading(db, () => getRunOf(db, runId));
}

function getRunOf(db: Database.Database, runId: string): RunDetail {
  const row = db
    .prepare(
      `SELECT r.id, p.name AS project, r.name, r.description, r.state, r.created_at AS createdAt,
              r.ended_at AS endedAt, r.failure, r.fork_of AS forkOf, r.fork_step AS forkStep, r.host
       FROM runs r JOIN projects p ON p.id = r.project_id WHERE r.id = ?`,
    )
    .get(runId) as Omit<RunDetail, 'tags' | 'fields' | 'series' | 'files'> | undefined;
  if (row === undefined) {
    throw new NotFoundError('run_not_found', `no run ${runId} in this store`, {
      hint: "List runs with 'tidemark runs'; ids are shown in the first column.",
    });
  }

  const tags = (
    db.prepare('SELECT tag FROM tags WHERE run_id = ? ORDER BY tag').all(runId) as Array<{
      tag: string;
    }>
  ).map((t) => t.tag);
  const fields = (
    db
      .prepare('SELECT path, type, value FROM fields WHERE run_id = ? ORDER BY path')
      .all(runId) as Array<{
      path: string;
      type: FieldType;
      value: string;
    }>
  ).map((f) => ({ path: f.path, type: f.type, value: decodeField(f.type, f.value) }));
  const files = db
    .prepare(
      'SELECT path, kind, manifest, size, file_count AS fileCount FROM files WHERE run_id = ? ORDER BY path',
    )
    .all(runId) as RunDetail['files'];

  return { ...row, tags, fields, series: summarizeSeries(db, runId), files };
}

/** Each series of a run from its summary columns: one row per series, never its points. */
function summarizeSeries(db: Database.Database, runId: string): SeriesSummary[] {
  const rows = db
    .prepare(
      `SELECT path, type, point_count AS count, last_step AS lastStep, min_value AS min,
              max_value AS max, nan_count AS nanCount, last_value AS lastValue,
              last_flag AS lastFlag, last_text AS lastText
       FROM series WHERE run_id = ? ORDER BY path`,
    )
    .all(runId) as Array<
    Omit<SeriesSummary, 'last'> & {
      lastValue: number | null;
      lastFlag: number | null;
      lastText: string | null;
    }
  >;

  return rows.map(({ lastValue, lastFlag, lastText, ...row }) => {
    const numeric = row.type === 'float';
    let last: number | string | null = null;
    if (row.count > 0) last = numeric ? columnsToFloat(lastValue, lastFlag ?? 0) : lastText;
    return {
      ...row,
      min: numeric ? row.min : null,
      max: numeric ? row.max : null,
      last,
    };
  });
}
