import type Database from 'better-sqlite3';
import { QueryError } from './errors.js';
import { isCorruption, toStoreError } from './sqlite-errors.js';

export interface QueryResult {
  columns: string[];
  rows: unknown[][];
}

/** Pragmas that only report: the only ones a query may run, and never with `= value`. */
const REPORTING_PRAGMAS = new Set([
  'table_info',
  'table_xinfo',
  'table_list',
  'index_list',
  'index_info',
  'index_xinfo',
  'foreign_key_list',
  'foreign_key_check',
  'integrity_check',
  'quick_check',
  'user_version',
  'schema_version',
  'application_id',
  'page_count',
  'page_size',
  'freelist_count',
  'encoding',
  'compile_options',
  'function_list',
  'pragma_list',
  'collation_list',
  'module_list',
  'database_list',
]);

const STATEMENT_KINDS = new Set(['SELECT', 'WITH', 'VALUES', 'EXPLAIN', 'PRAGMA']);

/**
 * Runs one read-only SQL statement. Three walls keep a query from changing the store: the
 * connection is opened read-only with query_only set; only SELECT, WITH, VALUES, EXPLAIN and
 * reporting pragmas are accepted (so ATTACH, VACUUM INTO, pragma writes and transaction
 * control never run); and statements SQLite does not mark read-only are refused. SQLite itself
 * refuses a second statement in the same string.
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
    if (isCorruption(error)) throw toStoreError(error, db.name);
    throw new QueryError(
      'invalid_sql',
      `the SQL statement was rejected: ${(error as Error).message}`,
      {
        hint: "Check the statement; 'docs/store-schema.md' lists the tables and views.",
        cause: error,
      },
    );
  }

  if (!statement.readonly || !statement.reader || !isReportingStatement(sql)) {
    throw new QueryError('write_refused', 'tidemark query runs read-only statements only', {
      hint: 'Use SELECT (or WITH ... SELECT); the store is changed only through tidemark itself.',
    });
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
    if (isCorruption(error)) throw toStoreError(error, db.name);
    throw new QueryError('query_failed', `the query failed: ${(error as Error).message}`, {
      hint: 'Check table and column names against docs/store-schema.md.',
      cause: error,
    });
  }
}

/** Whether the statement is of a kind that only reads, judged by its first words. */
function isReportingStatement(sql: string): boolean {
  const text = stripLeadingComments(sql);
  const kind = /^[A-Za-z]+/.exec(text)?.[0]?.toUpperCase();
  if (kind === undefined || !STATEMENT_KINDS.has(kind)) return false;
  if (kind !== 'PRAGMA') return true;
  const pragma = /^PRAGMA\s+(?:"?main"?\s*\.\s*)?"?([A-Za-z_]+)"?\s*(\([^)]*\))?\s*;?\s*$/i.exec(
    text,
  );
  return pragma !== null && REPORTING_PRAGMAS.has((pragma[1] as string).toLowerCase());
}

function stripLeadingComments(sql: string): string {
  let text = sql.trimStart();
  for (;;) {
    if (text.startsWith('--')) {
      const end = text.indexOf('\n');
      text = end === -1 ? '' : text.slice(end + 1).trimStart();
    } else if (text.startsWith('/*')) {
      const end = text.indexOf('*/');
      text = end === -1 ? '' : text.slice(end + 2).trimStart();
    } else {
      return text;
    }
  }
}
