import type Database from 'better-sqlite3';
import { NotFoundError } from './errors.js';
import type { RunId } from './ids.js';
import type { RunState, SeriesType } from './run.js';
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

export interface SeriesPoint {
  step: number;
  ts: number;
  value: number | string;
}

/** Lists runs, newest first. */
export function listRuns(
  db: Database.Database,
  options: { project?: string; limit?: number } = {},
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

/** Points of one series in step order (ties in the order they were logged). */
export function readSeries(db: Database.Database, runId: string, path: string): SeriesPoint[] {
  const series = db
    .prepare('SELECT id, type FROM series WHERE run_id = ? AND path = ?')
    .get(runId, path) as { id: number; type: SeriesType } | undefined;
  if (series === undefined) {
    throw new NotFoundError('series_not_found', `run ${runId} has no series ${path}`, {
      hint: `Show the run's series with 'tidemark show ${runId}'.`,
    });
  }
  const rows = db
    .prepare(
      'SELECT step, ts, value, flag, text FROM points WHERE series_id = ? ORDER BY step, rowid',
    )
    .raw()
    .all(series.id) as Array<[number, number, number | null, number, string | null]>;
  return rows.map(([step, ts, value, flag, text]) => ({
    step,
    ts,
    value: series.type === 'float' ? columnsToFloat(value, flag) : (text ?? ''),
  }));
}

function summarizeSeries(db: Database.Database, runId: string): SeriesSummary[] {
  const rows = db
    .prepare(
      `SELECT s.path, s.type, count(p.rowid) AS count, max(p.step) AS lastStep,
              min(p.value) AS min, max(p.value) AS max, sum(p.flag = 1) AS nanCount,
              (SELECT CASE WHEN s.type = 'float' THEN json_array(l.value, l.flag) ELSE json_array(l.text, 0) END
                 FROM points l WHERE l.series_id = s.id ORDER BY l.step DESC, l.rowid DESC LIMIT 1) AS lastPoint
       FROM series s LEFT JOIN points p ON p.series_id = s.id
       WHERE s.run_id = ? GROUP BY s.id ORDER BY s.path`,
    )
    .all(runId) as Array<Omit<SeriesSummary, 'last'> & { lastPoint: string | null }>;

  return rows.map(({ lastPoint, ...row }) => {
    const [value, flag] =
      lastPoint === null ? [null, 0] : (JSON.parse(lastPoint) as [number | string | null, number]);
    const last =
      row.type === 'float' && lastPoint !== null
        ? columnsToFloat(value as number | null, flag)
        : value;
    const numeric = row.type === 'float';
    return {
      ...row,
      min: numeric ? row.min : null,
      max: numeric ? row.max : null,
      nanCount: row.nanCount ?? 0,
      last,
    };
  });
}
