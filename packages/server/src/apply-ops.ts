import {
  type Digest,
  type FieldSetOp,
  type FileAddOp,
  floatToColumns,
  fromWireFloat,
  type Hasher,
  isTidemarkError,
  type Manifest,
  type Op,
  type OpId,
  type OpsResponse,
  type PointsOp,
  type RunCreateOp,
  type RunStateOp,
  type TagsOp,
  type TidemarkError,
  ValidationError,
  type WireFloat,
} from '@tidemark/core';
import type Database from 'better-sqlite3';
import { canAccess, type Principal } from './auth.js';
import type { ChunkStore } from './chunk-store.js';
import { type OpsEnvelope, validateOp } from './op-validation.js';

type OpResult = OpsResponse['results'][number];

/** Rows per multi-row insert of float points; 64 × 6 parameters stays far below SQLite's cap. */
const INSERT_BATCH = 64;

/**
 * Applies the ops of one `POST /api/v1/ops` request (docs/protocol.md, Rules).
 *
 * The request is one transaction and each op a savepoint inside it: an op that fails rolls
 * back alone and answers `rejected`, the others still apply (invariant 7). An op id enters
 * `applied_ops` only with the changes it made, so a rejected op can be sent again and an
 * applied one is never applied twice (invariant 3).
 */
export class OpApplier {
  readonly #db: Database.Database;
  readonly #chunks: ChunkStore;
  readonly #clock: () => number;
  readonly #s: ReturnType<typeof prepare>;
  /** Series rows met in the current request, by run and path; a wide run names each once. */
  readonly #seriesRows = new Map<string, { id: number; type: string }>();

  constructor(db: Database.Database, chunks: ChunkStore, clock: () => number) {
    this.#db = db;
    this.#chunks = chunks;
    this.#clock = clock;
    this.#s = prepare(db);
  }

