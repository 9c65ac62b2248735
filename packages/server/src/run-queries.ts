import {
  columnsToFloat,
  type SeriesType,
  toWireFloat,
  type WireFileEntry,
  type WireFloat,
  type WirePoint,
  type WireRunDetail,
  type WireRunSummary,
  type WireSeries,
  type WireSeriesSummary,
} from '@tidemark/core';
import type Database from 'better-sqlite3';
import type { TokenProjects } from './tokens.js';

export type { WireFileEntry, WireRunDetail, WireRunSummary, WireSeries, WireSeriesSummary };

/**
 * The read side of the server's tables, answering in wire shapes. Callers check access first;
 * these methods see every project.
 */
export class RunQueries {
  readonly #s: ReturnType<typeof prepare>;

  constructor(db: Database.Database) {
    this.#s = prepare(db);
  }

  /** Runs newest first, of every project (`'*'`) or of the listed ones. */
  listRuns(projects: TokenProjects, limit: number): WireRunSummary[] {
    const filter = projects === '*' ? null : JSON.stringify(projects);
    const rows = this.#s.listRuns.all(filter, filter, limit) as Array<
      WireRunSummary & { tags: string }
    >;
    return rows.map((row) => ({ ...row, tags: JSON.parse(row.tags) as string[] }));
  }

  runProject(runId: string): string | undefined {
    return this.#s.runProject.get(runId) as string | undefined;
  }

  getRun(runId: string): WireRunDetail | undefined {
    const row = this.#s.run.get(runId) as
      | Omit<WireRunDetail, 'tags' | 'fields' | 'series' | 'files' | 'host'>
      | undefined;
    if (row === undefined) return undefined;

    const fields = this.#s.fields.all(runId) as WireRunDetail['fields'];
    const host = fields.find((field) => field.path === 'context/host' && field.type === 'string');
    return {
      ...row,
      host: host?.value ?? null,
      tags: this.#s.tags.all(runId) as string[],
      fields,
      series: (this.#s.seriesSummaries.all(runId) as SummaryRow[]).map(toWireSummary),
      files: this.#s.files.all(runId) as WireFileEntry[],
    };
  }

  /** Points of one series in step order; ties by timestamp, then arrival. */
  readSeries(runId: string, path: string): WireSeries | undefined {
    const series = this.#s.series.get(runId, path) as { id: number; type: SeriesType } | undefined;
    if (series === undefined) return undefined;
    const rows = this.#s.points.all(series.id) as Array<
      [number, number, number | null, number, string | null]
    >;
    const points = rows.map(
      ([step, ts, value, flag, text]): WirePoint => [
        step,
        ts,
        series.type === 'float' ? toWireFloat(columnsToFloat(value, flag)) : (text ?? ''),
      ],
    );
    return { path, type: series.type, points };
  }

  getFile(runId: string, path: string): WireFileEntry | undefined {
    return this.#s.file.get(runId, path) as WireFileEntry | undefined;
  }
}

interface SummaryRow {
  path: string;
  type: SeriesType;
  count: number;
  lastStep: number | null;
  min: number | null;
  max: number | null;
  nanCount: number | null;
  lastValue: number | null;
  lastFlag: number | null;
  lastText: string | null;
}

function toWireSummary(row: SummaryRow): WireSeriesSummary {
  const float = row.type === 'float';
  const hasPoints = row.count > 0;
  let last: WireFloat | string | null = null;
  if (hasPoints)
    last = float ? toWireFloat(columnsToFloat(row.lastValue, row.lastFlag ?? 0)) : row.lastText;
  return {
    path: row.path,
    type: row.type,
    count: row.count,
    lastStep: row.lastStep,
    last,
    min: float && row.min !== null ? toWireFloat(row.min) : null,
    max: float && row.max !== null ? toWireFloat(row.max) : null,
    nanCount: row.nanCount ?? 0,
  };
}

function prepare(db: Database.Database) {
  const lastPoint = (column: string): string =>
    `(SELECT l.${column} FROM points l WHERE l.series_id = s.id
      ORDER BY l.step DESC, l.ts DESC, l.rowid DESC LIMIT 1)`;
  return {
    listRuns: db.prepare(
      `SELECT r.id, r.project, r.name, r.state, r.created_at AS createdAt, r.ended_at AS endedAt,
              (SELECT json_group_array(tag) FROM
                (SELECT tag FROM tags t WHERE t.run_id = r.id AND t.present = 1 ORDER BY tag)) AS tags
       FROM runs r
       WHERE (? IS NULL OR r.project IN (SELECT value FROM json_each(?)))
       ORDER BY r.created_at DESC, r.id DESC LIMIT ?`,
    ),
    runProject: db.prepare('SELECT project FROM runs WHERE id = ?').pluck(),
    run: db.prepare(
      `SELECT id, project, name, state, created_at AS createdAt, ended_at AS endedAt, description,
              failure, fork_of AS forkOf, fork_step AS forkStep
       FROM runs WHERE id = ?`,
    ),
    tags: db.prepare('SELECT tag FROM tags WHERE run_id = ? AND present = 1 ORDER BY tag').pluck(),
    fields: db.prepare('SELECT path, type, value FROM fields WHERE run_id = ? ORDER BY path'),
    files: db.prepare(
      `SELECT path, kind, manifest, size, file_count AS fileCount FROM files
       WHERE run_id = ? ORDER BY path`,
    ),
    file: db.prepare(
      `SELECT path, kind, manifest, size, file_count AS fileCount FROM files
       WHERE run_id = ? AND path = ?`,
    ),
    series: db.prepare('SELECT id, type FROM series WHERE run_id = ? AND path = ?'),
    points: db
      .prepare(
        'SELECT step, ts, value, flag, text FROM points WHERE series_id = ? ORDER BY step, ts, rowid',
      )
      .raw(),
    seriesSummaries: db.prepare(
      `SELECT s.path, s.type, count(p.rowid) AS count, max(p.step) AS lastStep,
              min(p.value) AS min, max(p.value) AS max, sum(p.flag = 1) AS nanCount,
              ${lastPoint('value')} AS lastValue, ${lastPoint('flag')} AS lastFlag,
              ${lastPoint('text')} AS lastText
       FROM series s LEFT JOIN points p ON p.series_id = s.id
       WHERE s.run_id = ? GROUP BY s.id ORDER BY s.path`,
    ),
  };
}
