import type Database from 'better-sqlite3';
import type { TableShape } from './page-scan.js';
import { isCorruption } from './sqlite-errors.js';

/** Rows of one table read from a damaged database, and the rowid ranges that could not be. */
export interface SalvagedTable {
  table: string;
  columns: string[];
  /** The columns as the page scanner matches records against them. */
  shape: TableShape;
  /** `[rowid, ...values in column order]`. */
  rows: unknown[][];
  /** Rowid ranges inside which reading failed; `to` is null when the end could not be read. */
  lost: Array<{ from: number; to: number | null }>;
  /** The whole table was unreadable (its root page is damaged). */
  unreadable: boolean;
  /** Rows found only by reading leaf pages directly (see page-scan.ts). */
  fromPages: number;
}

const PAGE_ROWS = 2000;
const MAX_ROWID = Number.MAX_SAFE_INTEGER;

/**
 * Reads every row of a rowid table that can still be read, walking the table in rowid order.
 * Where SQLite reports damage it probes forward (doubling the jump, then narrowing it by
 * bisection) for the next rowid it can seek to, and records the range it stepped over, so one
 * damaged page costs only the rows on it (issue 3, point 9).
 */
export function salvageTable(db: Database.Database, table: string): SalvagedTable {
  const out: SalvagedTable = {
    table,
    columns: [],
    shape: { name: table, columns: [] },
    rows: [],
    lost: [],
    unreadable: false,
    fromPages: 0,
  };
  const quoted = `"${table.replaceAll('"', '""')}"`;
  try {
    const info = db.prepare(`PRAGMA table_info(${quoted})`).all() as Array<{
      name: string;
      type: string;
      notnull: number;
      dflt_value: unknown;
      pk: number;
    }>;
    const keyColumns = info.filter((c) => c.pk > 0).length;
    out.columns = info.map((c) => c.name);
    out.shape.columns = info.map((c) => ({
      type: c.type,
      notNull: c.notnull === 1,
      hasDefault: c.dflt_value !== null,
      rowidAlias: c.pk === 1 && keyColumns === 1 && c.type.toUpperCase() === 'INTEGER',
    }));
  } catch (error) {
    if (!isCorruption(error)) throw error;
    out.unreadable = true;
    return out;
  }
  const page = db
    .prepare(`SELECT rowid, * FROM ${quoted} WHERE rowid > ? ORDER BY rowid LIMIT ${PAGE_ROWS}`)
    .raw();
  const one = db
    .prepare(`SELECT rowid, * FROM ${quoted} WHERE rowid > ? ORDER BY rowid LIMIT 1`)
    .raw();
  const seek = db
    .prepare(`SELECT rowid FROM ${quoted} WHERE rowid >= ? ORDER BY rowid LIMIT 1`)
    .pluck();

  let after = Number.MIN_SAFE_INTEGER;
  for (;;) {
    const read = readPage(page, after) ?? readUntilDamage(one, after);
    out.rows.push(...read.rows);
    if (read.rows.length > 0) after = (read.rows.at(-1) as unknown[])[0] as number;
    if (read.done) return out;
    if (read.rows.length > 0) continue;

    // Damage right after `after`: step over it to the next row a seek can reach.
    const resume = probe(seek, after);
    if (out.rows.length === 0 && resume === undefined && after === Number.MIN_SAFE_INTEGER) {
      out.unreadable = true;
      return out;
    }
    const from = after === Number.MIN_SAFE_INTEGER ? 1 : after + 1;
    if (resume === undefined) {
      out.lost.push({ from, to: null });
      return out;
    }
    if (resume > from) out.lost.push({ from, to: resume - 1 });
    // The row a seek reaches may itself be unreadable (a damaged overflow page): skip it alone.
    const row = readOne(one, resume - 1);
    if (row === undefined || row[0] !== resume) {
      out.lost.push({ from: resume, to: resume });
      after = resume;
      continue;
    }
    out.rows.push(row);
    after = resume;
  }
}

interface PageRead {
  rows: unknown[][];
  /** The table's end was reached. */
  done: boolean;
}

function readPage(page: Database.Statement, after: number): PageRead | undefined {
  let rows: unknown[][];
  try {
    rows = page.all(after) as unknown[][];
  } catch (error) {
    if (!isCorruption(error)) throw error;
    return undefined;
  }
  // A half-overwritten page can hand back cells out of order; that is damage too.
  let last = after;
  for (const row of rows) {
    const id = row[0] as number;
    if (id <= last) return undefined;
    last = id;
  }
  return { rows, done: rows.length < PAGE_ROWS };
}

function readOne(one: Database.Statement, after: number): unknown[] | undefined {
  try {
    return one.get(after) as unknown[] | undefined;
  } catch (error) {
    if (!isCorruption(error)) throw error;
    return undefined;
  }
}

/** After a failed page read, takes the rows before the damage one at a time. */
function readUntilDamage(one: Database.Statement, after: number): PageRead {
  const rows: unknown[][] = [];
  let at = after;
  while (rows.length < PAGE_ROWS) {
    let next: unknown[] | undefined;
    try {
      next = one.get(at) as unknown[] | undefined;
    } catch (error) {
      if (!isCorruption(error)) throw error;
      return { rows, done: false };
    }
    if (next === undefined) return { rows, done: true };
    if ((next[0] as number) <= at) return { rows, done: false };
    rows.push(next);
    at = next[0] as number;
  }
  return { rows, done: false };
}

/** The first rowid after `after` a seek can reach, skipping damaged ranges; undefined if none. */
function probe(seek: Database.Statement, after: number): number | undefined {
  const reach = (at: number): number | null | 'damaged' => {
    try {
      return (seek.get(at) as number | undefined) ?? null;
    } catch (error) {
      if (!isCorruption(error)) throw error;
      return 'damaged';
    }
  };

  const base = Math.max(after, 0);
  let failed = base;
  let jump = 1;
  let found: number | undefined;
  let foundAt = 0;
  while (base + jump <= MAX_ROWID) {
    const result = reach(base + jump);
    if (result === null) return undefined;
    if (result !== 'damaged') {
      found = result;
      foundAt = base + jump;
      break;
    }
    failed = base + jump;
    jump *= 2;
  }
  if (found === undefined) return undefined;

  // Narrow down where the damage ends, so readable rows just after it are not skipped.
  let low = failed;
  let high = foundAt;
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    const result = reach(mid);
    if (result === 'damaged') low = mid;
    else {
      high = mid;
      if (result !== null) found = Math.min(found, result);
    }
  }
  const first = reach(high);
  return typeof first === 'number' ? first : found;
}
