import type Database from 'better-sqlite3';
import { ValidationError } from './errors.js';
import type { RunId } from './ids.js';
import { flattenFields, validatePath } from './paths.js';
import type { Store } from './store.js';
import { encodeField, type FieldInput, floatToColumns } from './values.js';

export type RunState = 'running' | 'finished' | 'failed' | 'crashed';
export type SeriesType = 'float' | 'string' | 'file';

/**
 * How `run.log` writes. `durable`: each call commits before it returns and survives kill -9.
 * `batched`: points are buffered and committed together every `flushIntervalMs` or
 * `maxBufferedPoints`, whichever comes first; a kill -9 loses at most that window.
 */
export type LogMode = 'durable' | 'batched';

export interface LogOptions {
  /** Defaults to one more than the last step this process logged to the series. */
  step?: number;
  /** Milliseconds since the epoch; defaults to the store clock. */
  timestamp?: number;
}

interface SeriesHandle {
  id: number;
  type: SeriesType;
  lastStep: number;
}

interface PendingPoint {
  seriesId: number;
  step: number;
  ts: number;
  value: number | null;
  flag: number;
  text: string | null;
}

export interface RunInternals {
  store: Store;
  id: RunId;
  project: string;
  logMode: LogMode;
  flushIntervalMs: number;
  maxBufferedPoints: number;
  ownsStore: boolean;
}

/**
 * One execution of training code. Every method writes to the local store before it returns
 * (or, in batched mode, within the documented window) and never touches the network.
 */
export class Run {
  readonly id: RunId;
  readonly project: string;
  readonly #store: Store;
  readonly #logMode: LogMode;
  readonly #flushIntervalMs: number;
  readonly #maxBuffered: number;
  readonly #ownsStore: boolean;
  readonly #series = new Map<string, SeriesHandle>();
  readonly #statements: RunStatements;
  #buffer: PendingPoint[] = [];
  #timer: NodeJS.Timeout | undefined;
  #state: RunState = 'running';
  #onStop: Array<() => void> = [];

  /** Use `initRun`; this constructor assumes the run row already exists. */
  constructor(internals: RunInternals) {
    this.id = internals.id;
    this.project = internals.project;
    this.#store = internals.store;
    this.#logMode = internals.logMode;
    this.#flushIntervalMs = internals.flushIntervalMs;
    this.#maxBuffered = internals.maxBufferedPoints;
    this.#ownsStore = internals.ownsStore;
    this.#statements = prepareStatements(internals.store.db);
  }

  get state(): RunState {
    return this.#state;
  }

  get store(): Store {
    return this.#store;
  }

