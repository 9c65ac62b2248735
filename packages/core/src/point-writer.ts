import type Database from 'better-sqlite3';
import type { RunId } from './ids.js';
import { BLOCK_POINTS, type BlockAccumulator } from './series-blocks.js';
import { toStoreError } from './sqlite-errors.js';
import type { Store } from './store.js';
import { flagValue, floatFlag, PointFlag } from './values.js';

export type SeriesType = 'float' | 'string' | 'file';

/**
 * The most points one run holds in memory for packing, across its series (24 MB): a run with
 * thousands of series stops packing the ones that would go past it, and those read row by row.
 */
const MAX_HELD_POINTS = 1 << 20;

/** What a run knows about one of its series while it writes. */
export interface SeriesHandle {
  id: number;
  path: string;
  type: SeriesType;
  /** The highest step logged so far, for automatic steps. */
  lastStep: number;
  /** Undefined once packing from memory is not possible (another writer shares the series). */
  blocks: BlockAccumulator | undefined;
  /** @internal The summary of the commit in progress; set only while one is written. */
  delta?: SeriesDelta | undefined;
}

/** One commit's summary of the points it adds to a series. */
export interface SeriesDelta {
  handle: SeriesHandle;
  n: number;
  nans: number;
  min: number | null;
  max: number | null;
  firstStep: number;
  lastStep: number;
  lastValue: number | null;
  lastFlag: number;
  lastText: string | null;
}

/**
 * Holds a run's points until they are committed, then writes them with everything that must
 * change in the same transaction: the points rows, each series' summary (count, NaN count,
 * min, max, first and last step, last value), full packed blocks and, for batches, the journal
 * entry. Buffers are columns of plain arrays, since a training loop may log millions of points.
 */
