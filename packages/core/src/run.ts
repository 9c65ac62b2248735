import { validateArtifactPath } from './artifact-path.js';
import type { Snapshot } from './artifact-store.js';
import { ValidationError } from './errors.js';
import type { RunId } from './ids.js';
import { flattenFields, validatePath } from './paths.js';
import { PendingWork } from './pending-work.js';
import { PointWriter, type SeriesHandle, type SeriesType } from './point-writer.js';
import { describeFailure, seriesTypeError, unloggable, validateTag } from './run-input.js';
import { prepareStatements, type RunStatements } from './run-statements.js';
import type { EndState } from './run-writers.js';
import { resumeAccumulator } from './series-blocks.js';
import type { Store } from './store.js';
import { assertWellFormed, encodeField, type FieldInput } from './values.js';

export type { SeriesType } from './point-writer.js';
export type RunState = 'running' | EndState;

/**
 * How `run.log` writes. `durable`: each call commits before it returns and survives kill -9.
 * `batched`: points are buffered and committed together every `flushIntervalMs` or
 * `maxBufferedPoints`, whichever comes first; a kill -9 loses at most that window.
 */
export type LogMode = 'durable' | 'batched';

export interface LogOptions {
  /** Defaults to one more than the highest step of the series (counted by this process). */
  step?: number;
  /** Milliseconds since the epoch; defaults to the store clock. */
  timestamp?: number;
}

export interface RunInternals {
  store: Store;
  id: RunId;
  project: string;
  logMode: LogMode;
  flushIntervalMs: number;
  maxBufferedPoints: number;
  ownsStore: boolean;
  /** Automatic steps of a fork start after the step it was forked at. */
  startStep: number;
}