  /** Call with a hasher already resolved: the transaction cannot await. */
  apply(principal: Principal, envelope: OpsEnvelope, hasher: Hasher): OpsResponse {
    const now = this.#clock();
    const complete = new Map<string, Manifest>();
    const applyOne = this.#db.transaction((op: Op): OpResult => {
      if (this.#s.insertApplied.run(op.id, op.runId, envelope.storeId, now).changes === 0) {
        return { id: op.id, status: 'duplicate' };
      }
      this.#apply(op, hasher, complete);
      return { id: op.id, status: 'applied' };
    });

    const applyAll = this.#db.transaction((): OpResult[] =>
      envelope.ops.map(({ id, raw }) => {
        try {
          const op = validateOp(id, raw);
          this.#authorize(principal, op);
          return applyOne(op);
        } catch (error) {
          // The op's savepoint rolled back: series rows it created are gone.
          this.#seriesRows.clear();
          if (isTidemarkError(error)) return rejected(id, error);
          throw error;
        }
      }),
    );
    try {
      return { results: applyAll.immediate() };
    } finally {
      this.#seriesRows.clear();
    }
  }

  /**
   * A token writes only its projects, and a run stays in the project it was first seen in. The
   * two refusals read alike unless the token may see the run's real project, so an op cannot
   * probe for runs of projects it has no access to (invariant 9).
   */
  #authorize(principal: Principal, op: Op): void {
    const forbidden = new ValidationError(
      'forbidden',
      `this token may not write run ${op.runId} in project ${op.project}`,
      { hint: "Use a token that includes the run's project." },
    );
    if (!canAccess(principal, op.project)) throw forbidden;

    const existing = this.#s.runProject.get(op.runId) as string | undefined;
    if (existing === undefined) {
      this.#refuseDeleted(principal, op);
      return;
    }
    if (existing === op.project) return;
    if (!canAccess(principal, existing)) throw forbidden;
    throw new ValidationError(
      'project_mismatch',
      `run ${op.runId} belongs to project ${existing}, not ${op.project}`,
      { hint: 'A run keeps the project it was created in.' },
    );
  }

  /**
   * An op of a deleted run is refused rather than applied: applying it would recreate the run
   * from whatever arrives late (protocol: Deleted runs). Only a token that could see the run
   * learns that it was deleted; any other gets the usual `forbidden`.
   */
  #refuseDeleted(principal: Principal, op: Op): void {
    const project = this.#s.deletedProject.get(op.runId) as string | undefined;
    if (project === undefined) return;
    if (!canAccess(principal, project)) {
      throw new ValidationError(
        'forbidden',
        `this token may not write run ${op.runId} in project ${op.project}`,
        { hint: "Use a token that includes the run's project." },
      );
    }
    throw new ValidationError('run_deleted', `run ${op.runId} was deleted on the server`, {
      hint: 'Its later operations are not accepted; the client holds the run back (quarantine).',
    });
  }

  #apply(op: Op, hasher: Hasher, complete: Map<string, Manifest>): void {
    // The run.create may arrive after other ops of its run (protocol: Unknown run).
    this.#s.insertProject.run(op.project, op.at);
    this.#s.ensureRun.run(op.runId, op.project, op.kind === 'run.create' ? op.createdAt : op.at);

    switch (op.kind) {
      case 'run.create':
        this.#runCreate(op);
        break;
      case 'run.state':
        this.#runState(op);
        break;
      case 'field.set':
        this.#fieldSet(op);
        break;
      case 'tags.add':
      case 'tags.remove':
        this.#tags(op);
        break;
      case 'points':
        this.#points(op, hasher, complete);
        break;
      case 'file.add':
        this.#fileAdd(op, hasher, complete);
        break;
    }
  }

  #runCreate(op: RunCreateOp): void {
    this.#s.runCreate.run(
      op.name,
      op.description,
      op.createdAt,
      op.forkOf,
      op.forkStep,
      op.id,
      op.runId,
    );
  }

  #runState(op: RunStateOp): void {
    const endedAt = op.state === 'running' ? null : op.at;
    this.#s.runState.run({
      run: op.runId,
      state: op.state,
      failure: op.failure,
      ended: endedAt,
      at: op.at,
      op: op.id,
    });
  }

  #fieldSet(op: FieldSetOp): void {
    this.#s.upsertField.run(op.runId, op.path, op.type, op.value, numericReading(op), op.at, op.id);
  }

  #tags(op: TagsOp): void {
    const present = op.kind === 'tags.add' ? 1 : 0;
    for (const tag of op.tags) this.#s.upsertTag.run(op.runId, tag, present, op.at, op.id);
  }

  #points(op: PointsOp, hasher: Hasher, complete: Map<string, Manifest>): void {
    for (const series of op.series) {
      const row = this.#seriesRow(op.runId, series.path, series.type);
      if (row.type !== series.type) {
        throw new ValidationError(
          'series_type_mismatch',
          `run ${op.runId}: series ${series.path} holds ${row.type} values, not ${series.type}`,
          { hint: 'Log this value under another path.' },
        );
      }

      if (series.type === 'float') {
        this.#insertFloats(row.id, series.points);
        continue;
      }
      for (const [step, ts, value] of series.points) {
        if (series.type === 'file')
          this.#requireComplete(op.project, value as Digest, hasher, complete);
        this.#s.insertPoint.run(row.id, step, ts, null, 0, value);
      }
    }
  }

  #seriesRow(runId: string, path: string, type: string): { id: number; type: string } {
    const key = `${runId}\n${path}`;
    let row = this.#seriesRows.get(key);
    if (row === undefined) {
      this.#s.insertSeries.run(runId, path, type);
      row = this.#s.findSeries.get(runId, path) as { id: number; type: string };
      this.#seriesRows.set(key, row);
    }
    return row;
  }

  /**
   * Float points go in `INSERT_BATCH` rows per statement: one call per row costs more than
   * SQLite's own work per row, and replay throughput is set by this loop (bench: replay).
   */
  #insertFloats(seriesId: number, points: PointsOp['series'][number]['points']): void {
    const args: Array<number | null> = [];
    let rows = 0;
    for (const [step, ts, value] of points) {
      const columns = floatToColumns(fromWireFloat(value as WireFloat));
      if (points.length - rows < INSERT_BATCH && args.length === 0) {
        this.#s.insertPoint.run(seriesId, step, ts, columns.value, columns.flag, null);
        rows += 1;
        continue;
      }
      args.push(seriesId, step, ts, columns.value, columns.flag, null);
      if (args.length === INSERT_BATCH * 6) {
        this.#s.insertPoints.run(args);
        rows += INSERT_BATCH;
        args.length = 0;
      }
    }
  }

  #fileAdd(op: FileAddOp, hasher: Hasher, complete: Map<string, Manifest>): void {
    const manifest = this.#requireComplete(op.project, op.manifest, hasher, complete);
    const fileCount = manifest.type === 'file' ? 1 : manifest.entries.length;
    if (manifest.type !== op.fileKind || manifest.size !== op.size || fileCount !== op.fileCount) {
      throw new ValidationError(
        'manifest_mismatch',
        `op ${op.id}: kind, size or file count differ from manifest ${op.manifest}`,
        { hint: "Run 'tidemark verify' on the store that logged it." },
      );
    }
    this.#s.upsertFile.run(
      op.runId,
      op.path,
      op.fileKind,
      op.manifest,
      op.size,
      op.fileCount,
      op.at,
      op.id,
    );
  }

  /** Checks a manifest's chunks once per request, however many ops point at it. */
  #requireComplete(
    project: string,
    digest: Digest,
    hasher: Hasher,
    complete: Map<string, Manifest>,
  ): Manifest {
    const key = `${project}\n${digest}`;
    let manifest = complete.get(key);
    if (manifest === undefined) {
      manifest = this.#chunks.completeManifest(project, digest, hasher);
      complete.set(key, manifest);
    }
    return manifest;
  }
}

