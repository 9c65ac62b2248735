import {
  accessSync,
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  statfsSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { schemaStatus } from './migrate-store.js';
import { sqliteCode } from './sqlite-errors.js';
import { DB_FILE, DEFAULT_STALE_AFTER_MS, resolveStoreDir } from './store.js';
import { CONTENT_CHECKS } from './store-checks.js';
import { inspectStoreFolder } from './store-folder.js';
import {
  finding,
  type VerifyCheck,
  type VerifyContext,
  type VerifyFinding,
} from './verify-check.js';
import { scanWal } from './wal-file.js';

export interface VerifyReport {
  dir: string;
  /** No finding of severity `error`. */
  ok: boolean;
  findings: VerifyFinding[];
  checks: Array<{ name: string; ms: number; findings: number; skipped: boolean }>;
}

export interface VerifyOptions {
  dir?: string;
  checks?: readonly VerifyCheck[];
  clock?: () => number;
  staleAfterMs?: number;
}

/**
 * Checks a store and says what is wrong, without changing it: the file and its WAL byte by
 * byte, SQLite's integrity check, the schema version, then the store's own rules (references,
 * series summaries, journal coverage, runs left running). Run it while no process writes the
 * store, or a WAL being appended to may show a transaction in flight. A store whose folder
 * cannot be written (a read-only mount) is verified from a temp copy of its database and WAL.
 */
export async function verifyStore(options: VerifyOptions = {}): Promise<VerifyReport> {
  const dir = resolveStoreDir(options.dir);
  const dbPath = join(dir, DB_FILE);
  const context: VerifyContext = {
    dir,
    dbPath,
    db: undefined,
    schemaCurrent: false,
    now: (options.clock ?? Date.now)(),
    staleAfterMs: options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS,
  };
  const report: VerifyReport = { dir, ok: true, findings: [], checks: [] };
  let opened: Opened | undefined;

  try {
    if (inspectStoreFolder(dir).database === 'present') {
      opened = openForVerify(dbPath);
      context.db = opened.db;
      report.findings.push(...opened.findings);
    }
    if (context.db !== undefined) {
      const status = safely(() => schemaStatus(context.db as Database.Database));
      context.schemaCurrent =
        status !== undefined && !status.foreign && status.applied === status.known;
    }
    for (const check of options.checks ?? STORE_CHECKS) {
      const skipped =
        check.needs === 'database' && (context.db === undefined || !context.schemaCurrent);
      const started = performance.now();
      let findings: VerifyFinding[] = [];
      if (!skipped) findings = await runCheck(check, context);
      report.findings.push(...findings);
      report.checks.push({
        name: check.name,
        ms: Math.round(performance.now() - started),
        findings: findings.length,
        skipped,
      });
    }
  } finally {
    context.db?.close();
    if (opened?.copy !== undefined) rmSync(opened.copy, { recursive: true, force: true });
  }
  report.ok = !report.findings.some((f) => f.severity === 'error');
  return report;
}

const fileCheck: VerifyCheck = {
  name: 'file',
  run({ dir, dbPath }) {
    const folder = inspectStoreFolder(dir);
    if (folder.database !== 'present') {
      const left =
        folder.remnants.length > 0 ? ` (the folder holds ${folder.remnants.join(', ')})` : '';
      return [
        finding('file', 'error', 'store_missing', `${dbPath} is missing or empty${left}`, {
          hint: 'Restore store.db from a backup; tidemark will not create an empty one over these files.',
        }),
      ];
    }
    const header = readHeader(dbPath);
    if (header === undefined) {
      return [
        finding('file', 'error', 'not_sqlite', `${dbPath} does not start with a SQLite header`, {
          hint: 'The first bytes of the file are damaged or it is not a database; nothing here can be read.',
        }),
      ];
    }
    const out: VerifyFinding[] = [];
    if (header.fileSize % header.pageSize !== 0) {
      out.push(
        finding('file', 'error', 'db_partial_page', `${dbPath} ends inside a page`, {
          hint: "The file was cut short; 'tidemark verify --repair' keeps what can be read.",
        }),
      );
    }
    const pagesOnDisk = Math.floor(header.fileSize / header.pageSize);
    if (header.headerPagesValid && header.headerPages > pagesOnDisk) {
      out.push(
        finding(
          'file',
          'error',
          'db_truncated',
          `${dbPath} holds ${pagesOnDisk} pages but its header counts ${header.headerPages}: ` +
            `${(header.headerPages - pagesOnDisk) * header.pageSize} bytes are missing from its end`,
          { hint: "The file was cut short; 'tidemark verify --repair' keeps what can be read." },
        ),
      );
    }
    return out;
  },
};

const walCheck: VerifyCheck = {
  name: 'wal',
  run({ dbPath }) {
    const scan = scanWal(`${dbPath}-wal`);
    if (!scan.exists || scan.size === 0) return [];
    const wal = `${dbPath}-wal`;
    if (!scan.headerValid) {
      return [
        finding('wal', 'error', 'wal_header_damaged', `the header of ${wal} is damaged`, {
          hint: `SQLite ignores all ${scan.size} bytes of it: transactions not yet copied into store.db are lost.`,
        }),
      ];
    }
    if (scan.damagedAt !== undefined && scan.commitsAfterDamage > 0) {
      return [
        finding(
          'wal',
          'error',
          'wal_commits_lost',
          `${wal} is damaged at byte ${scan.damagedAt}; ${scan.commitsAfterDamage} committed ` +
            `transactions after it will be dropped (${scan.commits} before it are intact)`,
          {
            hint: 'The drop happens on the next open; copy the WAL aside first to keep the evidence.',
          },
        ),
      ];
    }
    const tail = scan.size - scan.committedEnd;
    if (scan.damagedAt !== undefined || scan.partialBytes > 0 || scan.uncommittedFrames > 0) {
      return [
        finding(
          'wal',
          'warning',
          'wal_tail_discarded',
          `${wal} holds ${scan.commits} intact commits up to byte ${scan.committedEnd}; the ` +
            `${tail} bytes after them are an unfinished transaction SQLite ignores`,
          {
            hint: 'A writer killed mid-commit leaves this and loses nothing it returned from; a WAL cut short loses the transactions after that byte.',
          },
        ),
      ];
    }
    return [];
  },
};

const sqliteCheck: VerifyCheck = {
  name: 'sqlite',
  run({ db }) {
    // Without a database the file check has said why.
    if (db === undefined) return [];
    try {
      const lines = (db.pragma('integrity_check(100)') as Array<{ integrity_check: string }>)
        .flatMap((row) => row.integrity_check.split('\n'))
        .filter((line) => line !== 'ok' && line.length > 0);
      if (lines.length === 0) return [];
      return [integrityFinding(lines.length, lines.slice(0, 10).join('; '))];
    } catch (error) {
      return [integrityFinding(1, `${sqliteCode(error) ?? 'error'}: ${(error as Error).message}`)];
    }
  },
};

const schemaCheck: VerifyCheck = {
  name: 'schema',
  run({ db, dbPath }) {
    if (db === undefined) return [];
    const status = safely(() => schemaStatus(db));
    if (status === undefined) {
      return [
        finding('schema', 'error', 'schema_unreadable', `cannot read the schema of ${dbPath}`),
      ];
    }
    if (status.foreign) {
      return [finding('schema', 'error', 'foreign_database', `${dbPath} is not a tidemark store`)];
    }
    if (status.unknown > 0) {
      return [
        finding('schema', 'error', 'store_too_new', `${dbPath} was written by a newer tidemark`, {
          hint: 'Verify it with that version.',
        }),
      ];
    }
    if (status.edited.length > 0) {
      return [
        finding(
          'schema',
          'error',
          'migration_mismatch',
          `migrations ${status.edited.join(', ')} applied to ${dbPath} differ from the shipped ones`,
        ),
      ];
    }
    if (status.applied < status.known) {
      return [
        finding(
          'schema',
          'info',
          'schema_old',
          `${dbPath} has ${status.applied} of ${status.known} migrations; the next open applies the rest`,
        ),
      ];
    }
    return [];
  },
};

/** Every check `tidemark verify` runs on a store, in order. */
export const STORE_CHECKS: readonly VerifyCheck[] = [
  fileCheck,
  walCheck,
  sqliteCheck,
  schemaCheck,
  ...CONTENT_CHECKS,
];

function integrityFinding(count: number, detail: string): VerifyFinding {
  return finding(
    'sqlite',
    'error',
    'integrity',
    `SQLite's integrity check found ${count} problem(s): ${detail}`,
    {
      hint: "'tidemark verify --repair' rebuilds the database from every row that can still be read.",
    },
  );
}

async function runCheck(check: VerifyCheck, context: VerifyContext): Promise<VerifyFinding[]> {
  try {
    return await check.run(context);
  } catch (error) {
    const code = sqliteCode(error);
    return [
      finding(
        check.name,
        'error',
        code?.startsWith('SQLITE_CORRUPT') ? 'integrity' : 'check_failed',
        `the ${check.name} check could not finish: ${code ?? (error as Error).message}`,
      ),
    ];
  }
}

interface Opened {
  db: Database.Database | undefined;
  /** A temp folder holding a copy of the database that was opened instead; removed after. */
  copy?: string;
  findings: VerifyFinding[];
}

/**
 * Opens the database read-only where it is. A WAL-mode database can only be read with its
 * `-shm` file, which SQLite creates beside it: in a folder that cannot be written (a read-only
 * mount, a backup) the first read fails with SQLITE_CANTOPEN although nothing is damaged. The
 * database and its WAL are then copied to a temp folder and the copy is verified; a database
 * that cannot be opened at all is left to the file and sqlite checks to explain.
 */
function openForVerify(path: string): Opened {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 10000');
  } catch {
    return { db: undefined, findings: [] };
  }
  try {
    db.prepare('SELECT count(*) FROM sqlite_master').get();
  } catch (error) {
    // Other failures are damage the checks report through this connection.
    if (sqliteCode(error) !== 'SQLITE_CANTOPEN') return { db, findings: [] };
    db.close();
    return openCopy(path);
  }
  return { db, findings: [] };
}

