import type Database from 'better-sqlite3';
import type { OpId, RunId, Seq } from './ids.js';
import { columnsToFloat, toWireFloat } from './values.js';
import type { Op, OpKind, PointsOp, WirePoint } from './wire.js';

/** One operation still to be replayed, at its place in this store's journal. */
export interface JournalEntry {
  seq: Seq;
  op: Op;
  /** Points carried, for batching and progress. */
  pointCount: number;
}

export interface ReadLimits {
  maxEntries: number;
  /** Stop adding entries once this many points are in the batch (at least one entry is read). */
  maxPoints: number;
}

/** The most points one journal entry carries, so one entry always fits one request. */
export const MAX_POINTS_PER_ENTRY = 10_000;

interface JournalRow {
  seq: number;
  op_id: string;
  run_id: string;
  kind: OpKind;
  payload: string | null;
  first_point: number | null;
  last_point: number | null;
  point_count: number | null;
  created_at: number;
  project: string;
}

interface PointRow {
  path: string;
  type: 'float' | 'string' | 'file';
  step: number;
  ts: number;
  value: number | null;
  flag: number;
  text: string | null;
}

/**
 * The outbox of operations a store has recorded, in local order. Writers append inside the
 * same transaction that changes the tables, so the journal and the tables never disagree.
 *
 * Points are not copied into the journal: an entry names a rowid range and a run, and carries
 * that run's points in the range (points are never updated). A durable `run.log` commits its
 * point alone, without an entry, to stay as cheap as a plain insert; such points are above the
 * store's seal mark (`meta.sealed_point`) and `seal()` covers them with entries before anyone
 * reads the journal. Every point is covered by exactly one entry once sealed.
 */
export class Journal {
  readonly #db: Database.Database;
  readonly #writerId: string;
  readonly #now: () => number;
  #counter = 0;
  readonly #s: ReturnType<typeof prepare>;

  constructor(db: Database.Database, writerId: string, now: () => number) {
    this.#db = db;
    this.#writerId = writerId;
    this.#now = now;
    this.#s = prepare(db);
  }

  /** Mints the next operation id of this writer. */
  nextOpId(): OpId {
    this.#counter += 1;
    // Fixed width, so one writer's ids sort as strings in the order it minted them: the
    // server breaks last-writer-wins ties between equal timestamps by id.
    return `${this.#writerId}-${this.#counter.toString(36).padStart(11, '0')}` as OpId;
  }

