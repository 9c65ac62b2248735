import { StoreError, TidemarkError } from './errors.js';

const REPAIR_HINT =
  "Run 'tidemark verify' to see what is wrong and 'tidemark verify --repair' to keep what " +
  'can still be read; the damaged file is kept beside the repaired one.';

/**
 * Turns an error SQLite raised into a StoreError a user can act on. Errors that are already
 * tidemark's, and errors that did not come from SQLite, pass through unchanged. The message
 * names the file and SQLite's code, never the statement or its values.
 */
export function toStoreError(error: unknown, path: string): unknown {
  if (error instanceof TidemarkError) return error;
  const code = sqliteCode(error);
  if (code === undefined) return error;

  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new StoreError('store_corrupt', `the store database ${path} is damaged (${code})`, {
      hint: REPAIR_HINT,
      cause: error,
    });
  }
  if (code === 'SQLITE_FULL') {
    return new StoreError('disk_full', `the disk holding ${path} is full`, {
      hint: 'Free disk space and call again; nothing a call returned from before was lost.',
      retryable: true,
      cause: error,
    });
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new StoreError('store_busy', `${path} stayed locked by another process for 30 s`, {
      hint: 'Another process holds a long write on the store; call again once it is done.',
      retryable: true,
      cause: error,
    });
  }
  if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_PERM')) {
    return new StoreError('store_readonly', `${path} cannot be written (${code})`, {
      hint: 'Check that this user may write the store folder and its files.',
      cause: error,
    });
  }
  if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CANTOPEN')) {
    return new StoreError('store_io', `reading or writing ${path} failed (${code})`, {
      hint: 'Check the disk and the permissions of the store folder.',
      retryable: true,
      cause: error,
    });
  }
  return error;
}

/** Runs a read of `db`, turning damage SQLite finds on the way into a StoreError. */
export function reading<T>(db: { name: string }, read: () => T): T {
  try {
    return read();
  } catch (error) {
    throw toStoreError(error, db.name);
  }
}

/** The SQLite result code an error carries (`SQLITE_CORRUPT`, ...), if it came from SQLite. */
export function sqliteCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** Whether an error says the database file itself is damaged. */
export function isCorruption(error: unknown): boolean {
  if (error instanceof StoreError) return error.code === 'store_corrupt';
  const code = sqliteCode(error);
  return code !== undefined && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB');
}