/** How often a writing run says it is alive, at most (see RunWriters). */
export const HEARTBEAT_MS = 30_000;

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
  readonly #startStep: number;
  readonly #series = new Map<string, SeriesHandle>();
  readonly #statements: RunStatements;
  readonly #points: PointWriter;
  readonly #pending = new PendingWork();
  #timer: NodeJS.Timeout | undefined;
  #state: RunState = 'running';
  /** Set by the first `stop`: the run takes no new calls while it waits for pending ones. */
  #stopping: Promise<void> | undefined;
  #lastBeat: number;
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
    this.#startStep = internals.startStep;
    this.#statements = prepareStatements(internals.store.db);
    this.#points = new PointWriter(internals.store, internals.id);
    this.#lastBeat = internals.store.clock();
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

    this.#store.transaction(() => {
      for (const [leafPath, field] of encoded) {
        this.#statements.upsertField.run(
          this.id,
          leafPath,
          field.type,
          field.text,
          field.num,
          this.#store.opTime(),
        );
        this.#store.journal.append(this.id, 'field.set', {
          path: leafPath,
          type: field.type,
          value: field.text,
        });
      }
    });
  }

  /** Appends a point to a float series (numbers) or a string series (strings). */
  log(path: string, value: number | string, options?: LogOptions): void {
    this.#assertOpen();
    let type: SeriesType;
    if (typeof value === 'number') type = 'float';
    else if (typeof value === 'string') type = 'string';
    else throw unloggable(path, value);
    const handle = this.#seriesHandle(path, type);
    const step = this.#nextStep(handle, path, options?.step);
    const ts = this.#timestamp(path, options?.timestamp);
    if (type === 'string') assertWellFormed(value as string, `series ${path}`);
    const float = type === 'float' ? (value as number) : null;
    const text = type === 'string' ? (value as string) : null;

    if (this.#logMode === 'durable') {
      this.#points.commitOne(handle, step, ts, float, text);
      this.#afterCommit();
      return;
    }
    this.#points.add(handle, step, ts, float, text);
    this.#afterAdd();
  }

  /**
   * Logs a file as the point of a file series (an image per step, say). Like `upload`, the
   * bytes are recorded as they are now and the call resolves once they are durable.
   */
  async logFile(path: string, source: string, options: LogOptions = {}): Promise<void> {
    this.#assertOpen();
    validateArtifactPath(path, 'series path');
    const handle = this.#seriesHandle(path, 'file');
    const step = this.#nextStep(handle, path, options.step);
    const ts = this.#timestamp(path, options.timestamp);
    const ingest = this.#store.objects.ingest(source, (snapshot) => {
      this.#assertRecordable();
      this.#points.add(handle, step, ts, null, snapshot.manifest);
      // Committed now whatever the log mode: until the point is stored nothing references the
      // new objects, and the marker that keeps gc away from them ends with this callback.
      this.#commit(this.#logMode !== 'durable');
    });
    await this.#pending.track(ingest);
  }

  /**
   * Records a file or directory at `path` as its bytes are now; changing or deleting the
   * source afterwards changes nothing recorded. Resolves once the snapshot is durable.
   * Symbolic links are followed, in the source and inside a folder (docs/artifacts.md).
   */
  async upload(path: string, source: string): Promise<void> {
    this.#assertOpen();
    validateArtifactPath(path, 'file path');
    const ingest = this.#store.objects.ingest(source, (snapshot) =>
      this.#recordFile(path, snapshot),
    );
    await this.#pending.track(ingest);
  }

  addTags(...tags: string[]): void {
    this.#changeTags('tags.add', tags);
  }

  removeTags(...tags: string[]): void {
    this.#changeTags('tags.remove', tags);
  }

  /** Commits buffered points and makes everything recorded so far survive power loss. */
  flush(): void {
    this.#commit(true);
    this.#store.sync();
  }

  /**
   * Ends this process's part in the run: waits for the uploads and `logFile` calls already
   * made (awaited or not) to record their snapshot or fail, writes what is buffered, records
   * the final state and fsyncs. Calls made after `stop` reject with `run_ended`. Passing an
   * error marks the run failed with its message. When other processes still write the run, it
   * stays running until the last of them stops. Calling stop twice is harmless.
   */
  async stop(options: { error?: unknown } = {}): Promise<void> {
    if (this.#state !== 'running') return;
    // A stop that failed (a full disk, say) leaves the run running, to be stopped again.
    this.#stopping ??= this.#stopAfterPending(options.error).catch((error: unknown) => {
      this.#stopping = undefined;
      throw error;
    });
    await this.#stopping;
  }

  /**
   * Synchronous end used on SIGINT, SIGTERM and process exit: no awaits are possible there.
   * @internal
   */
  endNow(state: EndState, failure: string | null): void {
    if (this.#state !== 'running' || this.#store.closed) return;
    this.#finish(state, failure);
    for (const hook of this.#onStop) hook();
  }

  /** @internal Registers work to undo when the run stops (exit hooks, heartbeats). */
  onStop(hook: () => void): void {
    this.#onStop.push(hook);
  }

  /** @internal Tells the store this writer is alive. */
  heartbeat(): void {
    if (this.#state !== 'running' || this.#store.closed) return;
    this.#lastBeat = this.#store.clock();
    this.#store.writers.beat(this.id);
  }

  async #stopAfterPending(error: unknown): Promise<void> {
    await this.#pending.drain();
    // An exit hook may have ended the run while it waited.
    if (this.#state !== 'running') return;
    const failed = error !== undefined;
    this.#finish(failed ? 'failed' : 'finished', failed ? describeFailure(error) : null);
    for (const hook of this.#onStop) hook();
    if (this.#ownsStore) await this.#store.close();
  }

  #recordFile(path: string, snapshot: Snapshot): void {
    this.#assertRecordable();
    this.#store.transaction(() => {
      this.#statements.upsertFile.run(
        this.id,
        path,
        snapshot.kind,
        snapshot.manifest,
        snapshot.size,
        snapshot.fileCount,
        this.#store.opTime(),
      );
      this.#store.journal.append(this.id, 'file.add', {
        path,
        fileKind: snapshot.kind,
        manifest: snapshot.manifest,
        size: snapshot.size,
        fileCount: snapshot.fileCount,
      });
    });
  }

  #finish(state: EndState, failure: string | null): void {
    this.#commit(true);
    // Seal first, so the run's points reach a server before the state that ends it.
    this.#store.journal.seal();
    this.#store.writers.end(this.id, state, failure);
    this.#store.sync();
    this.#state = state;
  }

  #changeTags(kind: 'tags.add' | 'tags.remove', tags: string[]): void {
    this.#assertOpen();
    const clean = [...new Set(tags.map(validateTag))];
    if (clean.length === 0) return;
    const statement = kind === 'tags.add' ? this.#statements.addTag : this.#statements.removeTag;
    this.#store.transaction(() => {
      for (const tag of clean) statement.run(this.id, tag);
      this.#store.journal.append(this.id, kind, { tags: clean });
    });
  }

  #afterAdd(): void {
    if (this.#logMode === 'durable') {
      this.#commit(false);
      return;
    }
    if (this.#points.pending >= this.#maxBuffered) {
      this.#commit(true);
      return;
    }
    this.#timer ??= setTimeout(() => this.#commitFromTimer(), this.#flushIntervalMs).unref();
  }

  #commit(seal: boolean): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#points.commit(seal);
    this.#afterCommit();
  }

  /** A writer that commits says it is alive, at most once per heartbeat period. */
  #afterCommit(): void {
    if (this.#store.clock() - this.#lastBeat >= HEARTBEAT_MS) this.heartbeat();
  }

  /** A timer cannot throw to anyone: a failed commit keeps its points and tries again later. */
  #commitFromTimer(): void {
    this.#timer = undefined;
    try {
      this.#commit(true);
    } catch (error) {
      this.#store.logger.error('flush_failed', {
        run_id: this.id,
        pending: this.#points.pending,
        error: error instanceof Error ? error.message : String(error),
      });
      this.#timer = setTimeout(() => this.#commitFromTimer(), this.#flushIntervalMs).unref();
    }
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
        last_step: number | null;
        unpacked: number;
        packed_through: number;
      };
    });
    if (row.type !== type) throw seriesTypeError(path, row.type, type);
    const handle: SeriesHandle = {
      id: row.id,
      path,
      type,
      lastStep: row.last_step ?? this.#startStep,
      blocks:
        type === 'float'
          ? resumeAccumulator(this.#store.db, row.id, row.packed_through, row.unpacked)
          : undefined,
    };
    this.#points.track(handle);
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
    if (step > handle.lastStep) handle.lastStep = step;
    return step;
  }

  #timestamp(path: string, timestamp: number | undefined): number {
    if (timestamp === undefined) return this.#store.clock();
    if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) {
      throw new ValidationError(
        'invalid_timestamp',
        `series ${path}: timestamp must be finite ms since the epoch`,
        { hint: 'Pass Date.now()-style milliseconds, or leave it out.' },
      );
    }
    return timestamp;
  }

  /** A new call is refused once the run has ended, and from the moment `stop` is called. */
  #assertOpen(): void {
    if (this.#stopping !== undefined && this.#state === 'running') {
      throw new ValidationError('run_ended', `run ${this.id} is stopping`, {
        hint: 'Make every call before run.stop(), or resume the run with initRun({ resume }).',
      });
    }
    this.#assertRecordable();
  }

  /** A snapshot a call started before `stop` may still be recorded, until the run has ended. */
  #assertRecordable(): void {
    if (this.#state !== 'running') {
      throw new ValidationError('run_ended', `run ${this.id} has ended (${this.#state})`, {
        hint: 'Start a new run, or reopen this one with initRun({ resume: runId }).',
      });
    }
    if (this.#store.closed) {
      throw new ValidationError('run_ended', `the store of run ${this.id} is closed`, {
        hint: 'Stop the run before closing the store it writes to.',
      });
    }
  }
}