export class PointWriter {
  readonly #store: Store;
  readonly #runId: RunId;
  readonly #s: ReturnType<typeof prepare>;
  #handles: SeriesHandle[] = [];
  #steps: number[] = [];
  #ts: number[] = [];
  #floats: Array<number | null> = [];
  #texts: Array<string | null> = [];
  /** Points held in memory blocks across this run's series. */
  #held = 0;
  readonly #many: Database.Transaction<
    (count: number, deltas: SeriesDelta[], seal: boolean) => void
  >;
  readonly #one: Database.Transaction<
    (
      handle: SeriesHandle,
      step: number,
      ts: number,
      float: number | null,
      text: string | null,
    ) => void
  >;
  /** Reused for every single-point commit: a durable log should allocate as little as it can. */
  readonly #summary = {
    id: 0,
    n: 1,
    nans: 0,
    min: null as number | null,
    max: null as number | null,
    firstStep: 0,
    lastStep: 0,
    lastValue: null as number | null,
    lastFlag: 0,
    lastText: null as string | null,
  };

  constructor(store: Store, runId: RunId) {
    this.#store = store;
    this.#runId = runId;
    this.#s = prepare(store.db);
    this.#many = store.db.transaction((count, deltas, seal) => this.#write(count, deltas, seal));
    this.#one = store.db.transaction((handle, step, ts, float, text) =>
      this.#writeOne(handle, step, ts, float, text),
    );
  }

  get pending(): number {
    return this.#handles.length;
  }

  /** Buffers one point: `float` for float series (any float64), `text` for the others. */
  add(handle: SeriesHandle, step: number, ts: number, float: number | null, text: string | null) {
    this.#handles.push(handle);
    this.#steps.push(step);
    this.#ts.push(ts);
    this.#floats.push(float);
    this.#texts.push(text);
  }

  /**
   * Commits every buffered point in one transaction. With `seal`, the journal entry covering
   * them is written too; a durable single point skips it to cost no more than a plain insert,
   * and `Journal.seal` covers it before the journal is read. On failure nothing is dropped: the
   * points stay buffered for the next commit and the error is thrown.
   */
  commit(seal: boolean): void {
    const count = this.#handles.length;
    if (count === 0) return;
    const deltas: SeriesDelta[] = [];
    try {
      this.#many.immediate(count, deltas, seal);
    } catch (error) {
      // A rolled-back transaction may have left points in memory blocks that are not stored.
      for (const delta of deltas) this.#stopPacking(delta.handle);
      throw toStoreError(error, this.#store.dbPath);
    }
    this.#handles.length = 0;
    this.#steps.length = 0;
    this.#ts.length = 0;
    this.#floats.length = 0;
    this.#texts.length = 0;
  }

  /**
   * Commits one point at once, without the journal entry (see `commit`): the durable path,
   * which should cost little more than a plain autocommit insert (issue 3, performance).
   * Points still buffered are committed first, so points reach the store in the order logged.
   */
  commitOne(
    handle: SeriesHandle,
    step: number,
    ts: number,
    float: number | null,
    text: string | null,
  ): void {
    if (this.#handles.length > 0) this.commit(false);
    try {
      this.#one.immediate(handle, step, ts, float, text);
    } catch (error) {
      this.#stopPacking(handle);
      throw toStoreError(error, this.#store.dbPath);
    }
  }

  #writeOne(
    handle: SeriesHandle,
    step: number,
    ts: number,
    float: number | null,
    text: string | null,
  ): void {
    const flag = float === null ? PointFlag.plain : floatFlag(float);
    const value = float === null ? null : flagValue(float, flag);
    const point = Number(
      this.#s.insertPoint.run(handle.id, step, ts, value, flag, text).lastInsertRowid,
    );

    const summary = this.#summary;
    summary.id = handle.id;
    summary.nans = flag === PointFlag.nan ? 1 : 0;
    summary.min = value;
    summary.max = value;
    summary.firstStep = step;
    summary.lastStep = step;
    summary.lastValue = value;
    summary.lastFlag = flag;
    summary.lastText = text;
    this.#s.updateSummary.run(summary);

    if (float !== null && this.#hold(handle)) {
      const blocks = handle.blocks as BlockAccumulator;
      blocks.push(point, step, ts, float);
      if (blocks.count >= BLOCK_POINTS) this.#pack(handle, blocks);
    }
  }

  #write(count: number, deltas: SeriesDelta[], seal: boolean): void {
    try {
      this.#writeMany(count, deltas, seal);
    } finally {
      for (const delta of deltas) delta.handle.delta = undefined;
    }
  }

  #writeMany(count: number, deltas: SeriesDelta[], seal: boolean): void {
    const insert = this.#s.insertPoint;
    let first = 0;
    for (let i = 0; i < count; i++) {
      const handle = this.#handles[i] as SeriesHandle;
      const step = this.#steps[i] as number;
      const ts = this.#ts[i] as number;
      const float = this.#floats[i] as number | null;
      const text = this.#texts[i] as string | null;

      const flag = float === null ? PointFlag.plain : floatFlag(float);
      const value = float === null ? null : flagValue(float, flag);
      const point = Number(insert.run(handle.id, step, ts, value, flag, text).lastInsertRowid);
      if (i === 0) first = point;

      let delta = handle.delta;
      if (delta === undefined) {
        delta = newDelta(handle, step);
        handle.delta = delta;
        deltas.push(delta);
      }
      delta.n += 1;
      if (flag === PointFlag.nan) delta.nans += 1;
      if (value !== null) {
        if (delta.min === null || value < delta.min) delta.min = value;
        if (delta.max === null || value > delta.max) delta.max = value;
      }
      if (step < delta.firstStep) delta.firstStep = step;
      if (step >= delta.lastStep) {
        delta.lastStep = step;
        delta.lastValue = value;
        delta.lastFlag = flag;
        delta.lastText = text;
      }
      if (float !== null && this.#hold(handle)) handle.blocks?.push(point, step, ts, float);
    }

    for (const delta of deltas) {
      this.#s.updateSummary.run({
        id: delta.handle.id,
        n: delta.n,
        nans: delta.nans,
        min: delta.min,
        max: delta.max,
        firstStep: delta.firstStep,
        lastStep: delta.lastStep,
        lastValue: delta.lastValue,
        lastFlag: delta.lastFlag,
        lastText: delta.lastText,
      });
      const blocks = delta.handle.blocks;
      if (blocks !== undefined && blocks.count >= BLOCK_POINTS) this.#pack(delta.handle, blocks);
    }
    if (seal) this.#store.journal.coverPoints(this.#runId, first, first + count - 1);
  }

  /** Counts the points a series' accumulator already holds when the run starts writing it. */
  track(handle: SeriesHandle): void {
    this.#held += handle.blocks?.count ?? 0;
  }

  /** Whether one more point of this series may be held for packing (see MAX_HELD_POINTS). */
  #hold(handle: SeriesHandle): boolean {
    if (handle.blocks === undefined) return false;
    if (this.#held >= MAX_HELD_POINTS) {
      this.#stopPacking(handle);
      return false;
    }
    this.#held += 1;
    return true;
  }

  #stopPacking(handle: SeriesHandle): void {
    this.#held -= handle.blocks?.count ?? 0;
    handle.blocks = undefined;
  }

  /**
   * Stores the accumulated points of a series as a block, if they are exactly the series'
   * points after its last block; another writer's points in between make that impossible, and
   * the series is then read row by row after its last block.
   */
  #pack(handle: SeriesHandle, blocks: BlockAccumulator): void {
    const row = this.#s.packState.get(handle.id) as {
      unpacked: number;
      packed_through: number;
    };
    if (row.unpacked !== blocks.count || row.packed_through >= blocks.firstPoint) {
      this.#stopPacking(handle);
      return;
    }
    const block = blocks.take();
    this.#held -= block.count;
    this.#s.insertBlock.run(handle.id, block.first, block.last, block.count, block.data);
    this.#s.setPacked.run(block.last, block.count, handle.id);
  }
}

