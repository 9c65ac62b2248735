import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { StoreError } from './errors.js';

/** The value of `meta.format` in every tidemark store. */
export const STORE_FORMAT = 'tidemark-store';

/** The SQL migrations of the local store, shipped beside the packages. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations', import.meta.url));

/** The table drizzle-kit and drizzle's migrator keep applied migrations in; we keep it too. */
const MIGRATIONS_TABLE = '__drizzle_migrations';

/** One migration file as drizzle-kit wrote it: its statements, timestamp and content hash. */
export interface MigrationFile {
  tag: string;
  statements: string[];
  createdAt: number;
  hash: string;
}

/** How a store's applied migrations compare with the ones this version ships. */
export interface SchemaStatus {
  /** No tidemark table yet: a new database. */
  empty: boolean;
  applied: number;
  known: number;
  /** Applied migrations this version does not know: a newer tidemark wrote the store. */
  unknown: number;
  /** Known migrations recorded with another hash: a shipped migration was edited. */
  edited: string[];
  foreign: boolean;
}

let cached: MigrationFile[] | undefined;

/** The migrations this version ships, oldest first. */
export function shippedMigrations(): MigrationFile[] {
  if (cached === undefined) {
    const files = readMigrationFiles({ migrationsFolder: MIGRATIONS_DIR });
    const tags = readTags();
    cached = files.map((file, i) => ({
      tag: tags[i] ?? String(i),
      statements: file.sql.map((statement) => statement.trim()).filter((s) => s.length > 0),
      createdAt: file.folderMillis,
      hash: file.hash,
    }));
  }
  return cached;
}

/**
 * Brings a store to the newest schema this version ships. Everything, from the check that the
 * file is ours to the last migration, runs in one immediate transaction: processes that open a
 * new store at the same moment wait for each other instead of racing to create tables, and a
 * failure leaves the store as it was (invariant 8).
 */
export function migrateStore(db: Database.Database, path: string): void {
  const migrations = shippedMigrations();
  const run = db.transaction(() => {
    const status = schemaStatus(db, migrations);
    assertMigratable(status, path);
    db.exec(
      `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric)`,
    );

    const insert = db.prepare(`INSERT INTO ${MIGRATIONS_TABLE} (hash, created_at) VALUES (?, ?)`);
    for (const migration of migrations.slice(status.applied)) {
      for (const statement of migration.statements) db.exec(statement);
      insert.run(migration.hash, migration.createdAt);
    }
    db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('format', ?)").run(STORE_FORMAT);
  });

  try {
    run.immediate();
  } catch (error) {
    if (error instanceof StoreError) throw error;
    throw new StoreError('migration_failed', `could not migrate the store ${path}`, {
      hint: 'The store was left as it was; report this with the tidemark version you run.',
      cause: error,
    });
  }
}

/** Compares what a database records as applied with what this version ships. */
export function schemaStatus(
  db: Database.Database,
  migrations: MigrationFile[] = shippedMigrations(),
): SchemaStatus {
  const tables = new Set(
    (
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{
        name: string;
      }>
    ).map((t) => t.name),
  );
  const status: SchemaStatus = {
    empty: tables.size === 0,
    applied: 0,
    known: migrations.length,
    unknown: 0,
    edited: [],
    foreign: false,
  };
  if (status.empty) return status;

  const applied = tables.has(MIGRATIONS_TABLE)
    ? (db
        .prepare(
          `SELECT hash, created_at AS createdAt FROM ${MIGRATIONS_TABLE} ORDER BY created_at`,
        )
        .all() as Array<{ hash: string; createdAt: number }>)
    : [];
  const format = tables.has('meta')
    ? (db.prepare("SELECT value FROM meta WHERE key = 'format'").get() as
        | { value: string }
        | undefined)
    : undefined;
  // The first tidemark wrote `format` just after its migrations committed; a store caught between
  // the two is still recognised by the hash of the first migration.
  const ours = format?.value === STORE_FORMAT || applied[0]?.hash === migrations[0]?.hash;
  if (!ours) {
    status.foreign = true;
    return status;
  }

  const byTime = new Map(migrations.map((m) => [m.createdAt, m]));
  for (const row of applied) {
    const known = byTime.get(Number(row.createdAt));
    if (known === undefined) status.unknown += 1;
    else if (known.hash !== row.hash) status.edited.push(known.tag);
    else status.applied += 1;
  }
  return status;
}

/** Refuses a database that migrating could damage: not ours, newer than us, or edited. */
export function assertMigratable(status: SchemaStatus, path: string): void {
  if (status.foreign) {
    throw new StoreError(
      'foreign_database',
      `${path} is a SQLite database but not a tidemark store`,
      {
        hint: 'Point --dir or TIDEMARK_DIR at a tidemark store folder; this file was not changed.',
      },
    );
  }
  if (status.unknown > 0) {
    throw new StoreError('store_too_new', `${path} was written by a newer tidemark`, {
      hint: 'Upgrade tidemark to open it; this version left it unchanged.',
    });
  }
  if (status.edited.length > 0) {
    throw new StoreError(
      'migration_mismatch',
      `${path} was migrated with a different ${status.edited.join(', ')} than this version ships`,
      {
        hint: 'A shipped migration was edited in the tidemark that wrote this store; open it with that build, or report this.',
      },
    );
  }
}

/** File names of the migrations, in drizzle's order: its reader returns them without names. */
function readTags(): string[] {
  const journal = JSON.parse(
    readFileSync(join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8'),
  ) as {
    entries: Array<{ tag: string }>;
  };
  return journal.entries.map((entry) => entry.tag);
}
