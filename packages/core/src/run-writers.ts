import { hostname } from 'node:os';
import type Database from 'better-sqlite3';
import type { RunId } from './ids.js';
import type { Store } from './store.js';

/** How a writer or a run ended. */
export type EndState = 'finished' | 'failed' | 'crashed';

/** Writer ids of the stores this process holds open: they are alive whatever their pid says. */
const LIVE_WRITERS = new Set<string>();

/** One writer as `run_writers` records it. */
export interface WriterRow {
  run_id: RunId;
  writer_id: string;
  host: string | null;
  pid: number | null;
  heartbeat_at: number;
}

/**
 * The processes writing each run of one store. A run may have several writers (data-parallel
 * ranks resuming the same run); it ends when the last of them ends, as `failed` if any writer
 * failed, else `crashed` if any died, else `finished`. A writer that died without ending is
 * found on the next open of the store: on its own host by its pid, on any host by a heartbeat
 * older than `staleAfterMs` (issue 3, point 5: never "running" forever).
 */
export class RunWriters {
  readonly #store: Store;
  readonly #s: ReturnType<typeof prepare>;
  readonly #host = hostname();

  constructor(store: Store) {
    this.#store = store;
    this.#s = prepare(store.db);
    LIVE_WRITERS.add(store.writerId);
  }

  /** Records this process as a writer of `runId`. Call inside the run's create or resume. */
  register(runId: RunId, now: number): void {
    this.#s.register.run(runId, this.#store.writerId, this.#host, process.pid, now, now);
  }

  /** Forgets the writers of a run's earlier sessions, so a resumed run ends on its own. */
  forgetEnded(runId: RunId): void {
    this.#s.forgetEnded.run(runId);
  }

  /**
   * Says this writer is alive. A writer another process took for dead (its event loop was
   * blocked past the stale limit, say) takes its run back to running.
   */
  beat(runId: RunId): void {
    const now = this.#store.clock();
    const changed = this.#s.beat.run(now, runId, this.#store.writerId).changes;
    this.#s.runBeat.run(now, runId);
    if (changed > 0) return;

    this.#store.transaction(() => {
      this.#s.revive.run(now, runId, this.#store.writerId);
      if (this.#s.reopenRun.run(runId).changes === 1) {
        this.#store.journal.append(runId, 'run.state', { state: 'running', failure: null });
      }
    });
    this.#store.logger.warn('run_revived', { run_id: runId, writer_id: this.#store.writerId });
  }

  /**
   * Ends this writer's part in a run and, when it was the last writer, the run itself.
   * Returns the run's final state, or undefined while other writers are still at work.
   */
  end(runId: RunId, state: EndState, failure: string | null): EndState | undefined {
    const now = this.#store.clock();
    return this.#store.transaction(() => {
      const mine = this.#s.findWriter.get(runId, this.#store.writerId) as
        | { ended_at: number | null }
        | undefined;
      // Taken for dead while alive: this writer's own ending is the true one.
      if (mine !== undefined && mine.ended_at !== null) this.#s.reopenRun.run(runId);
      this.#s.end.run(now, state, failure, runId, this.#store.writerId);

      const others = this.#s.activeOfRun.all(runId) as WriterRow[];
      for (const row of others) {
        const reason = this.#deathReason(row, now);
        if (reason !== undefined) this.#s.markCrashed.run(now, reason, row.run_id, row.writer_id);
      }
      return this.#settle(runId, now);
    });
  }

  /** Marks crashed every writer of the store whose process is gone; settles their runs. */
  reapDead(): Array<{ runId: RunId; state: EndState | undefined }> {
    const now = this.#store.clock();
    const dead: Array<{ row: WriterRow; reason: string }> = [];
    for (const row of this.#s.active.all() as WriterRow[]) {
      const reason = this.#deathReason(row, now);
      if (reason !== undefined) dead.push({ row, reason });
    }

    const settled: Array<{ runId: RunId; state: EndState | undefined }> = [];
    for (const { row, reason } of dead) {
      const state = this.#store.transaction(() => {
        const changed = this.#s.markCrashed.run(now, reason, row.run_id, row.writer_id).changes;
        return changed === 1 ? this.#settle(row.run_id, now) : undefined;
      });
      settled.push({ runId: row.run_id, state });
      this.#store.logger.warn('run_writer_crashed', {
        run_id: row.run_id,
        writer_id: row.writer_id,
        pid: row.pid,
        host: row.host,
        run_state: state ?? 'running',
      });
    }
    return settled;
  }

  close(): void {
    LIVE_WRITERS.delete(this.#store.writerId);
  }

  #deathReason(row: WriterRow, now: number): string | undefined {
    return writerDeathReason(row, now, this.#store.staleAfterMs, this.#host);
  }

  /** Ends a run whose writers have all ended. Call inside a transaction. */
  #settle(runId: RunId, now: number): EndState | undefined {
    const active = this.#s.countActive.get(runId) as { n: number };
    if (active.n > 0) return undefined;
    const run = this.#s.runState.get(runId) as { state: string } | undefined;
    if (run?.state !== 'running') return undefined;

    const ended = this.#s.endedOfRun.all(runId) as Array<{
      end_state: EndState;
      failure: string | null;
    }>;
    // Points still to be sealed go first, so a server sees a run's points before its end.
    this.#store.journal.seal();
    const final =
      ended.find((w) => w.end_state === 'failed') ??
      ended.find((w) => w.end_state === 'crashed') ??
      ({ end_state: 'finished', failure: null } as const);
    this.#s.setRunState.run(final.end_state, now, final.failure, runId);
    this.#store.journal.append(runId, 'run.state', {
      state: final.end_state,
      failure: final.failure,
    });
    return final.end_state;
  }
}