function openCopy(path: string): Opened {
  const wal = `${path}-wal`;
  const bytes = statSync(path).size + (existsSync(wal) ? statSync(wal).size : 0);
  const shm = `${path}-shm`;
  const unwritable = writeProblem(dirname(path));
  const why =
    unwritable === undefined
      ? `SQLite cannot create or open ${shm}, which it needs to read the database`
      : `the store folder cannot be written (${unwritable}), so SQLite cannot create ${shm}, ` +
        'which it needs to read the database';
  const temp = tmpdir();
  const free = freeBytes(temp);
  if (free !== undefined && free < bytes * 1.1) {
    return {
      db: undefined,
      findings: [
        finding('file', 'error', 'store_unopenable', `${why}, and ${temp} has no room for a copy`, {
          hint:
            'Nothing was found damaged. Make the store folder writable, or copy the folder to a ' +
            'writable disk and verify the copy (or point TMPDIR at a disk with room).',
        }),
      ],
    };
  }

  const copy = mkdtempSync(join(temp, 'tidemark-verify-'));
  try {
    const copied = join(copy, DB_FILE);
    copyFileSync(path, copied);
    if (existsSync(wal)) copyFileSync(wal, `${copied}-wal`);
    const db = new Database(copied, { readonly: true, fileMustExist: true });
    return {
      db,
      copy,
      findings: [
        finding('file', 'info', 'verified_copy', `${why}: verified a copy made in ${temp} instead`),
      ],
    };
  } catch (error) {
    rmSync(copy, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code ?? sqliteCode(error) ?? 'error';
    return {
      db: undefined,
      findings: [
        finding('file', 'error', 'store_unopenable', `${why}, and copying it failed (${code})`, {
          hint:
            'Nothing was found damaged. Make the store folder writable, or copy the folder to a ' +
            'writable disk and verify the copy.',
        }),
      ],
    };
  }
}

function writeProblem(folder: string): string | undefined {
  try {
    accessSync(folder, constants.W_OK);
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? 'error';
  }
}

function freeBytes(folder: string): number | undefined {
  try {
    const stats = statfsSync(folder);
    return stats.bavail * stats.bsize;
  } catch {
    return undefined;
  }
}

interface DbHeader {
  pageSize: number;
  fileSize: number;
  headerPages: number;
  /** SQLite trusts the page count only when the change counter matches version-valid-for. */
  headerPagesValid: boolean;
}

function readHeader(path: string): DbHeader | undefined {
  if (!existsSync(path)) return undefined;
  const fd = openSync(path, 'r');
  try {
    const fileSize = fstatSync(fd).size;
    const header = Buffer.alloc(100);
    const read = readSync(fd, header, 0, 100, 0);
    if (read < 100 || header.toString('latin1', 0, 16) !== 'SQLite format 3\u0000') {
      return undefined;
    }
    const raw = header.readUInt16BE(16);
    return {
      pageSize: raw === 1 ? 65536 : raw,
      fileSize,
      headerPages: header.readUInt32BE(28),
      headerPagesValid: header.readUInt32BE(24) === header.readUInt32BE(92),
    };
  } finally {
    closeSync(fd);
  }
}

function safely<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}
