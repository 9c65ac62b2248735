import {
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

export const series = sqliteTable(
  'series',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    runId: text('run_id')
      .notNull()
      .references(() => runs.id),
    path: text('path').notNull(),
    type: text('type', { enum: ['float', 'string', 'file'] }).notNull(),
  },
  (t) => [uniqueIndex('series_run_path_idx').on(t.runId, t.path)],
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
  },
  (t) => [index('journal_run_idx').on(t.runId, t.seq)],
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

export const storeSchema = { meta, projects, runs, fields, series, points, tags, files, journal };
