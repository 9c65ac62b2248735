import type Database from 'better-sqlite3';
import { QueryError } from './errors.js';

export interface QueryResult {
  columns: string[];
  rows: unknown[][];
}

/**
 * Runs one read-only SQL statement. The connection is opened read-only with query_only set,
 * and statements SQLite does not mark read-only are refused before they run, so a query can
 * never change the store.
 */
export function runQuery(db: Database.Database, sql: string, limit = 100_000): QueryResult {
  if (typeof sql !== 'string' || sql.trim().length === 0) {
    throw new QueryError('empty_query', 'no SQL statement was given', {
      hint: `Pass one statement, e.g. tidemark query "SELECT * FROM runs_view"`,
    });
  }

  let statement: Database.Statement;
  try {
    statement = db.prepare(sql);
  } catch (error) {
    throw new QueryError(
      'invalid_sql',
      `the SQL statement was rejected: ${(error as Error).message}`,
      {
        hint: "Check the statement; 'docs/store-schema.md' lists the tables and views.",
        cause: error,
      },
    );
  }

  if (!statement.readonly) {
    throw new QueryError('write_refused', 'tidemark query runs read-only statements only', {
      hint: 'Use SELECT (or WITH ... SELECT); the store is changed only through tidemark itself.',
    });
  }
  if (!statement.reader) {
    return { columns: [], rows: [] };
  }

  try {
    const columns = statement.columns().map((column) => column.name);
    const rows: unknown[][] = [];
    for (const row of statement.raw().iterate() as IterableIterator<unknown[]>) {
      rows.push(row);
      if (rows.length >= limit) break;
    }
    return { columns, rows };
  } catch (error) {
    throw new QueryError('query_failed', `the query failed: ${(error as Error).message}`, {
      hint: 'Check table and column names against docs/store-schema.md.',
      cause: error,
    });
  }
}
