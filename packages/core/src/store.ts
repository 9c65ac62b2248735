import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { ArtifactStore } from './artifact-store.js';
import { StoreError } from './errors.js';
import { newWriterId, type RunId } from './ids.js';
import { Journal } from './journal.js';
import { type Logger, silentLogger } from './logger.js';

export const STORE_FORMAT = 'tidemark-store';
export const DB_FILE = 'store.db';
export const OBJECTS_DIR = 'objects';

/** The SQL migrations of the local store, shipped beside the packages. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations', import.meta.url));

export interface StoreOptions {
  /** The store folder; defaults to `$TIDEMARK_DIR`, else `./.tidemark`. */
  dir?: string;
  /** Create the folder and database when missing (default true). */
  create?: boolean;
  logger?: Logger;
  /** Milliseconds since the epoch; injectable for tests. */
  clock?: () => number;
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
  readonly db: Database.Database;
  readonly storeId: string;
  readonly writerId: string;
  readonly journal: Journal;
  readonly objects: ArtifactStore;
  readonly logger: Logger;
  readonly clock: () => number;
  #closed = false;

  private constructor(dir: string, db: Database.Database, options: StoreOptions) {
    this.dir = dir;
    this.db = db;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? Date.now;
    this.writerId = newWriterId();
    this.journal = new Journal(db, this.writerId);
    this.objects = new ArtifactStore(join(dir, OBJECTS_DIR));
    this.storeId = readOrCreateStoreId(db);
  }

  /** Opens (creating and migrating as needed) the store in `options.dir`. */
  static open(options: StoreOptions = {}): Store {
    const dir = resolveStoreDir(options.dir);
    const dbPath = join(dir, DB_FILE);
    const exists = existsSync(dbPath);
    if (!exists && options.create === false) {
      throw new StoreError('store_missing', `no tidemark store at ${dir}`, {
        hint: "Run 'tidemark init' there, or pass --dir / set TIDEMARK_DIR to the store folder.",
      });
    }
    if (exists) assertSqliteFile(dbPath);
    mkdirSync(dir, { recursive: true });

    const db = openDatabase(dbPath);
    try {
      migrateStore(db, dbPath, exists);
      const store = new Store(dir, db, options);
      store.#markDeadWritersCrashed();
      return store;
    } catch (error) {
      db.close();
      throw error;
    }
  }

  /** Runs `fn` in one immediate write transaction. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /**
   * Makes everything committed so far survive power loss. Commits run with synchronous=NORMAL,
   * which survives a killed process but not a lost machine; one FULL commit fsyncs the WAL,
   * and with it every frame before it (invariant 1).
   */
  sync(): void {
    this.db.pragma('synchronous = FULL');
    try {
      this.db
        .prepare(
          "INSERT INTO meta (key, value) VALUES ('last_sync', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .run(String(this.clock()));
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
    await this.objects.close();
    this.db.close();
  }

  /**
   * A run left "running" by a process of this host that no longer exists was killed: mark it
   * crashed instead of leaving it running forever.
   */
  #markDeadWritersCrashed(): void {
    const host = hostname();
    const rows = this.db
      .prepare("SELECT id, pid FROM runs WHERE state = 'running' AND host = ? AND pid IS NOT NULL")
      .all(host) as Array<{ id: RunId; pid: number }>;
    for (const row of rows) {
      if (row.pid === process.pid || isAlive(row.pid)) continue;
      const now = this.clock();
      this.transaction(() => {
        const changed = this.db
          .prepare(
            "UPDATE runs SET state = 'crashed', ended_at = ?, failure = ? WHERE id = ? AND state = 'running'",
          )
          .run(now, `writer process ${row.pid} on ${host} died`, row.id);
        if (changed.changes === 1) {
          this.journal.append(
            row.id,
            'run.state',
            { state: 'crashed', failure: `writer process ${row.pid} died` },
            now,
          );
        }
      });
      this.logger.warn('run_crashed', { run_id: row.id, pid: row.pid });
    }
  }
}

/** Opens the store read-only, for queries that must never change it. */
export function openReadOnly(dir?: string): Database.Database {
  const dbPath = join(resolveStoreDir(dir), DB_FILE);
  if (!existsSync(dbPath)) {
    throw new StoreError('store_missing', `no tidemark store at ${resolveStoreDir(dir)}`, {
      hint: "Run 'tidemark init', or pass --dir / set TIDEMARK_DIR to the store folder.",
    });
  }
  assertSqliteFile(dbPath);
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 10000');
  db.pragma('query_only = ON');
  return db;
}

function openDatabase(path: string): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(path);
    db.pragma('busy_timeout = 30000');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
  } catch (error) {
    throw new StoreError('store_unreadable', `cannot open the store database ${path}`, {
      hint: "Run 'tidemark verify' to see what is wrong; the file was not changed.",
      cause: error,
    });
  }
  return db;
}

function migrateStore(db: Database.Database, path: string, existed: boolean): void {
  if (existed) assertOurs(db, path);
  try {
    migrate(drizzle(db), { migrationsFolder: MIGRATIONS_DIR });
  } catch (error) {
    throw new StoreError('migration_failed', `could not migrate the store ${path}`, {
      hint: 'The store was left as it was; report this with the tidemark version you run.',
      cause: error,
    });
  }
  db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('format', ?)").run(STORE_FORMAT);
}

/**
 * Refuses a database that is not a tidemark store, or that a newer tidemark has migrated
 * past what this version knows: opening it anyway could damage it.
 */
function assertOurs(db: Database.Database, path: string): void {
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{
    name: string;
  }>;
  if (tables.length === 0) return;

  const names = new Set(tables.map((t) => t.name));
  const format = names.has('meta')
    ? (db.prepare("SELECT value FROM meta WHERE key = 'format'").get() as
        | { value: string }
        | undefined)
    : undefined;
  if (format?.value !== STORE_FORMAT) {
    throw new StoreError(
      'foreign_database',
      `${path} is a SQLite database but not a tidemark store`,
      {
        hint: 'Point --dir or TIDEMARK_DIR at a tidemark store folder; this file was not changed.',
      },
    );
  }

  const newest = db.prepare('SELECT max(created_at) AS at FROM __drizzle_migrations').get() as {
    at: number | null;
  };
  const known = knownMigrationTimes();
  if (newest.at !== null && newest.at > Math.max(0, ...known)) {
    throw new StoreError('store_too_new', `${path} was written by a newer tidemark`, {
      hint: 'Upgrade tidemark to open it; this version left it unchanged.',
    });
  }
}

function knownMigrationTimes(): number[] {
  const journalPath = join(MIGRATIONS_DIR, 'meta', '_journal.json');
  const parsed = JSON.parse(readFileSync(journalPath, 'utf8')) as {
    entries: Array<{ when: number }>;
  };
  return parsed.entries.map((entry) => entry.when);
}

const SQLITE_HEADER = 'SQLite format 3\u0000';

function assertSqliteFile(path: string): void {
  const fd = openSync(path, 'r');
  const header = Buffer.alloc(16);
  let read: number;
  try {
    read = readSync(fd, header, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  if (read > 0 && header.toString('latin1', 0, read) !== SQLITE_HEADER.slice(0, read)) {
    throw new StoreError('not_a_store', `${path} is not a SQLite database`, {
      hint: "Point --dir or TIDEMARK_DIR at a tidemark store folder, or run 'tidemark verify'.",
    });
  }
}

function readOrCreateStoreId(db: Database.Database): string {
  db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?)").run(randomUUID());
  return (db.prepare("SELECT value FROM meta WHERE key = 'store_id'").get() as { value: string })
    .value;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
