import {
  closeSync,
  copyFileSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import { migrateStore } from './migrate-store.js';
import { scanLeafPages } from './page-scan.js';
import { knownEnds, lostRanges, type SeriesLoss, seriesLosses } from './repair-accounting.js';
import { type SalvagedTable, salvageTable } from './salvage-rows.js';
import { DB_FILE, resolveStoreDir } from './store.js';

/** Tables copied into the repaired store, parents before children. Derived tables are rebuilt. */
const TABLES = [
  'meta',
  'projects',
  'runs',
  'run_writers',
  'series',
  'fields',
  'tags',
  'files',
  'points',
  'journal',
  'sync_cursors',
  'quarantine',
];

const KEEPS_ROWID = new Set(['projects', 'series', 'points', 'journal']);

/** What a repair kept, lost and removed. */
export interface RepairReport {
  dir: string;
  /** The damaged database, moved aside and kept. */
  keptAs: string;
  tables: Array<{
    table: string;
    recovered: number;
    /** Of the rows kept, those read straight from leaf pages under damaged interior pages. */
    fromPages: number;
    /** Rowid ranges of which no row could be read; `to` null: up to an unknown end. */
    lost: Array<{ from: number; to: number | null }>;
    unreadable: boolean;
  }>;
  /** Rows dropped because what they belonged to was lost (a point whose series is gone). */
  orphansRemoved: Record<string, number>;
  /** Series that hold fewer points than their summary said before the damage. */
  series: SeriesLoss[];
  /** Points known to be lost: at least this many. */
  lostPoints: number;
}

/**
 * Rebuilds a damaged store from every row that can still be read: the database (with its WAL)
 * is copied aside and read table by table, skipping damaged pages; a new database at the
 * current schema receives the rows; summaries are recomputed and the journal is cut back to
 * the points that survived, so no future entry reuses a lost point's place. The damaged file
 * is kept as `store.db.damaged-<time>`. Stop every process writing the store first.
 */
export function repairStore(options: { dir?: string; clock?: () => number } = {}): RepairReport {
  const dir = resolveStoreDir(options.dir);
  const dbPath = join(dir, DB_FILE);
  if (!existsSync(dbPath)) {
    throw new StoreError('store_missing', `no ${DB_FILE} to repair in ${dir}`, {
      hint: 'Restore it from a backup; there is nothing to rebuild from.',
    });
  }
  const work = mkdtempSync(join(dir, '.repair-'));
  try {
    const source = copyForReading(dbPath, work);
    const salvaged = readEverything(source, dir);
    const repairedPath = join(work, 'repaired.db');
    const report = writeRepaired(repairedPath, salvaged, dir);
    report.keptAs = swapIn(dbPath, repairedPath, (options.clock ?? Date.now)());
    return report;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Copies the database and its WAL aside, folds the WAL's committed frames into the copy, and
 * makes the copy's header agree with its real length. The store's own files are only read.
 */
function copyForReading(dbPath: string, work: string): string {
  const source = join(work, 'source.db');
  copyFileSync(dbPath, source);
  if (existsSync(`${dbPath}-wal`)) copyFileSync(`${dbPath}-wal`, `${source}-wal`);
  fitHeaderToLength(source);
  if (existsSync(`${source}-wal`)) {
    try {
      const db = new Database(source);
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
    } catch {
      // A WAL SQLite cannot apply is left beside the copy; rows are read through it.
    }
    fitHeaderToLength(source);
  }
  return source;
}

/**
 * A cut file reads as zeros past its end, but SQLite refuses a file whose header counts more
 * pages than it holds. The copy drops a partial last page (its cells would read back as zeros
 * where the cut fell, looking valid) and its header counts the pages that are left.
 */
function fitHeaderToLength(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    const header = Buffer.alloc(100);
    if (readSync(fd, header, 0, 100, 0) < 100) return;
    const raw = header.readUInt16BE(16);
    const pageSize = raw === 1 ? 65536 : raw;
    if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) return;
    const pages = Math.floor(fstatSync(fd).size / pageSize);
    ftruncateSync(fd, pages * pageSize);
    const field = Buffer.alloc(8);
    field.writeUInt32BE(pages, 0);
    header.copy(field, 4, 24, 28);
    writeSync(fd, field, 0, 4, 28);
    // SQLite trusts the page count only when version-valid-for equals the change counter.
    writeSync(fd, field, 4, 4, 92);
  } finally {
    closeSync(fd);
  }
}

function readEverything(source: string, dir: string): Map<string, SalvagedTable> {
  const db = new Database(source, { readonly: true, fileMustExist: true });
  const out = new Map<string, SalvagedTable>();
  let tables: string[];
  try {
    try {
      tables = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .pluck()
        .all() as string[];
    } catch (error) {
      throw new StoreError(
        'store_unrecoverable',
        `the schema of ${dir}/${DB_FILE} cannot be read`,
        {
          hint: 'Nothing can be recovered by tidemark; restore the store from a backup. It was left as it was.',
          cause: error,
        },
      );
    }
    assertNoLiveWriters(db, new Set(tables), dir);
    for (const table of tables) out.set(table, salvageTable(db, table));
  } finally {
    db.close();
  }

  // Rows under damaged interior pages are still on their leaf pages: read those directly.
  const damaged = [...out.values()].some((t) => t.lost.length > 0 || t.unreadable);
  if (damaged) {
    const shapes = [...out.values()].filter((t) => t.columns.length > 0).map((t) => t.shape);
    const scan = scanLeafPages(source, shapes);
    for (const table of out.values()) {
      const found = scan.rows.get(table.table);
      if (found === undefined) continue;
      const have = new Set(table.rows.map((row) => row[0] as number));
      const added = [...found.values()].filter((row) => !have.has(row[0] as number));
      table.rows.push(...added);
      table.rows.sort((a, b) => (a[0] as number) - (b[0] as number));
      table.fromPages = added.length;
    }
  }

  const total = TABLES.reduce((sum, name) => sum + (out.get(name)?.rows.length ?? 0), 0);
  if (total === 0) {
    throw new StoreError('store_unrecoverable', `no row of ${dir}/${DB_FILE} can be read`, {
      hint: 'Restore the store from a backup. It was left as it was.',
    });
  }
  return out;
}

/** A repair under a live writer would lose what it writes next: refuse while one is alive. */
function assertNoLiveWriters(db: Database.Database, tables: Set<string>, dir: string): void {
  if (!tables.has('run_writers')) return;
  let pids: number[] = [];
  try {
    pids = db
      .prepare(
        'SELECT pid FROM run_writers WHERE ended_at IS NULL AND host = ? AND pid IS NOT NULL',
      )
      .pluck()
      .all(hostname()) as number[];
  } catch {
    return;
  }
  const alive = pids.filter((pid) => pid !== process.pid && isAlive(pid));
  if (alive.length > 0) {
    throw new StoreError('store_in_use', `processes ${alive.join(', ')} are writing ${dir}`, {
      hint: 'Stop them, then repair; the store was left as it was.',
    });
  }
}

function writeRepaired(
  path: string,
  salvaged: Map<string, SalvagedTable>,
  dir: string,
): RepairReport {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    migrateStore(db, path);
    db.pragma('foreign_keys = OFF');
    const report: RepairReport = {
      dir,
      keptAs: '',
      tables: [],
      orphansRemoved: {},
      series: [],
      lostPoints: 0,
    };
    const bounds = knownEnds(salvaged);
    db.transaction(() => {
      for (const table of TABLES) {
        const rows = salvaged.get(table);
        if (rows === undefined) continue;
        const kept = { ...rows, rows: copyRows(db, rows) };
        report.tables.push({
          table,
          recovered: kept.rows.length,
          fromPages: rows.fromPages,
          lost: lostRanges(kept, bounds.get(table)),
          unreadable: rows.unreadable && rows.rows.length === 0,
        });
      }
      removeOrphans(db, report);
      report.series = seriesLosses(db, salvaged.get('series'));
      db.exec(RECOMPUTE_SUMMARIES);
      const pointGaps = report.tables.find((t) => t.table === 'points')?.lost ?? [];
      report.lostPoints = Math.max(
        report.series.reduce((sum, s) => sum + (s.before - s.after), 0),
        pointGaps.reduce((sum, r) => sum + (r.to === null ? 0 : r.to - r.from + 1), 0),
      );
      realignJournal(db, salvaged);
    })();
    const check = db.pragma('integrity_check', { simple: true });
    if (check !== 'ok') {
      throw new StoreError('repair_failed', `the rebuilt store failed its integrity check`, {
        hint: 'The damaged store was left as it was; report this.',
      });
    }
    return report;
  } finally {
    db.close();
  }
}

