import type Database from 'better-sqlite3';
import { NotFoundError } from './errors.js';
import type { SeriesType } from './point-writer.js';
import { decodeBlock } from './series-blocks.js';
import { reading } from './sqlite-errors.js';
import { columnsToFloat } from './values.js';

export interface SeriesPoint {
  step: number;
  ts: number;
  value: number | string;
}

/**
 * A series as columns: what a chart wants, without an object per point. `values` holds exact
 * float64s (NaN, ±Infinity, -0) for float series; `texts` holds the strings of string series
 * and the manifest digests of file series.
 */
export interface SeriesColumns {
  type: SeriesType;
  steps: Float64Array;
  timestamps: Float64Array;
  values: Float64Array | null;
  texts: string[] | null;
  /** The run each point was logged by: the run itself, or a run it was forked from. */
  sources: string[];
  /** For each point, its index in `sources`; all zero without fork parents. */
  sourceIndex: Uint8Array | null;
}

export interface ReadSeriesOptions {
  /**
   * For a fork, put the points of the runs it was forked from (up to each fork step) before its
   * own, as `lineage_points_view` does. Without it a fork's series holds only its own points.
   */
  includeForkParents?: boolean;
}

/** Points of one series in step order (ties in the order they were logged). */
export function readSeries(
  db: Database.Database,
  runId: string,
  path: string,
  options: ReadSeriesOptions = {},
): SeriesPoint[] {
  const columns = readSeriesColumns(db, runId, path, options);
  const out: SeriesPoint[] = new Array(columns.steps.length);
  for (let i = 0; i < out.length; i++) {
    out[i] = {
      step: columns.steps[i] as number,
      ts: columns.timestamps[i] as number,
      value: columns.values === null ? (columns.texts?.[i] ?? '') : (columns.values[i] as number),
    };
  }
  return out;
}

/**
 * One series as columns, in step order (ties in the order logged). A float series is read
 * from its packed blocks plus the rows after the last block, inside one read transaction so a
 * concurrent writer cannot show half a commit.
 */
export function readSeriesColumns(
  db: Database.Database,
  runId: string,
  path: string,
  options: ReadSeriesOptions = {},
): SeriesColumns {
  return reading(db, () => readInTransaction(db, runId, path, options));
}

function readInTransaction(
  db: Database.Database,
  runId: string,
  path: string,
  options: ReadSeriesOptions,
): SeriesColumns {
  return db.transaction(() => {
    const lineage = options.includeForkParents === true ? forkLineage(db, runId) : [];
    const own = findSeries(db, runId, path);
    const parents = lineage
      .map((link) => ({ link, series: findSeries(db, link.runId, path) }))
      .filter((p) => p.series !== undefined && (own === undefined || p.series.type === own.type));
    if (own === undefined && parents.length === 0) {
      throw new NotFoundError('series_not_found', `run ${runId} has no series ${path}`, {
        hint: `Show the run's series with 'tidemark show ${runId}'.`,
      });
    }

    const parts: SeriesColumns[] = [];
    for (const { link, series } of parents.reverse()) {
      const part = readOne(db, series as SeriesRow, link.runId);
      parts.push(upToStep(part, link.untilStep));
    }
    if (own !== undefined) parts.push(readOne(db, own, runId));
    return sortByStep(parts.length === 1 ? (parts[0] as SeriesColumns) : concat(parts));
  })();
}

interface SeriesRow {
  id: number;
  type: SeriesType;
  point_count: number;
  packed_count: number;
  packed_through: number;
}

function findSeries(db: Database.Database, runId: string, path: string): SeriesRow | undefined {
  return db
    .prepare(
      'SELECT id, type, point_count, packed_count, packed_through FROM series WHERE run_id = ? AND path = ?',
    )
    .get(runId, path) as SeriesRow | undefined;
}

/** The runs `runId` was forked from, nearest first, each with the last step it passes on. */
function forkLineage(
  db: Database.Database,
  runId: string,
): Array<{ runId: string; untilStep: number }> {
  const find = db.prepare('SELECT fork_of, fork_step FROM runs WHERE id = ?');
  const out: Array<{ runId: string; untilStep: number }> = [];
  let current = runId;
  let until = Number.POSITIVE_INFINITY;
  for (let depth = 0; depth < 64; depth++) {
    const row = find.get(current) as { fork_of: string | null; fork_step: number | null };
    if (row === undefined || row.fork_of === null || row.fork_step === null) break;
    until = Math.min(until, row.fork_step);
    out.push({ runId: row.fork_of, untilStep: until });
    current = row.fork_of;
  }
  return out;
}

function readOne(db: Database.Database, series: SeriesRow, runId: string): SeriesColumns {
  if (series.type !== 'float') return readTexts(db, series, runId);

  const blocks =
    series.packed_count > 0
      ? (db
          .prepare(
            'SELECT point_count, data FROM series_blocks WHERE series_id = ? ORDER BY first_point',
          )
          .raw()
          .all(series.id) as Array<[number, Buffer]>)
      : [];
  const packed = blocks.reduce((sum, [count]) => sum + count, 0);
  const n = Math.max(series.point_count, packed);
  const out: SeriesColumns = {
    type: 'float',
    steps: new Float64Array(n),
    timestamps: new Float64Array(n),
    values: new Float64Array(n),
    texts: null,
    sources: [runId],
    sourceIndex: null,
  };
  const target = { steps: out.steps, ts: out.timestamps, values: out.values as Float64Array };
  let at = 0;
  for (const [, data] of blocks) at += decodeBlock(data, target, at);

  const tail = db
    .prepare(tailQuery(db, series))
    .raw()
    .iterate(series.id, series.packed_through) as IterableIterator<
    [number, number, number | null, number]
  >;
  let grown = out;
  for (const [step, ts, value, flag] of tail) {
    // The summary count is a size hint; a series holding more points than it says keeps them all.
    if (at >= grown.steps.length) grown = resize(grown, Math.max(16, grown.steps.length * 2));
    grown.steps[at] = step;
    grown.timestamps[at] = ts;
    (grown.values as Float64Array)[at] = columnsToFloat(value, flag);
    at += 1;
  }
  return at === grown.steps.length ? grown : resize(grown, at);
}

