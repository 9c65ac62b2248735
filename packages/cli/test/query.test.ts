import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initRun } from '@tidemark/core';
import { describe, expect, it } from 'vitest';
import { parseEnvelope, runCli } from '../../../test/cli-harness.js';

/** The store's bytes: the database and its WAL. A reader may leave an empty WAL and an index. */
function fingerprint(dir: string): string {
  const hash = createHash('sha256');
  for (const name of readdirSync(dir).sort()) {
    if (name.endsWith('-shm') || name === 'objects') continue;
    const bytes = readFileSync(join(dir, name));
    if (name.endsWith('-wal') && bytes.length === 0) continue;
    hash.update(name);
    hash.update(bytes);
  }
  return hash.digest('hex');
}

describe('tidemark query', () => {
  it('can never change the store: writes, ATTACH, pragma writes, VACUUM INTO and two statements are refused', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'tidemark-outside-'));
    const dir = join(mkdtempSync(join(tmpdir(), 'tidemark-cli-')), '.tidemark');
    const run = await initRun({ project: 'p', dir, captureContext: false, handleExit: false });
    run.set('lr', 0.1);
    run.log('m', 1);
    await run.stop();
    const before = fingerprint(dir);

    const attacks = [
      'DELETE FROM runs',
      "UPDATE fields SET value = '9'",
      "INSERT INTO tags (run_id, tag) VALUES ('x', 'y')",
      'DROP TABLE points',
      'CREATE TABLE evil (x)',
      'CREATE TEMP TABLE evil (x)',
      'WITH x AS (SELECT 1) DELETE FROM runs',
      "REPLACE INTO meta (key, value) VALUES ('format', 'x')",
      `ATTACH DATABASE '${join(outside, 'new.db')}' AS evil`,
      `ATTACH DATABASE '${join(dir, 'store.db')}' AS again`,
      'DETACH DATABASE main',
      'PRAGMA user_version = 7',
      'PRAGMA journal_mode = DELETE',
      'PRAGMA query_only = OFF',
      'PRAGMA writable_schema = ON',
      'PRAGMA wal_checkpoint(TRUNCATE)',
      'PRAGMA locking_mode = EXCLUSIVE',
      'PRAGMA optimize',
      'VACUUM',
      `VACUUM INTO '${join(outside, 'copy.db')}'`,
      'REINDEX',
      'ANALYZE',
      'BEGIN IMMEDIATE',
      'SAVEPOINT s',
      "SELECT load_extension('/tmp/evil')",
      'SELECT 1; DROP TABLE runs',
      '/* hidden */ DELETE FROM runs',
      '-- note\nPRAGMA user_version = 3',
    ];
    for (const sql of attacks) {
      const result = await runCli(['query', '--dir', dir, '--json', '--', sql]);
      expect(result.code, sql).not.toBe(0);
      const envelope = parseEnvelope(result.stdout);
      expect(envelope.ok, sql).toBe(false);
    }

    expect(fingerprint(dir)).toBe(before);
    expect(readdirSync(outside)).toEqual([]);
    const ok = await runCli(['query', 'PRAGMA table_info(runs_view)', '--dir', dir, '--json']);
    expect(ok.code).toBe(0);
    const count = await runCli([
      'query',
      'SELECT count(*) FROM fields_view',
      '--dir',
      dir,
      '--json',
    ]);
    expect(parseEnvelope<{ rows: number[][] }>(count.stdout).data.rows).toEqual([[1]]);
    expect(existsSync(join(dir, 'store.db'))).toBe(true);
  });
});