/** The number SQL compares a field on, as core's encodeField computes it; null where none. */
function numericReading(op: FieldSetOp): number | null {
  switch (op.type) {
    case 'float':
    case 'int': {
      const value = Number(op.value);
      return Number.isNaN(value) ? null : value;
    }
    case 'bool':
      return op.value === 'true' ? 1 : 0;
    case 'datetime':
      return Date.parse(op.value);
    default:
      return null;
  }
}

function rejected(id: OpId, error: TidemarkError): OpResult {
  return { id, status: 'rejected', code: error.code, reason: error.message };
}

function prepare(db: Database.Database) {
  return {
    insertApplied: db.prepare(
      'INSERT OR IGNORE INTO applied_ops (op_id, run_id, store_id, applied_at) VALUES (?, ?, ?, ?)',
    ),
    runProject: db.prepare('SELECT project FROM runs WHERE id = ?').pluck(),
    deletedProject: db.prepare('SELECT project FROM deleted_runs WHERE id = ?').pluck(),
    insertProject: db.prepare('INSERT OR IGNORE INTO projects (name, created_at) VALUES (?, ?)'),
    ensureRun: db.prepare(
      `INSERT INTO runs (id, project, created_at) VALUES (?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET created_at = min(created_at, excluded.created_at)
       WHERE create_op IS NULL`,
    ),
    runCreate: db.prepare(
      `UPDATE runs SET name = ?, description = ?, created_at = ?, fork_of = ?, fork_step = ?,
       create_op = ? WHERE id = ?`,
    ),
    runState: db.prepare(
      `UPDATE runs SET state = :state, failure = :failure, ended_at = :ended, state_at = :at,
       state_op = :op
       WHERE id = :run AND (state_at IS NULL OR (:at, :op) > (state_at, state_op))`,
    ),
    upsertField: db.prepare(
      `INSERT INTO fields (run_id, path, type, value, num, at, op_id) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (run_id, path) DO UPDATE SET type = excluded.type, value = excluded.value,
       num = excluded.num, at = excluded.at, op_id = excluded.op_id
       WHERE (excluded.at, excluded.op_id) > (fields.at, fields.op_id)`,
    ),
    upsertTag: db.prepare(
      `INSERT INTO tags (run_id, tag, present, at, op_id) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (run_id, tag) DO UPDATE SET present = excluded.present, at = excluded.at,
       op_id = excluded.op_id
       WHERE (excluded.at, excluded.op_id) > (tags.at, tags.op_id)`,
    ),
    insertSeries: db.prepare('INSERT OR IGNORE INTO series (run_id, path, type) VALUES (?, ?, ?)'),
    findSeries: db.prepare('SELECT id, type FROM series WHERE run_id = ? AND path = ?'),
    insertPoint: db.prepare(
      'INSERT INTO points (series_id, step, ts, value, flag, text) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    insertPoints: db.prepare(
      `INSERT INTO points (series_id, step, ts, value, flag, text) VALUES ${Array.from(
        { length: INSERT_BATCH },
        () => '(?, ?, ?, ?, ?, ?)',
      ).join(', ')}`,
    ),
    upsertFile: db.prepare(
      `INSERT INTO files (run_id, path, kind, manifest, size, file_count, at, op_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (run_id, path) DO UPDATE SET kind = excluded.kind, manifest = excluded.manifest,
       size = excluded.size, file_count = excluded.file_count, at = excluded.at,
       op_id = excluded.op_id
       WHERE (excluded.at, excluded.op_id) > (files.at, files.op_id)`,
    ),
  };
}
