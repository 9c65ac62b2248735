import {
  blob,
  index,
  integer,
  primaryKey,
  real,
  sqliteTable,
  text,
  uniqueIndex,
} from 'drizzle-orm/sqlite-core';

/**
 * The local store's tables. Timestamps are milliseconds since the Unix epoch as REAL.
 * `docs/store-schema.md` documents every column; the SQL views over them are the stable
 * surface for queries.
 */

export const meta = sqliteTable('meta', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
});

export const projects = sqliteTable('projects', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  name: text('name').notNull().unique(),
  createdAt: real('created_at').notNull(),
});

export const runs = sqliteTable(
  'runs',
  {
    id: text('id').primaryKey(),
    projectId: integer('project_id')
      .notNull()
      .references(() => projects.id),
    name: text('name'),
    description: text('description'),
    state: text('state', { enum: ['running', 'finished', 'failed', 'crashed'] }).notNull(),
    createdAt: real('created_at').notNull(),
    endedAt: real('ended_at'),
    heartbeatAt: real('heartbeat_at'),
    host: text('host'),
    pid: integer('pid'),
    failure: text('failure'),
    forkOf: text('fork_of'),
    forkStep: real('fork_step'),
  },
  (t) => [index('runs_project_idx').on(t.projectId, t.createdAt)],
);

export const fields = sqliteTable(
  'fields',
  {
    runId: text('run_id')
      .notNull()
      .references(() => runs.id),
    path: text('path').notNull(),
    type: text('type').notNull(),
    value: text('value').notNull(),
    num: real('num'),
    updatedAt: real('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.path] })],
);

/**
 * One row per series. The summary columns (`point_count` to `last_text`) are kept up to date by
 * every writer in the transaction that inserts the points, so "best run by max" reads one row
 * per run instead of every point. `packed_through` and `packed_count` say how much of the
 * series `series_blocks` holds (see there).
 */
export const series = sqliteTable(
  'series',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    runId: text('run_id')
      .notNull()
      .references(() => runs.id),
    path: text('path').notNull(),
    type: text('type', { enum: ['float', 'string', 'file'] }).notNull(),
    pointCount: integer('point_count').notNull().default(0),
    nanCount: integer('nan_count').notNull().default(0),
    minValue: real('min_value'),
    maxValue: real('max_value'),
    firstStep: real('first_step'),
    lastStep: real('last_step'),
    lastValue: real('last_value'),
    lastFlag: integer('last_flag'),
    lastText: text('last_text'),
    packedThrough: integer('packed_through').notNull().default(0),
    packedCount: integer('packed_count').notNull().default(0),
  },
  (t) => [
    uniqueIndex('series_run_path_idx').on(t.runId, t.path),
    index('series_path_idx').on(t.path),
  ],
);

/**
 * A packed copy of consecutive points of one float series: every point of the series whose
 * rowid lies in `first_point..last_point`, as little-endian float64 triples (step, ts, value)
 * in rowid order. Derived data: `points` stays the record, and a reader merges the blocks with
 * the points after `series.packed_through`.
 */
export const seriesBlocks = sqliteTable(
  'series_blocks',
  {
    seriesId: integer('series_id').notNull(),
    firstPoint: integer('first_point').notNull(),
    lastPoint: integer('last_point').notNull(),
    pointCount: integer('point_count').notNull(),
    data: blob('data').notNull(),
  },
  (t) => [primaryKey({ columns: [t.seriesId, t.firstPoint] })],
);

export const points = sqliteTable(
  'points',
  {
    seriesId: integer('series_id').notNull(),
    step: real('step').notNull(),
    ts: real('ts').notNull(),
    value: real('value'),
    flag: integer('flag').notNull().default(0),
    text: text('text'),
  },
  (t) => [index('points_series_step_idx').on(t.seriesId, t.step)],
);

export const tags = sqliteTable(
  'tags',
  {
    runId: text('run_id')
      .notNull()
      .references(() => runs.id),
    tag: text('tag').notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.tag] })],
);

export const files = sqliteTable(
  'files',
  {
    runId: text('run_id')
      .notNull()
      .references(() => runs.id),
    path: text('path').notNull(),
    kind: text('kind', { enum: ['file', 'dir'] }).notNull(),
    manifest: text('manifest').notNull(),
    size: integer('size').notNull(),
    fileCount: integer('file_count').notNull(),
    loggedAt: real('logged_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.path] })],
);

export const journal = sqliteTable(
  'journal',
  {
    seq: integer('seq').primaryKey({ autoIncrement: true }),
    opId: text('op_id').notNull().unique(),
    runId: text('run_id').notNull(),
    kind: text('kind').notNull(),
    payload: text('payload'),
    firstPoint: integer('first_point'),
    lastPoint: integer('last_point'),
    createdAt: real('created_at').notNull(),
    pointCount: integer('point_count'),
  },
  (t) => [index('journal_run_idx').on(t.runId, t.seq)],
);

/**
 * Every process that opened a run for writing: several ranks may write one run. A run ends
 * when its last writer ends; a writer whose process died (same host, pid gone) or whose
 * heartbeat went stale is marked crashed by the next open of the store.
 */
export const runWriters = sqliteTable(
  'run_writers',
  {
    runId: text('run_id')
      .notNull()
      .references(() => runs.id),
    writerId: text('writer_id').notNull(),
    host: text('host'),
    pid: integer('pid'),
    startedAt: real('started_at').notNull(),
    heartbeatAt: real('heartbeat_at').notNull(),
    endedAt: real('ended_at'),
    endState: text('end_state', { enum: ['finished', 'failed', 'crashed'] }),
    failure: text('failure'),
  },
  (t) => [
    primaryKey({ columns: [t.runId, t.writerId] }),
    index('run_writers_ended_idx').on(t.endedAt),
  ],
);

export const syncCursors = sqliteTable('sync_cursors', {
  remote: text('remote').primaryKey(),
  seq: integer('seq').notNull(),
  updatedAt: real('updated_at').notNull(),
});

export const quarantine = sqliteTable(
  'quarantine',
  {
    remote: text('remote').notNull(),
    runId: text('run_id').notNull(),
    reason: text('reason').notNull(),
    at: real('at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.remote, t.runId] })],
);

export const storeSchema = {
  meta,
  projects,
  runs,
  runWriters,
  fields,
  series,
  seriesBlocks,
  points,
  tags,
  files,
  journal,
};