  /** Sets one field, or every leaf of a nested object under `path`. Last write wins. */
  set(path: string, value: FieldInput): void {
    this.#assertOpen();
    const leaves = flattenFields(validatePath(path, 'field path'), value);
    const encoded = leaves.map(
      ([leafPath, leaf]) => [leafPath, encodeField(leaf, leafPath)] as const,
    );
    const now = this.#store.clock();

    this.#store.transaction(() => {
      for (const [leafPath, field] of encoded) {
        this.#statements.upsertField.run(this.id, leafPath, field.type, field.text, field.num, now);
        this.#store.journal.append(
          this.id,
          'field.set',
          { path: leafPath, type: field.type, value: field.text },
          now,
        );
      }
    });
  }

  /** Appends a point to a float series (numbers) or a string series (strings). */
  log(path: string, value: number | string, options: LogOptions = {}): void {
    this.#assertOpen();
    const type: SeriesType = typeof value === 'number' ? 'float' : 'string';
    if (typeof value !== 'number' && typeof value !== 'string') {
      throw new ValidationError(
        'invalid_value',
        `series ${path}: only numbers and strings are logged`,
        {
          hint: 'Log numbers for metrics, strings for text; use logFile for files.',
        },
      );
    }
    const handle = this.#seriesHandle(path, type);
    const step = this.#nextStep(handle, path, options.step);
    const ts = this.#timestamp(path, options.timestamp);
    const columns = type === 'float' ? floatToColumns(value as number) : { value: null, flag: 0 };
    this.#enqueue({
      seriesId: handle.id,
      step,
      ts,
      value: columns.value,
      flag: columns.flag,
      text: type === 'string' ? (value as string) : null,
    });
  }

  /** Logs a file as the point of a file series (an image per step, say). */
  async logFile(path: string, source: string, options: LogOptions = {}): Promise<void> {
    this.#assertOpen();
    const handle = this.#seriesHandle(path, 'file');
    const step = this.#nextStep(handle, path, options.step);
    const ts = this.#timestamp(path, options.timestamp);
    const snapshot = await this.#store.objects.snapshot(source);
    this.#enqueue({ seriesId: handle.id, step, ts, value: null, flag: 0, text: snapshot.manifest });
  }

  /**
   * Records a file or directory at `path` as its bytes are now; changing or deleting the
   * source afterwards changes nothing recorded. Resolves once the snapshot is durable.
   */
  async upload(path: string, source: string): Promise<void> {
    this.#assertOpen();
    validatePath(path, 'file path');
    const snapshot = await this.#store.objects.snapshot(source);
    const now = this.#store.clock();

    this.#store.transaction(() => {
      this.#statements.upsertFile.run(
        this.id,
        path,
        snapshot.kind,
        snapshot.manifest,
        snapshot.size,
        snapshot.fileCount,
        now,
      );
      this.#store.journal.append(
        this.id,
        'file.add',
        {
          path,
          fileKind: snapshot.kind,
          manifest: snapshot.manifest,
          size: snapshot.size,
          fileCount: snapshot.fileCount,
        },
        now,
      );
    });
  }

  addTags(...tags: string[]): void {
    this.#changeTags('tags.add', tags);
  }

  removeTags(...tags: string[]): void {
    this.#changeTags('tags.remove', tags);
  }

  /** Commits buffered points and makes everything recorded so far survive power loss. */
  flush(): void {
    this.#writeBuffer();
    this.#store.sync();
  }

  /**
   * Ends the run: writes what is buffered, records the final state and fsyncs. Passing an
   * error marks the run failed with its message. Calling stop twice is harmless.
   */
  async stop(options: { error?: unknown } = {}): Promise<void> {
    if (this.#state !== 'running') return;
    this.#writeBuffer();
    const state: RunState = options.error === undefined ? 'finished' : 'failed';
    const failure = options.error === undefined ? null : describeFailure(options.error);
    this.#finish(state, failure);
    for (const hook of this.#onStop) hook();
    if (this.#ownsStore) await this.#store.close();
  }

  /**
   * Synchronous end used on SIGINT, SIGTERM and process exit: no awaits are possible there.
   * @internal
   */
  endNow(state: RunState, failure: string | null): void {
    if (this.#state !== 'running' || this.#store.closed) return;
    this.#writeBuffer();
    this.#finish(state, failure);
  }

  /** @internal Registers work to undo when the run stops (exit hooks, heartbeats). */
  onStop(hook: () => void): void {
    this.#onStop.push(hook);
  }

  #finish(state: RunState, failure: string | null): void {
    const now = this.#store.clock();
    this.#store.transaction(() => {
      this.#statements.setState.run(state, now, failure, this.id);
      this.#store.journal.append(this.id, 'run.state', { state, failure }, now);
    });
    this.#store.sync();
    this.#state = state;
  }

  #changeTags(kind: 'tags.add' | 'tags.remove', tags: string[]): void {
    this.#assertOpen();
    const clean = [...new Set(tags.map(validateTag))];
    if (clean.length === 0) return;
    const now = this.#store.clock();
    const statement = kind === 'tags.add' ? this.#statements.addTag : this.#statements.removeTag;
    this.#store.transaction(() => {
      for (const tag of clean) statement.run(this.id, tag);
      this.#store.journal.append(this.id, kind, { tags: clean }, now);
    });
  }

  #enqueue(point: PendingPoint): void {
    this.#buffer.push(point);
    if (this.#logMode === 'durable' || this.#buffer.length >= this.#maxBuffered) {
      this.#writeBuffer();
      return;
    }
    this.#timer ??= setTimeout(() => this.#writeBuffer(), this.#flushIntervalMs).unref();
  }

  /** Commits buffered points and their one journal entry in a single transaction. */
  #writeBuffer(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#buffer.length === 0) return;
    const points = this.#buffer;
    this.#buffer = [];

    const insert = this.#statements.insertPoint;
    const at = this.#store.clock();
    this.#store.transaction(() => {
      let first = 0;
      let last = 0;
      for (let i = 0; i < points.length; i++) {
        const p = points[i] as PendingPoint;
        last = Number(
          insert.run(p.seriesId, p.step, p.ts, p.value, p.flag, p.text).lastInsertRowid,
        );
        if (i === 0) first = last;
      }
      this.#store.journal.append(this.id, 'points', null, at, [first, last]);
    });
  }

  #seriesHandle(path: string, type: SeriesType): SeriesHandle {
    const known = this.#series.get(path);
    if (known !== undefined) {
      if (known.type !== type) throw seriesTypeError(path, known.type, type);
      return known;
    }

    validatePath(path, 'series path');
    const row = this.#store.transaction(() => {
      this.#statements.insertSeries.run(this.id, path, type);
      return this.#statements.findSeries.get(this.id, path) as {
        id: number;
        type: SeriesType;
        last: number | null;
      };
    });
    if (row.type !== type) throw seriesTypeError(path, row.type, type);
    const handle = { id: row.id, type, lastStep: row.last ?? -1 };
    this.#series.set(path, handle);
    return handle;
  }

  #nextStep(handle: SeriesHandle, path: string, step: number | undefined): number {
    if (step === undefined) {
      handle.lastStep = Math.floor(handle.lastStep) + 1;
      return handle.lastStep;
    }
    if (typeof step !== 'number' || !Number.isFinite(step)) {
      throw new ValidationError('invalid_step', `series ${path}: step must be a finite number`, {
        hint: 'Pass an integer or float step, or leave it out to count up from the last one.',
      });
    }
    handle.lastStep = Math.max(handle.lastStep, step);
    return step;
  }

  #timestamp(path: string, timestamp: number | undefined): number {
    if (timestamp === undefined) return this.#store.clock();
    if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) {
      throw new ValidationError(
        'invalid_timestamp',
        `series ${path}: timestamp must be finite ms since the epoch`,
        {
          hint: 'Pass Date.now()-style milliseconds, or leave it out.',
        },
      );
    }
    return timestamp;
  }

  #assertOpen(): void {
    if (this.#state !== 'running') {
      throw new ValidationError('run_ended', `run ${this.id} has ended (${this.#state})`, {
        hint: 'Start a new run, or reopen this one with initRun({ resume: runId }).',
      });
    }
  }
}