function prepare(db: Database.Database) {
  return {
    register: db.prepare(
      `INSERT OR REPLACE INTO run_writers (run_id, writer_id, host, pid, started_at, heartbeat_at, ended_at, end_state, failure)
       VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, NULL)`,
    ),
    forgetEnded: db.prepare('DELETE FROM run_writers WHERE run_id = ? AND ended_at IS NOT NULL'),
    beat: db.prepare(
      'UPDATE run_writers SET heartbeat_at = ? WHERE run_id = ? AND writer_id = ? AND ended_at IS NULL',
    ),
    runBeat: db.prepare('UPDATE runs SET heartbeat_at = ? WHERE id = ?'),
    revive: db.prepare(
      `UPDATE run_writers SET ended_at = NULL, end_state = NULL, failure = NULL, heartbeat_at = ?
       WHERE run_id = ? AND writer_id = ?`,
    ),
    reopenRun: db.prepare(
      "UPDATE runs SET state = 'running', ended_at = NULL, failure = NULL WHERE id = ? AND state <> 'running'",
    ),
    findWriter: db.prepare('SELECT ended_at FROM run_writers WHERE run_id = ? AND writer_id = ?'),
    end: db.prepare(
      `UPDATE run_writers SET ended_at = ?, end_state = ?, failure = ?
       WHERE run_id = ? AND writer_id = ?`,
    ),
    active: db.prepare(
      'SELECT run_id, writer_id, host, pid, heartbeat_at FROM run_writers WHERE ended_at IS NULL',
    ),
    activeOfRun: db.prepare(
      `SELECT run_id, writer_id, host, pid, heartbeat_at FROM run_writers
       WHERE run_id = ? AND ended_at IS NULL`,
    ),
    markCrashed: db.prepare(
      `UPDATE run_writers SET ended_at = ?, end_state = 'crashed', failure = ?
       WHERE run_id = ? AND writer_id = ? AND ended_at IS NULL`,
    ),
    countActive: db.prepare(
      'SELECT count(*) AS n FROM run_writers WHERE run_id = ? AND ended_at IS NULL',
    ),
    runState: db.prepare('SELECT state FROM runs WHERE id = ?'),
    endedOfRun: db.prepare(
      'SELECT end_state, failure FROM run_writers WHERE run_id = ? AND ended_at IS NOT NULL ORDER BY ended_at',
    ),
    setRunState: db.prepare('UPDATE runs SET state = ?, ended_at = ?, failure = ? WHERE id = ?'),
  };
}

/**
 * Why a writer that never ended is taken for dead, or undefined while it may be alive: its
 * process is gone from this host, or its heartbeat is older than `staleAfterMs`.
 */
export function writerDeathReason(
  row: WriterRow,
  now: number,
  staleAfterMs: number,
  host: string = hostname(),
): string | undefined {
  if (LIVE_WRITERS.has(row.writer_id)) return undefined;
  const who = `writer process ${row.pid ?? '?'} on ${row.host ?? 'an unknown host'}`;
  if (row.host === host && row.pid !== null) {
    // Our own pid under another writer id is an earlier process that had the same pid.
    if (row.pid === process.pid || !isAlive(row.pid)) return `${who} died`;
  }
  if (now - row.heartbeat_at > staleAfterMs) {
    const minutes = Math.round((now - row.heartbeat_at) / 60_000);
    return `${who} sent no heartbeat for ${minutes} min`;
  }
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
