import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError } from './errors.js';

const DB_FILE = 'store.db';
const SQLITE_HEADER = 'SQLite format 3\u0000';

/** What a store folder holds before it is opened. */
export interface StoreFolder {
  /**
   * `missing`: no `store.db`. `empty`: a zero-byte one, which another process may be creating
   * this instant (SQLite writes the first page when it turns WAL on). `present`: anything else.
   */
  database: 'missing' | 'empty' | 'present';
  /** Signs that a store lived here: its objects, or a log SQLite would replay. */
  remnants: string[];
  /** Non-empty SQLite logs without a database: they must not meet a new one. */
  orphanLogs: string[];
}

/**
 * Looks at a store folder without opening anything. A missing or empty `store.db` beside an
 * `objects/` folder or a WAL means the database was lost, not that the store is new: creating
 * an empty one there would hide the loss (issue 3: never silently re-created empty).
 */
export function inspectStoreFolder(dir: string): StoreFolder {
  const dbPath = join(dir, DB_FILE);
  // Objects first: a creator makes `objects/` only once its database has tables, so objects
  // seen before an empty database mean a lost database, never one being created right now.
  const objects = existsSync(join(dir, 'objects'));
  const remnants: string[] = [];
  const orphanLogs: string[] = [];
  const exists = existsSync(dbPath);
  const database = !exists ? 'missing' : statSync(dbPath).size === 0 ? 'empty' : 'present';
  if (database === 'present') return { database, remnants, orphanLogs };

  if (objects) remnants.push('objects/');
  // Beside an empty database these are the creator's own files, in use right now.
  if (database === 'empty') return { database, remnants, orphanLogs };
  for (const suffix of ['-wal', '-journal']) {
    const path = `${dbPath}${suffix}`;
    if (existsSync(path) && statSync(path).size > 0) {
      orphanLogs.push(path);
      remnants.push(`${DB_FILE}${suffix}`);
    }
  }
  return { database, remnants, orphanLogs };
}

/** Refuses a file that does not start like a SQLite database, before SQLite touches it. */
export function assertSqliteFile(path: string): void {
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

/**
 * Refuses a database file shorter than its own header says, unless a WAL holds pages that may
 * make up the difference. Such a file was cut (a partial copy, a full disk): SQLite would open
 * it and fail later, on whichever read reaches the missing pages.
 */
export function assertDatabaseLength(path: string): void {
  const wal = `${path}-wal`;
  if (existsSync(wal) && statSync(wal).size > 0) return;
  const fd = openSync(path, 'r');
  let header: Buffer;
  let size: number;
  try {
    header = Buffer.alloc(100);
    size = fstatSync(fd).size;
    if (readSync(fd, header, 0, 100, 0) < 100) return;
  } finally {
    closeSync(fd);
  }
  const raw = header.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  const pages = header.readUInt32BE(28);
  const trusted = header.readUInt32BE(24) === header.readUInt32BE(92);
  if (size % pageSize !== 0 || (trusted && pages * pageSize > size)) {
    throw new StoreError('store_corrupt', `${path} is shorter than its header says: it was cut`, {
      hint: "Run 'tidemark verify' to see what is missing and 'tidemark verify --repair' to keep what can still be read; the file was not changed.",
    });
  }
}