interface RunStatements {
  upsertField: Database.Statement;
  insertPoint: Database.Statement;
  insertSeries: Database.Statement;
  findSeries: Database.Statement;
  upsertFile: Database.Statement;
  addTag: Database.Statement;
  removeTag: Database.Statement;
  setState: Database.Statement;
}

function prepareStatements(db: Database.Database): RunStatements {
  return {
    upsertField: db.prepare(
      `INSERT INTO fields (run_id, path, type, value, num, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(run_id, path) DO UPDATE SET type = excluded.type, value = excluded.value,
       num = excluded.num, updated_at = excluded.updated_at`,
    ),
    insertPoint: db.prepare(
      'INSERT INTO points (series_id, step, ts, value, flag, text) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    insertSeries: db.prepare('INSERT OR IGNORE INTO series (run_id, path, type) VALUES (?, ?, ?)'),
    findSeries: db.prepare(
      `SELECT s.id, s.type, (SELECT max(step) FROM points WHERE series_id = s.id) AS last
       FROM series s WHERE s.run_id = ? AND s.path = ?`,
    ),
    upsertFile: db.prepare(
      `INSERT INTO files (run_id, path, kind, manifest, size, file_count, logged_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(run_id, path) DO UPDATE SET kind = excluded.kind, manifest = excluded.manifest,
       size = excluded.size, file_count = excluded.file_count, logged_at = excluded.logged_at`,
    ),
    addTag: db.prepare('INSERT OR IGNORE INTO tags (run_id, tag) VALUES (?, ?)'),
    removeTag: db.prepare('DELETE FROM tags WHERE run_id = ? AND tag = ?'),
    setState: db.prepare('UPDATE runs SET state = ?, ended_at = ?, failure = ? WHERE id = ?'),
  };
}

function validateTag(tag: unknown): string {
  if (typeof tag !== 'string' || tag.length === 0 || tag.length > 1024) {
    throw new ValidationError('invalid_tag', 'a tag must be a string of 1 to 1024 characters', {
      hint: "Pass tags as plain strings: run.addTags('baseline', 'v2').",
    });
  }
  return tag;
}

function seriesTypeError(path: string, existing: SeriesType, wanted: SeriesType): ValidationError {
  return new ValidationError(
    'series_type_mismatch',
    `series ${path} holds ${existing} values, not ${wanted}`,
    {
      hint: 'Log this value under another path.',
    },
  );
}

function describeFailure(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