function newDelta(handle: SeriesHandle, step: number): SeriesDelta {
  return {
    handle,
    n: 0,
    nans: 0,
    min: null,
    max: null,
    firstStep: step,
    lastStep: step,
    lastValue: null,
    lastFlag: 0,
    lastText: null,
  };
}

function prepare(db: Database.Database) {
  return {
    insertPoint: db.prepare(
      'INSERT INTO points (series_id, step, ts, value, flag, text) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    // Every SET expression reads the row as it was, so `last_step` below is the old one.
    updateSummary: db.prepare(
      `UPDATE series SET
         point_count = point_count + @n,
         nan_count = nan_count + @nans,
         min_value = CASE WHEN @min IS NULL THEN min_value
           WHEN min_value IS NULL OR @min < min_value THEN @min ELSE min_value END,
         max_value = CASE WHEN @max IS NULL THEN max_value
           WHEN max_value IS NULL OR @max > max_value THEN @max ELSE max_value END,
         first_step = CASE WHEN first_step IS NULL OR @firstStep < first_step THEN @firstStep
           ELSE first_step END,
         last_value = CASE WHEN last_step IS NULL OR @lastStep >= last_step THEN @lastValue
           ELSE last_value END,
         last_flag = CASE WHEN last_step IS NULL OR @lastStep >= last_step THEN @lastFlag
           ELSE last_flag END,
         last_text = CASE WHEN last_step IS NULL OR @lastStep >= last_step THEN @lastText
           ELSE last_text END,
         last_step = CASE WHEN last_step IS NULL OR @lastStep >= last_step THEN @lastStep
           ELSE last_step END
       WHERE id = @id`,
    ),
    packState: db.prepare(
      'SELECT point_count - packed_count AS unpacked, packed_through FROM series WHERE id = ?',
    ),
    insertBlock: db.prepare(
      'INSERT INTO series_blocks (series_id, first_point, last_point, point_count, data) VALUES (?, ?, ?, ?, ?)',
    ),
    setPacked: db.prepare(
      'UPDATE series SET packed_through = ?, packed_count = packed_count + ? WHERE id = ?',
    ),
  };
}
