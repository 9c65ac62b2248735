import type Database from 'better-sqlite3';
import type { SalvagedTable } from './salvage-rows.js';

/*
 * What a repair lost, worked out from what survived: points and journal entries are never
 * deleted and their rowids never reused, so gaps in them are losses, and the series summaries
 * of the damaged store say how many points each series held before.
 */

/** A series that holds fewer points than its summary said before the damage. */
export interface SeriesLoss {
  runId: string;
  path: string;
  before: number;
  after: number;
}

/** Compares each surviving series with the count its summary held before the damage. */
export function seriesLosses(
  db: Database.Database,
  before: SalvagedTable | undefined,
): SeriesLoss[] {
  const at = before?.columns.indexOf('point_count') ?? -1;
  if (before === undefined || at < 0) return [];
  const counted = db.prepare(
    'SELECT run_id, path, count(p.rowid) AS n FROM series s LEFT JOIN points p ON p.series_id = s.id WHERE s.id = ? GROUP BY s.id',
  );
  const out: SeriesLoss[] = [];
  for (const row of before.rows) {
    const now = counted.get(row[0]) as { run_id: string; path: string; n: number } | undefined;
    const was = row[at + 1] as number;
    if (now !== undefined && now.n < was) {
      out.push({ runId: now.run_id, path: now.path, before: was, after: now.n });
    }
  }
  return out;
}

/**
 * The highest rowid other tables prove existed: the journal names points up to its largest
 * `last_point` and the seal mark; cursors and the sequence name journal entries.
 */
export function knownEnds(salvaged: Map<string, SalvagedTable>): Map<string, number> {
  const column = (table: string, name: string): number[] => {
    const rows = salvaged.get(table);
    const at = rows?.columns.indexOf(name) ?? -1;
    if (rows === undefined || at < 0) return [];
    return rows.rows.map((row) => Number(row[at + 1])).filter((n) => Number.isFinite(n));
  };
  const meta = salvaged.get('meta')?.rows.find((row) => row[1] === 'sealed_point');
  const sequence = salvaged.get('sqlite_sequence')?.rows.find((row) => row[1] === 'journal');
  return new Map([
    ['points', Math.max(0, ...column('journal', 'last_point'), Number(meta?.[2] ?? 0))],
    ['journal', Math.max(0, ...column('sync_cursors', 'seq'), Number(sequence?.[2] ?? 0))],
  ]);
}

/**
 * Rowid ranges of a table no row was read from: where reading failed, less what the page scan
 * found there; for points and journal entries, whose rowids are never reused or deleted, every
 * gap up to the highest rowid known to have existed.
 */
export function lostRanges(
  table: SalvagedTable,
  knownEnd: number | undefined,
): Array<{ from: number; to: number | null }> {
  const rowids = table.rows.map((row) => row[0] as number);
  const out: Array<{ from: number; to: number | null }> = [];
  if (knownEnd !== undefined) {
    let next = 1;
    for (const id of rowids) {
      if (id > next) out.push({ from: next, to: id - 1 });
      next = id + 1;
    }
    if (knownEnd >= next) out.push({ from: next, to: knownEnd });
    return out;
  }
  for (const range of table.lost) {
    let from = range.from;
    for (const id of rowids) {
      if (id < from || (range.to !== null && id > range.to)) continue;
      if (id > from) out.push({ from, to: id - 1 });
      from = id + 1;
    }
    if (range.to === null || from <= range.to) out.push({ from, to: range.to });
  }
  return out;
}