/**
 * How to read the points after the last block. Without blocks the step index yields them in
 * order. After blocks the few newest points are read by walking rowids from the last block on,
 * unless other series wrote so much since that walking the series' index is cheaper.
 */
function tailQuery(db: Database.Database, series: SeriesRow): string {
  if (series.packed_count === 0) {
    return 'SELECT step, ts, value, flag FROM points WHERE series_id = ? AND rowid > ? ORDER BY step, rowid';
  }
  const newest = (db.prepare('SELECT max(rowid) FROM points').pluck().get() as number | null) ?? 0;
  const tail = series.point_count - series.packed_count;
  if (newest - series.packed_through <= Math.max(50_000, 64 * tail)) {
    return 'SELECT step, ts, value, flag FROM points WHERE +series_id = ? AND rowid > ? ORDER BY rowid';
  }
  return 'SELECT step, ts, value, flag FROM points WHERE series_id = ? AND rowid > ? ORDER BY rowid';
}

function resize(columns: SeriesColumns, n: number): SeriesColumns {
  const keep = Math.min(n, columns.steps.length);
  const grow = (from: Float64Array): Float64Array => {
    const next = new Float64Array(n);
    next.set(from.subarray(0, keep));
    return next;
  };
  return {
    ...columns,
    steps: grow(columns.steps),
    timestamps: grow(columns.timestamps),
    values: columns.values === null ? null : grow(columns.values),
  };
}

function readTexts(db: Database.Database, series: SeriesRow, runId: string): SeriesColumns {
  const rows = db
    .prepare('SELECT step, ts, text FROM points WHERE series_id = ? ORDER BY step, rowid')
    .raw()
    .all(series.id) as Array<[number, number, string | null]>;
  const out: SeriesColumns = {
    type: series.type,
    steps: new Float64Array(rows.length),
    timestamps: new Float64Array(rows.length),
    values: null,
    texts: new Array(rows.length),
    sources: [runId],
    sourceIndex: null,
  };
  for (const [i, [step, ts, text]] of rows.entries()) {
    out.steps[i] = step;
    out.timestamps[i] = ts;
    (out.texts as string[])[i] = text ?? '';
  }
  return out;
}

function upToStep(columns: SeriesColumns, until: number): SeriesColumns {
  const keep: number[] = [];
  for (let i = 0; i < columns.steps.length; i++) {
    if ((columns.steps[i] as number) <= until) keep.push(i);
  }
  return pick(columns, keep);
}

function concat(parts: SeriesColumns[]): SeriesColumns {
  const n = parts.reduce((sum, part) => sum + part.steps.length, 0);
  const first = parts[0] as SeriesColumns;
  const out: SeriesColumns = {
    type: first.type,
    steps: new Float64Array(n),
    timestamps: new Float64Array(n),
    values: first.values === null ? null : new Float64Array(n),
    texts: first.texts === null ? null : [],
    sources: parts.map((part) => part.sources[0] as string),
    sourceIndex: new Uint8Array(n),
  };
  let at = 0;
  for (const [source, part] of parts.entries()) {
    out.steps.set(part.steps, at);
    out.timestamps.set(part.timestamps, at);
    if (out.values !== null && part.values !== null) out.values.set(part.values, at);
    if (out.texts !== null && part.texts !== null) out.texts.push(...part.texts);
    (out.sourceIndex as Uint8Array).fill(source, at, at + part.steps.length);
    at += part.steps.length;
  }
  return out;
}

/** Orders by step, keeping the order of equal steps: a stable sort, skipped when sorted. */
function sortByStep(columns: SeriesColumns): SeriesColumns {
  const steps = columns.steps;
  let sorted = true;
  for (let i = 1; i < steps.length; i++) {
    if ((steps[i] as number) < (steps[i - 1] as number)) {
      sorted = false;
      break;
    }
  }
  if (sorted) return columns;
  const order = Array.from({ length: steps.length }, (_, i) => i);
  order.sort((a, b) => (steps[a] as number) - (steps[b] as number) || a - b);
  return pick(columns, order);
}

function pick(columns: SeriesColumns, order: number[]): SeriesColumns {
  const n = order.length;
  const out: SeriesColumns = {
    ...columns,
    steps: new Float64Array(n),
    timestamps: new Float64Array(n),
    values: columns.values === null ? null : new Float64Array(n),
    texts: columns.texts === null ? null : new Array(n),
    sourceIndex: columns.sourceIndex === null ? null : new Uint8Array(n),
  };
  for (let i = 0; i < n; i++) {
    const from = order[i] as number;
    out.steps[i] = columns.steps[from] as number;
    out.timestamps[i] = columns.timestamps[from] as number;
    if (out.values !== null) out.values[i] = (columns.values as Float64Array)[from] as number;
    if (out.texts !== null) out.texts[i] = (columns.texts as string[])[from] as string;
    if (out.sourceIndex !== null) {
      out.sourceIndex[i] = (columns.sourceIndex as Uint8Array)[from] as number;
    }
  }
  return out;
}
