import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DaemonError } from './daemon-error.js';

export const LOCK_FILE = 'daemon.lock';
export const PID_FILE = 'daemon.pid';

/**
 * Proof that this process is the one daemon of a store folder.
 *
 * The lock is an exclusive SQLite transaction held open on `daemon.lock`, which SQLite takes
 * as an OS-level record lock (fcntl). The kernel drops it the moment the holder dies, kill -9
 * included, so a crashed daemon never leaves a stale lock, and a reused pid can never pass for
 * a live daemon: liveness is "the lock is held", not "a process with that pid exists". The pid
 * file beside it is only for `stop` and `status` to know whom to signal.
 */
export class StoreLock {
  readonly dir: string;
  #db: Database.Database | undefined;

  private constructor(dir: string, db: Database.Database) {
    this.dir = dir;
    this.#db = db;
  }

  /** Takes the lock and writes the pid file, or throws `daemon_running`. */
  static acquire(dir: string): StoreLock {
    const path = join(dir, LOCK_FILE);
    let db: Database.Database | undefined;
    try {
      // A short wait covers a `status` probe holding a shared lock for a moment.
      db = new Database(path, { timeout: 1_000 });
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER)');
      db.exec('BEGIN EXCLUSIVE');
      db.prepare('DELETE FROM holder').run();
      db.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
    } catch (error) {
      db?.close();
      if (isBusy(error)) throw running(dir);
      throw new DaemonError('daemon_start_failed', `cannot take the daemon lock ${path}`, {
        hint: 'Check that the store folder is writable by this user.',
        cause: error,
      });
    }

    writeFileSync(join(dir, PID_FILE), `${process.pid}\n`);
    return new StoreLock(dir, db);
  }

  /** Whether some process holds the lock of `dir` right now. Takes it for no longer than a read. */
  static isHeld(dir: string): boolean {
    let db: Database.Database | undefined;
    try {
      db = new Database(join(dir, LOCK_FILE), { timeout: 0, fileMustExist: true });
      db.prepare('SELECT count(*) FROM sqlite_master').get();
      return false;
    } catch (error) {
      if (isBusy(error)) return true;
      return false;
    } finally {
      db?.close();
    }
  }

  /** The pid the last holder wrote, if the file is there and readable. */
  static readPid(dir: string): number | undefined {
    try {
      const pid = Number(readFileSync(join(dir, PID_FILE), 'utf8').trim());
      return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  get held(): boolean {
    return this.#db !== undefined;
  }

  /** Removes the pid file and drops the lock. Calling it twice is harmless. */
  release(): void {
    if (this.#db === undefined) return;
    rmSync(join(this.dir, PID_FILE), { force: true });
    try {
      this.#db.exec('ROLLBACK');
    } finally {
      this.#db.close();
      this.#db = undefined;
    }
  }
}

function running(dir: string): DaemonError {
  const pid = StoreLock.readPid(dir);
  const who = pid === undefined ? 'another process' : `process ${pid}`;
  return new DaemonError('daemon_running', `a sync daemon (${who}) already runs on ${dir}`, {
    hint: "Run 'tidemark daemon status' to see it, or 'tidemark daemon stop' first.",
  });
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}
