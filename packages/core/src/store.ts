import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { ArtifactStore } from './artifact-store.js';
import { StoreError, ValidationError } from './errors.js';
import { newWriterId } from './ids.js';
import { Journal } from './journal.js';
import { type Logger, silentLogger } from './logger.js';
import { assertMigratable, migrateStore, schemaStatus } from './migrate-store.js';
import { RunWriters } from './run-writers.js';
import { toStoreError } from './sqlite-errors.js';
import { assertDatabaseLength, assertSqliteFile, inspectStoreFolder } from './store-folder.js';

export { MIGRATIONS_DIR, STORE_FORMAT } from './migrate-store.js';

export const DB_FILE = 'store.db';
export const OBJECTS_DIR = 'objects';

/** A writer whose heartbeat is older than this is taken for dead, unless told otherwise. */
export const DEFAULT_STALE_AFTER_MS = 5 * 60_000;

export interface StoreOptions {
  /** The store folder; defaults to `$TIDEMARK_DIR`, else `./.tidemark`. */
  dir?: string;
  /** Create the folder and database when missing (default true). */
  create?: boolean;
  /**
   * Start a new, empty database in a folder that still holds the objects or WAL of a store whose
   * `store.db` is gone (default false: such a folder is refused, so a lost database is never
   * silently replaced by an empty one).
   */
  recreate?: boolean;
  logger?: Logger;
  /** Milliseconds since the epoch; injectable for tests. */
  clock?: () => number;
  /** A running writer whose heartbeat is older than this is marked crashed (default 5 min). */
  staleAfterMs?: number;
}

/** Resolves the store folder the way every entry point does. */
export function resolveStoreDir(dir?: string): string {
  return resolve(dir ?? process.env.TIDEMARK_DIR ?? '.tidemark');
}

/**
 * An open local store: the SQLite journal and tables plus the object folder. One process may
 * hold several; several processes may hold the same folder at once (WAL, busy timeout and
 * immediate transactions keep them from failing on each other's locks).
 */
export class Store {
  readonly dir: string;
  readonly dbPath: string;
  readonly db: Database.Database;
  readonly storeId: string;
  readonly writerId: string;
  readonly journal: Journal;
  readonly objects: ArtifactStore;
  readonly writers: RunWriters;
  readonly logger: Logger;
  readonly clock: () => number;
  readonly staleAfterMs: number;
  readonly #syncStatement: Database.Statement;
  #lastOpTime = Number.NEGATIVE_INFINITY;
  #closed = false;

  private constructor(dir: string, db: Database.Database, options: StoreOptions) {
    this.dir = dir;
    this.dbPath = join(dir, DB_FILE);
    this.db = db;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? Date.now;
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    this.writerId = newWriterId();
    this.journal = new Journal(db, this.writerId, () => this.opTime());
    this.objects = new ArtifactStore(join(dir, OBJECTS_DIR));
    this.writers = new RunWriters(this);
    this.storeId = readOrCreateStoreId(db);
    this.#syncStatement = db.prepare(
      "INSERT INTO meta (key, value) VALUES ('last_sync', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    );
  }

  /** Opens (creating and migrating as needed) the store in `options.dir`. */
  static open(options: StoreOptions = {}): Store {
    validateStoreOptions(options);
    const dir = resolveStoreDir(options.dir);
    const dbPath = join(dir, DB_FILE);
    const folder = inspectStoreFolder(dir);
    if (folder.database !== 'present') {
      if (folder.database === 'missing' && options.create === false) {
        throw new StoreError('store_missing', `no tidemark store at ${dir}`, {
          hint: "Run 'tidemark init' there, or pass --dir / set TIDEMARK_DIR to the store folder.",
        });
      }
      if (folder.remnants.length > 0 && options.recreate !== true) {
        throw new StoreError(
          'store_database_missing',
          `${dir} holds ${folder.remnants.join(' and ')} of a store but no ${DB_FILE} with data`,
          {
            hint: `Restore ${DB_FILE} from a backup, or move the folder away; pass recreate: true only to start an empty database beside the old files.`,
          },
        );
      }
      // A WAL left without its database would be replayed into the new, empty one.
      for (const orphan of folder.orphanLogs) renameSync(orphan, `${orphan}.orphan-${Date.now()}`);
    }
    if (folder.database === 'present') {
      assertSqliteFile(dbPath);
      assertDatabaseLength(dbPath);
    }
    mkdirSync(dir, { recursive: true });

    const db = openDatabase(dbPath);
    try {
      migrateStore(db, dbPath);

      // WAL only once the file is known to be ours: switching a foreign database to WAL would
      // already change its header (invariant 8). On a store it is already WAL, a no-op.
      db.pragma('journal_mode = WAL');
      const store = new Store(dir, db, options);
      store.writers.reapDead();
      return store;
    } catch (error) {
      db.close();
      throw toStoreError(error, dbPath);
    }
  }

