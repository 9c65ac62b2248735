import type Database from 'better-sqlite3';

export type FindingSeverity = 'error' | 'warning' | 'info';

/** One thing `tidemark verify` found. `code` is stable; `message` carries ids and offsets. */
export interface VerifyFinding {
  check: string;
  severity: FindingSeverity;
  code: string;
  message: string;
  hint?: string;
}

/** What a check may look at. Checks only read: verify never changes a store. */
export interface VerifyContext {
  dir: string;
  dbPath: string;
  /** A read-only connection, or undefined when the database cannot be opened at all. */
  db: Database.Database | undefined;
  /** The schema is the one this version writes, so every table and column checks expect exist. */
  schemaCurrent: boolean;
  now: number;
  staleAfterMs: number;
}

/**
 * One check of a store. `needs: 'database'` skips it when the database cannot be opened or is
 * not at the current schema. More checks join by being added to the list passed to
 * `verifyStore` (the object check of the artifact store is one).
 */
export interface VerifyCheck {
  name: string;
  needs?: 'database';
  run(context: VerifyContext): VerifyFinding[] | Promise<VerifyFinding[]>;
}

export function finding(
  check: string,
  severity: FindingSeverity,
  code: string,
  message: string,
  extra: { hint?: string } = {},
): VerifyFinding {
  return { check, severity, code, message, ...extra };
}
