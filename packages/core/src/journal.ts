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

interface JournalRow {
  seq: number;
  op_id: string;
  run_id: string;
  kind: OpKind;
  payload: string | null;
  first_point: number | null;
  last_point: number | null;
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
 * Point rows are not copied into the journal: an entry names the rowid range its transaction
 * inserted, which stays valid because points are never updated.
 */
export class Journal {
  readonly #db: Database.Database;
  readonly #writerId: string;
  #counter = 0;
  readonly #insert: Database.Statement;
  readonly #readAfter: Database.Statement;
  readonly #readPoints: Database.Statement;

  constructor(db: Database.Database, writerId: string) {
    this.#db = db;
    this.#writerId = writerId;
    this.#insert = db.prepare(
      `INSERT INTO journal (op_id, run_id, kind, payload, first_point, last_point, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#readAfter = db.prepare(
      `SELECT j.*, p.name AS project FROM journal j
       JOIN runs r ON r.id = j.run_id JOIN projects p ON p.id = r.project_id
       WHERE j.seq > ? ORDER BY j.seq LIMIT ?`,
    );
    this.#readPoints = db.prepare(
      `SELECT s.path, s.type, p.step, p.ts, p.value, p.flag, p.text
       FROM points p JOIN series s ON s.id = p.series_id
       WHERE p.rowid BETWEEN ? AND ? ORDER BY p.rowid`,
    );
  }

  /** Mints the next operation id of this writer. */
  nextOpId(): OpId {
    this.#counter += 1;
    // Fixed width, so one writer's ids sort as strings in the order it minted them: the
    // server breaks last-writer-wins ties between equal timestamps by id.
    return `${this.#writerId}-${this.#counter.toString(36).padStart(11, '0')}` as OpId;
  }

  /** Appends one entry. Call inside the transaction that made the change it describes. */
  append(
    runId: RunId,
    kind: OpKind,
    payload: object | null,
    at: number,
    pointRange?: readonly [number, number],
  ): Seq {
    const result = this.#insert.run(
      this.nextOpId(),
      runId,
      kind,
      payload === null ? null : JSON.stringify(payload),
      pointRange?.[0] ?? null,
      pointRange?.[1] ?? null,
      at,
    );
    return Number(result.lastInsertRowid) as Seq;
  }

  /** Reads entries after `after`, bounded in entries and points, with their operations built. */
  readAfter(after: Seq, limits: ReadLimits): JournalEntry[] {
    const rows = this.#readAfter.all(after, limits.maxEntries) as JournalRow[];
    const out: JournalEntry[] = [];
    let points = 0;
    for (const row of rows) {
      const pointCount =
        row.first_point === null || row.last_point === null
          ? 0
          : row.last_point - row.first_point + 1;
      if (out.length > 0 && points + pointCount > limits.maxPoints) break;
      out.push({ seq: row.seq as Seq, op: this.#buildOp(row), pointCount });
      points += pointCount;
    }
    return out;
  }

  lastSeq(): Seq {
    const row = this.#db.prepare('SELECT max(seq) AS seq FROM journal').get() as {
      seq: number | null;
    };
    return (row.seq ?? 0) as Seq;
  }

  countAfter(after: Seq): number {
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
    const rows = this.#readPoints.all(row.first_point, row.last_point) as PointRow[];
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