  /** Appends one entry. Call inside the transaction that made the change it describes. */
  append(runId: RunId, kind: Exclude<OpKind, 'points'>, payload: object): Seq {
    const result = this.#s.insert.run(
      this.nextOpId(),
      runId,
      kind,
      JSON.stringify(payload),
      null,
      null,
      null,
      this.#now(),
    );
    return Number(result.lastInsertRowid) as Seq;
  }

  /**
   * Covers the points rows `first..last` that the current transaction inserted for `runId`.
   * When every earlier point is covered already, that is one entry; otherwise the points other
   * writers left unsealed are sealed with them.
   */
  coverPoints(runId: RunId, first: number, last: number): void {
    if (this.#sealMark() !== first - 1) {
      this.seal();
      return;
    }
    for (let from = first; from <= last; from += MAX_POINTS_PER_ENTRY) {
      const to = Math.min(last, from + MAX_POINTS_PER_ENTRY - 1);
      this.#appendPoints(runId, from, to, to - from + 1);
    }
    this.#s.setMark.run(String(last));
  }

  /**
   * Covers every point not yet in an entry: one entry per run and per 10,000 of its points, in
   * rowid order. Cheap when there is nothing to seal; otherwise takes the write lock briefly.
   * Returns the number of entries added.
   */
  seal(): number {
    const newest = (this.#s.newestPoint.get() as { id: number | null }).id ?? 0;
    if (newest <= this.#sealMark()) return 0;

    return this.#db
      .transaction(() => {
        const mark = this.#sealMark();
        const top = (this.#s.newestPoint.get() as { id: number | null }).id ?? 0;
        if (top <= mark) return 0;
        const groups = this.#s.pendingGroups.all(MAX_POINTS_PER_ENTRY, mark) as Array<{
          run_id: RunId;
          first: number;
          last: number;
          n: number;
        }>;
        for (const group of groups)
          this.#appendPoints(group.run_id, group.first, group.last, group.n);
        this.#s.setMark.run(String(top));
        return groups.length;
      })
      .immediate();
  }

  /** The highest points rowid covered by an entry. */
  sealedThrough(): number {
    return this.#sealMark();
  }

  /** Reads entries after `after`, bounded in entries and points, with their operations built. */
  readAfter(after: Seq, limits: ReadLimits): JournalEntry[] {
    this.seal();
    const rows = this.#s.readAfter.all(after, limits.maxEntries) as JournalRow[];
    const out: JournalEntry[] = [];
    let points = 0;
    for (const row of rows) {
      const pointCount = countOf(row);
      if (out.length > 0 && points + pointCount > limits.maxPoints) break;
      out.push({ seq: row.seq as Seq, op: this.#buildOp(row), pointCount });
      points += pointCount;
    }
    return out;
  }

  /**
   * Reads one run's entries after `after`, in journal order and bounded like `readAfter`. Used
   * to send a run again from its start (releasing a quarantine); walks `journal_run_idx`.
   */
  readRun(runId: RunId, after: Seq, limits: ReadLimits): JournalEntry[] {
    this.seal();
    const rows = this.#db
      .prepare(
        `SELECT j.*, p.name AS project FROM journal j
         JOIN runs r ON r.id = j.run_id JOIN projects p ON p.id = r.project_id
         WHERE j.run_id = ? AND j.seq > ? ORDER BY j.seq LIMIT ?`,
      )
      .all(runId, after, limits.maxEntries) as JournalRow[];
    const out: JournalEntry[] = [];
    let points = 0;
    for (const row of rows) {
      const pointCount = countOf(row);
      if (out.length > 0 && points + pointCount > limits.maxPoints) break;
      out.push({ seq: row.seq as Seq, op: this.#buildOp(row), pointCount });
      points += pointCount;
    }
    return out;
  }

  /** The last entry's position, after sealing pending points. */
  lastSeq(): Seq {
    this.seal();
    const row = this.#db.prepare('SELECT max(seq) AS seq FROM journal').get() as {
      seq: number | null;
    };
    return (row.seq ?? 0) as Seq;
  }

  countAfter(after: Seq): number {
    this.seal();
    const row = this.#db.prepare('SELECT count(*) AS n FROM journal WHERE seq > ?').get(after) as {
      n: number;
    };
    return row.n;
  }

  getCursor(remote: string): Seq {
    const row = this.#db.prepare('SELECT seq FROM sync_cursors WHERE remote = ?').get(remote) as
      | { seq: number }
      | undefined;
    return (row?.seq ?? 0) as Seq;
  }

  /** Moves the cursor forward only; a stale pass can never move it back. */
  setCursor(remote: string, seq: Seq, now: number): void {
    this.#db
      .prepare(
        `INSERT INTO sync_cursors (remote, seq, updated_at) VALUES (?, ?, ?)
         ON CONFLICT(remote) DO UPDATE SET seq = max(seq, excluded.seq), updated_at = excluded.updated_at`,
      )
      .run(remote, seq, now);
  }

  #appendPoints(runId: RunId, first: number, last: number, count: number): void {
    this.#s.insert.run(this.nextOpId(), runId, 'points', null, first, last, count, this.#now());
  }

  #sealMark(): number {
    const row = this.#s.getMark.get() as { value: string } | undefined;
    return row === undefined ? 0 : Number(row.value);
  }

  #buildOp(row: JournalRow): Op {
    const base = {
      id: row.op_id as OpId,
      runId: row.run_id as RunId,
      project: row.project,
      at: row.created_at,
    };
    if (row.kind === 'points') {
      return { ...base, kind: 'points', series: this.#readSeries(row) } satisfies PointsOp;
    }
    return { ...base, kind: row.kind, ...(JSON.parse(row.payload ?? '{}') as object) } as Op;
  }

  #readSeries(row: JournalRow): PointsOp['series'] {
    const rows = this.#s.readPoints.all(row.first_point, row.last_point, row.run_id) as PointRow[];
    const bySeries = new Map<string, PointsOp['series'][number]>();
    for (const point of rows) {
      let entry = bySeries.get(point.path);
      if (entry === undefined) {
        entry = { path: point.path, type: point.type, points: [] };
        bySeries.set(point.path, entry);
      }
      const value: WirePoint[2] =
        point.type === 'float'
          ? toWireFloat(columnsToFloat(point.value, point.flag))
          : (point.text ?? '');
      entry.points.push([point.step, point.ts, value]);
    }
    return [...bySeries.values()];
  }
}

function countOf(row: JournalRow): number {
  if (row.point_count !== null) return row.point_count;
  if (row.first_point === null || row.last_point === null) return 0;
  return row.last_point - row.first_point + 1;
}

function prepare(db: Database.Database) {
  return {
    insert: db.prepare(
      `INSERT INTO journal (op_id, run_id, kind, payload, first_point, last_point, point_count, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    readAfter: db.prepare(
      `SELECT j.*, p.name AS project FROM journal j
       JOIN runs r ON r.id = j.run_id JOIN projects p ON p.id = r.project_id
       WHERE j.seq > ? ORDER BY j.seq LIMIT ?`,
    ),
    // The run filter matters: a sealed range may hold other runs' points between this run's.
    // CROSS JOIN keeps SQLite walking the rowid range instead of every point of each series.
    readPoints: db.prepare(
      `SELECT s.path, s.type, p.step, p.ts, p.value, p.flag, p.text
       FROM points p CROSS JOIN series s ON s.id = p.series_id
       WHERE p.rowid BETWEEN ? AND ? AND s.run_id = ? ORDER BY p.rowid`,
    ),
    getMark: db.prepare("SELECT value FROM meta WHERE key = 'sealed_point'"),
    setMark: db.prepare(
      "INSERT INTO meta (key, value) VALUES ('sealed_point', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    ),
    newestPoint: db.prepare('SELECT max(rowid) AS id FROM points'),
    pendingGroups: db.prepare(
      `SELECT run_id, min(point) AS first, max(point) AS last, count(*) AS n FROM (
         SELECT s.run_id, p.rowid AS point,
                (row_number() OVER (PARTITION BY s.run_id ORDER BY p.rowid) - 1) / ? AS part
         FROM points p CROSS JOIN series s ON s.id = p.series_id WHERE p.rowid > ?)
       GROUP BY run_id, part ORDER BY first`,
    ),
  };
}