/** Inserts the salvaged rows; returns those SQLite accepted (a garbled row breaks a constraint). */
function copyRows(db: Database.Database, salvaged: SalvagedTable): unknown[][] {
  const present = new Set(
    (db.prepare(`PRAGMA table_info("${salvaged.table}")`).all() as Array<{ name: string }>).map(
      (c) => c.name,
    ),
  );
  const keep = salvaged.columns.map((name, i) => ({ name, i })).filter((c) => present.has(c.name));
  // Rowids that other rows or the journal refer to are kept; the others are left to SQLite.
  const withRowid = KEEPS_ROWID.has(salvaged.table);
  const names = [...(withRowid ? ['rowid'] : []), ...keep.map((c) => `"${c.name}"`)].join(', ');
  const marks = [...(withRowid ? ['?'] : []), ...keep.map(() => '?')].join(', ');
  const verb = salvaged.table === 'meta' ? 'INSERT OR REPLACE' : 'INSERT OR IGNORE';
  const insert = db.prepare(`${verb} INTO "${salvaged.table}" (${names}) VALUES (${marks})`);
  const kept: unknown[][] = [];
  for (const row of salvaged.rows) {
    const values = keep.map((c) => row[c.i + 1]);
    if (insert.run(...(withRowid ? [row[0], ...values] : values)).changes > 0) kept.push(row);
  }
  return kept;
}

