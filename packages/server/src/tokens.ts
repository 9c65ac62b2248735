import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fsyncFolder, isProjectName, NotFoundError, ValidationError } from '@tidemark/core';
import type Database from 'better-sqlite3';
import { openServerDatabase } from './server-schema.js';

/** The file a fresh data folder's first token is written to, readable by its owner only. */
export const INITIAL_TOKEN_FILE = 'initial-token';

/** Which projects a token may read and write: all of them, or the ones listed. */
export type TokenProjects = '*' | readonly string[];

/** A token as listed: everything but its secret, which the server never keeps. */
export interface TokenInfo {
  id: string;
  projects: TokenProjects;
  label: string | null;
  createdAt: number;
  revokedAt: number | null;
}

/** A token just created: `token` is the bearer string, shown this once and never again. */
export interface CreatedToken extends TokenInfo {
  token: string;
}

export interface CreateTokenOptions {
  projects: TokenProjects;
  label?: string;
}

/**
 * Bearer strings look like `tdm_<12 hex id>_<64 hex secret>`. The id finds the row; only a
 * SHA-256 of the secret is stored, so a copy of `server.db` grants no access.
 */
const TOKEN_PATTERN = /^tdm_([0-9a-f]{12})_([0-9a-f]{64})$/;

/**
 * Creates a token in the server data folder `dataDir`.
 *
 * @example
 * const { token } = createToken('/srv/tidemark', { projects: ['team/mnist'], label: 'ci' });
 */
export function createToken(dataDir: string, options: CreateTokenOptions): CreatedToken {
  const db = openServerDatabase(dataDir);
  try {
    return insertToken(db, options, Date.now());
  } finally {
    db.close();
  }
}

/** Every token of the data folder, revoked ones included, oldest first. */
export function listTokens(dataDir: string): TokenInfo[] {
  const db = openServerDatabase(dataDir);
  try {
    const rows = db.prepare('SELECT * FROM tokens ORDER BY created_at, id').all() as TokenRow[];
    return rows.map(toInfo);
  } finally {
    db.close();
  }
}

/** Revokes a token by id; it stops working at the next request. Revoking twice is harmless. */
export function revokeToken(dataDir: string, id: string): TokenInfo {
  const db = openServerDatabase(dataDir);
  try {
    db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(
      Date.now(),
      id,
    );
    const row = db.prepare('SELECT * FROM tokens WHERE id = ?').get(id) as TokenRow | undefined;
    if (row === undefined) {
      throw new NotFoundError('token_not_found', `no token ${id} in ${dataDir}`, {
        hint: "List token ids with 'tidemark token list'.",
      });
    }
    return toInfo(row);
  } finally {
    db.close();
  }
}

/**
 * Gives a data folder that has never had a token one with access to every project, written to
 * `<dataDir>/initial-token` (mode 0600) so the operator can read it once. Call at server start;
 * on a folder that has or had tokens it changes nothing and answers `created: false`.
 */
export function ensureInitialToken(dataDir: string): { created: boolean; path: string } {
  const path = join(dataDir, INITIAL_TOKEN_FILE);
  const db = openServerDatabase(dataDir);
  try {
    const create = db.transaction((): boolean => {
      const row = db.prepare('SELECT count(*) AS n FROM tokens').get() as { n: number };
      if (row.n > 0) return false;
      const created = insertToken(db, { projects: '*', label: 'initial' }, Date.now());

      // Written inside the transaction: if the file cannot be written, no token nobody knows exists.
      writeSecretFile(path, `${created.token}\n`);
      return true;
    });
    return { created: create.immediate(), path };
  } finally {
    db.close();
  }
}

/** The token a bearer string names, if it exists, is not revoked and its secret matches. */
export function verifyToken(
  db: Database.Database,
  presented: string,
): { id: string; projects: TokenProjects } | undefined {
  const match = TOKEN_PATTERN.exec(presented);
  if (match === null) return undefined;
  const [, id, secret] = match as unknown as [string, string, string];

  const row = db.prepare('SELECT * FROM tokens WHERE id = ?').get(id) as TokenRow | undefined;
  if (row === undefined || row.revoked_at !== null) return undefined;

  const expected = Buffer.from(row.secret_hash, 'hex');
  const actual = hashSecret(secret);
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return undefined;
  return { id: row.id, projects: parseProjects(row.projects) };
}

function insertToken(
  db: Database.Database,
  options: CreateTokenOptions,
  now: number,
): CreatedToken {
  const projects = validateProjects(options.projects);
  const label = options.label ?? null;
  if (label !== null && (typeof label !== 'string' || label.length > 200)) {
    throw new ValidationError(
      'invalid_option',
      'createToken: label must be a string of at most 200 characters',
    );
  }

  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('hex');
  db.prepare(
    'INSERT INTO tokens (id, secret_hash, projects, label, created_at) VALUES (?, ?, ?, ?, ?)',
  ).run(id, hashSecret(secret).toString('hex'), formatProjects(projects), label, now);
  return { id, token: `tdm_${id}_${secret}`, projects, label, createdAt: now, revokedAt: null };
}

function validateProjects(projects: unknown): TokenProjects {
  if (projects === '*') return '*';
  if (!Array.isArray(projects) || projects.length === 0) {
    throw new ValidationError(
      'invalid_option',
      "createToken: projects must be '*' or a non-empty list",
      {
        hint: "Pass projects: '*' for every project, or projects: ['team/mnist'].",
      },
    );
  }
  for (const project of projects) {
    if (!isProjectName(project)) {
      throw new ValidationError(
        'invalid_option',
        `createToken: '${String(project)}' is not a project name`,
        {
          hint: "Project names look like 'name' or 'workspace/name' (letters, digits, '.', '_', '-').",
        },
      );
    }
  }
  return [...new Set(projects as string[])].sort();
}

interface TokenRow {
  id: string;
  secret_hash: string;
  projects: string;
  label: string | null;
  created_at: number;
  revoked_at: number | null;
}

function toInfo(row: TokenRow): TokenInfo {
  return {
    id: row.id,
    projects: parseProjects(row.projects),
    label: row.label,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}

function formatProjects(projects: TokenProjects): string {
  return projects === '*' ? '*' : JSON.stringify(projects);
}

function parseProjects(text: string): TokenProjects {
  return text === '*' ? '*' : (JSON.parse(text) as string[]);
}

function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

function writeSecretFile(path: string, text: string): void {
  // A leftover file may have looser permissions; creating it anew applies 0600.
  rmSync(path, { force: true });
  const fd = openSync(path, 'wx', 0o600);
  try {
    const bytes = Buffer.from(text, 'utf8');
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  fsyncFolder(dirname(path));
}