  /** Runs `fn` in one immediate write transaction; SQLite failures become StoreErrors. */
  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (error) {
      throw toStoreError(error, this.dbPath);
    }
  }

  /**
   * The time to stamp an operation with: the clock, never moving backwards within this
   * writer. The server orders field writes by it, so a clock that jumps back must not let an
   * older value win over a newer one (issue 3, point 4: a backward clock loses nothing).
   */
  opTime(): number {
    const now = this.clock();
    if (now > this.#lastOpTime) this.#lastOpTime = now;
    return this.#lastOpTime;
  }

  /**
   * Makes everything committed so far survive power loss. Commits run with synchronous=NORMAL,
   * which survives a killed process but not a lost machine; one FULL commit fsyncs the WAL,
   * and with it every frame before it (invariant 1).
   */
  sync(): void {
    this.db.pragma('synchronous = FULL');
    try {
      this.#syncStatement.run(String(this.clock()));
    } catch (error) {
      throw toStoreError(error, this.dbPath);
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.writers.close();
    await this.objects.close();
    this.db.close();
  }
}

/**
 * Opens the store read-only, for queries that must never change it. A store an older tidemark
 * wrote is migrated first (one short write), so readers always see the documented views.
 */
export function openReadOnly(dir?: string): Database.Database {
  const resolved = resolveStoreDir(dir);
  const dbPath = join(resolved, DB_FILE);
  if (!existsSync(dbPath) || statSync(dbPath).size === 0) {
    throw new StoreError('store_missing', `no tidemark store at ${resolved}`, {
      hint: "Run 'tidemark init', or pass --dir / set TIDEMARK_DIR to the store folder.",
    });
  }
  assertSqliteFile(dbPath);
  assertDatabaseLength(dbPath);

  const db = openReader(dbPath);
  try {
    const status = schemaStatus(db);
    if (status.empty) {
      throw new StoreError('store_missing', `${dbPath} holds no tidemark tables yet`, {
        hint: "Run 'tidemark init' there, or open it once with the SDK.",
      });
    }
    assertMigratable(status, dbPath);
    if (status.applied === status.known) return db;
  } catch (error) {
    db.close();
    throw toStoreError(error, dbPath);
  }

  db.close();
  const writer = openDatabase(dbPath);
  try {
    migrateStore(writer, dbPath);
    writer.pragma('journal_mode = WAL');
  } catch (error) {
    throw toStoreError(error, dbPath);
  } finally {
    writer.close();
  }
  return openReader(dbPath);
}

function openReader(path: string): Database.Database {
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 10000');
    db.pragma('query_only = ON');
    return db;
  } catch (error) {
    throw toStoreError(error, path);
  }
}

function openDatabase(path: string): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(path);
    db.pragma('busy_timeout = 30000');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    return db;
  } catch (error) {
    db?.close();
    const mapped = toStoreError(error, path);
    if (mapped instanceof StoreError) throw mapped;
    throw new StoreError('store_unreadable', `cannot open the store database ${path}`, {
      hint: "Run 'tidemark verify' to see what is wrong; the file was not changed.",
      cause: error,
    });
  }
}

const KNOWN_OPTIONS = new Set(['dir', 'create', 'recreate', 'logger', 'clock', 'staleAfterMs']);

function validateStoreOptions(options: StoreOptions): void {
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw new ValidationError('invalid_option', `Store.open has no option '${key}'`, {
        hint: `Known options: ${[...KNOWN_OPTIONS].join(', ')}.`,
      });
    }
  }
  const stale = options.staleAfterMs;
  if (stale !== undefined && (typeof stale !== 'number' || !(stale > 0))) {
    throw new ValidationError('invalid_option', 'staleAfterMs must be a positive number', {
      hint: 'Pass milliseconds, e.g. 300000 for five minutes.',
    });
  }
}

function readOrCreateStoreId(db: Database.Database): string {
  db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?)").run(randomUUID());
  return (db.prepare("SELECT value FROM meta WHERE key = 'store_id'").get() as { value: string })
    .value;
}