const ORPHANS: Array<[string, string]> = [
  ['runs', 'DELETE FROM runs WHERE project_id NOT IN (SELECT id FROM projects)'],
  ['run_writers', 'DELETE FROM run_writers WHERE run_id NOT IN (SELECT id FROM runs)'],
  ['series', 'DELETE FROM series WHERE run_id NOT IN (SELECT id FROM runs)'],
  ['fields', 'DELETE FROM fields WHERE run_id NOT IN (SELECT id FROM runs)'],
  ['tags', 'DELETE FROM tags WHERE run_id NOT IN (SELECT id FROM runs)'],
  ['files', 'DELETE FROM files WHERE run_id NOT IN (SELECT id FROM runs)'],
  ['points', 'DELETE FROM points WHERE series_id NOT IN (SELECT id FROM series)'],
  ['journal', 'DELETE FROM journal WHERE run_id NOT IN (SELECT id FROM runs)'],
];

function removeOrphans(db: Database.Database, report: RepairReport): void {
  for (const [table, sql] of ORPHANS) {
    const removed = db.prepare(sql).run().changes;
    if (removed > 0) report.orphansRemoved[table] = removed;
  }
}

/**
 * Makes the journal cover the surviving points once. A store no remote has confirmed anything
 * of gets its point entries rebuilt from scratch. Otherwise entries are cut back to the points
 * that survived (points whose entry was lost stay local: sending them again could send twice
 * what a remote already has). Sequences are set so nothing new reuses a lost place: an entry
 * whose seq is at or below a remote's cursor would never be sent (invariant 3).
 */
function realignJournal(db: Database.Database, salvaged: Map<string, SalvagedTable>): void {
  const top =
    (db.prepare('SELECT coalesce(max(rowid), 0) FROM points').pluck().get() as number) ?? 0;
  const synced = db.prepare('SELECT count(*) FROM sync_cursors').pluck().get() as number;
  if (synced === 0) {
    // Nothing was ever confirmed by a remote: cover every surviving point afresh, exactly once.
    db.exec("DELETE FROM journal WHERE kind = 'points'");
    setSealMark(db, 0);
  } else {
    db.prepare("DELETE FROM journal WHERE kind = 'points' AND first_point > ?").run(top);
    db.prepare("UPDATE journal SET last_point = ? WHERE kind = 'points' AND last_point > ?").run(
      top,
      top,
    );
    // Each entry now carries only the points that survived; one that carries none is dropped.
    db.exec(`UPDATE journal SET point_count = (
        SELECT count(*) FROM points p CROSS JOIN series s ON s.id = p.series_id
        WHERE p.rowid BETWEEN journal.first_point AND journal.last_point AND s.run_id = journal.run_id)
      WHERE kind = 'points'`);
    db.exec("DELETE FROM journal WHERE kind = 'points' AND point_count = 0");
    const mark = db.prepare("SELECT value FROM meta WHERE key = 'sealed_point'").pluck().get() as
      | string
      | undefined;
    const covered = db
      .prepare("SELECT coalesce(max(last_point), 0) FROM journal WHERE kind = 'points'")
      .pluck()
      .get() as number;
    setSealMark(db, Math.min(top, mark === undefined ? covered : Number(mark)));
  }

  const old = new Map(
    (salvaged.get('sqlite_sequence')?.rows ?? []).map((row) => [String(row[1]), Number(row[2])]),
  );
  const floors: Array<[string, string]> = [
    [
      'journal',
      'SELECT max(coalesce((SELECT max(seq) FROM journal), 0), coalesce((SELECT max(seq) FROM sync_cursors), 0))',
    ],
    [
      'series',
      'SELECT max(coalesce((SELECT max(id) FROM series), 0), coalesce((SELECT max(series_id) FROM points), 0))',
    ],
    [
      'projects',
      'SELECT max(coalesce((SELECT max(id) FROM projects), 0), coalesce((SELECT max(project_id) FROM runs), 0))',
    ],
  ];
  for (const [name, sql] of floors) {
    const floor = Math.max(db.prepare(sql).pluck().get() as number, old.get(name) ?? 0);
    db.prepare('DELETE FROM sqlite_sequence WHERE name = ?').run(name);
    db.prepare('INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)').run(name, floor);
  }
}

function setSealMark(db: Database.Database, point: number): void {
  db.prepare(
    "INSERT INTO meta (key, value) VALUES ('sealed_point', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
  ).run(String(point));
}

const RECOMPUTE_SUMMARIES = `
  UPDATE series SET
    point_count = (SELECT count(*) FROM points p WHERE p.series_id = series.id),
    nan_count = (SELECT count(*) FROM points p WHERE p.series_id = series.id AND p.flag = 1),
    min_value = CASE WHEN type = 'float' THEN (SELECT min(p.value) FROM points p WHERE p.series_id = series.id) END,
    max_value = CASE WHEN type = 'float' THEN (SELECT max(p.value) FROM points p WHERE p.series_id = series.id) END,
    first_step = (SELECT min(p.step) FROM points p WHERE p.series_id = series.id),
    last_step = (SELECT max(p.step) FROM points p WHERE p.series_id = series.id),
    packed_through = 0,
    packed_count = 0;
  UPDATE series SET (last_value, last_flag, last_text) = (
    SELECT p.value, p.flag, p.text FROM points p
    WHERE p.series_id = series.id ORDER BY p.step DESC, p.rowid DESC LIMIT 1);`;

/** Moves the damaged files aside and the repaired database into place; returns the kept name. */
function swapIn(dbPath: string, repairedPath: string, now: number): string {
  const stamp = new Date(now).toISOString().replaceAll(':', '-');
  const kept = `${dbPath}.damaged-${stamp}`;
  renameSync(dbPath, kept);
  for (const suffix of ['-wal', '-shm']) {
    if (existsSync(`${dbPath}${suffix}`)) renameSync(`${dbPath}${suffix}`, `${kept}${suffix}`);
  }
  renameSync(repairedPath, dbPath);
  const fd = openSync(join(dbPath, '..'), 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return kept;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
