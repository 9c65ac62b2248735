import {
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initRun } from '@tidemark/core';
import { describe, expect, it } from 'vitest';
import { parseEnvelope, runCli } from '../../../test/cli-harness.js';

interface VerifyData {
  ok: boolean;
  findings: Array<{ severity: string; code: string; message: string }>;
  repaired: { keptAs: string; lostPoints: number } | null;
}

async function storeWithPoints(points: number): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), 'tidemark-verify-')), '.tidemark');
  const run = await initRun({
    project: 'p',
    name: 'r',
    dir,
    logMode: 'batched',
    captureContext: false,
    handleExit: false,
  });
  for (let i = 0; i < points; i++) run.log('metrics/loss', i / 3, { step: i });
  await run.stop();
  return dir;
}

describe('tidemark verify', () => {
  it('says a healthy store is fine, exit 0', async () => {
    const dir = await storeWithPoints(1000);
    const result = await runCli(['verify', '--dir', dir, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const data = parseEnvelope<VerifyData>(result.stdout).data;
    expect(data.ok).toBe(true);
    expect(data.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    const human = await runCli(['verify', '--dir', dir]);
    expect(human.stdout).toMatch(/ok: no problem found/);
  });

  it('reports a cut store with exit 6, and --repair rebuilds it from what can be read', async () => {
    const dir = await storeWithPoints(60_000);
    const db = join(dir, 'store.db');
    truncateSync(db, Math.floor(statSync(db).size * 0.8));

    const found = await runCli(['verify', '--dir', dir, '--json']);
    expect(found.code).toBe(6);
    const envelope = parseEnvelope<VerifyData>(found.stdout);
    expect(envelope).toMatchObject({ ok: false, command: 'verify' });
    expect(envelope.error).toMatchObject({ code: 'verify_failed', hint: /--repair/ });
    const report = envelope.data;
    expect(report.ok).toBe(false);
    expect(report.findings.map((f) => f.code)).toContain('db_truncated');
    const runs = await runCli(['runs', '--dir', dir, '--json']);
    expect(runs.code).toBe(6);
    expect(parseEnvelope(runs.stdout).error?.code).toBe('store_corrupt');

    const repaired = await runCli(['verify', '--repair', '--dir', dir]);
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.stdout).toMatch(/the damaged database is kept as .*store\.db\.damaged-/);
    expect(repaired.stdout).toMatch(/points lost: at least \d+/);
    const after = await runCli(['verify', '--dir', dir, '--json']);
    expect(parseEnvelope<VerifyData>(after.stdout).data.ok).toBe(true);
    const count = await runCli(['query', 'SELECT count FROM series_stats', '--dir', dir, '--json']);
    const kept = parseEnvelope<{ rows: number[][] }>(count.stdout).data.rows[0]?.[0] as number;
    expect(kept).toBeGreaterThan(30_000);
    expect(kept).toBeLessThan(60_000);
  });

  it('with --repair leaves a healthy database alone and says the object damage is not repaired', async () => {
    const dir = await storeWithPoints(10);
    const run = await initRun({ project: 'p', dir, captureContext: false, handleExit: false });
    const source = join(mkdtempSync(join(tmpdir(), 'tidemark-verify-')), 'model.bin');
    writeFileSync(source, 'weights');
    await run.upload('model', source);
    await run.stop();
    const objects = join(dir, 'objects');
    for (const name of readdirSync(objects, { recursive: true }) as string[]) {
      if (/^[0-9a-f]{2}\/[0-9a-f]{32}-7$/.test(name)) rmSync(join(objects, name));
    }

    const json = await runCli(['verify', '--repair', '--dir', dir, '--json']);
    const human = await runCli(['verify', '--repair', '--dir', dir]);

    expect(json.code).toBe(6);
    const envelope = parseEnvelope<VerifyData>(json.stdout);
    expect(envelope.ok).toBe(false);
    expect(envelope.error?.hint).toMatch(/get RUN PATH --remote URL.*logged again/);
    expect(envelope.data.repaired).toBeNull();
    expect(envelope.data.findings.map((f) => f.code)).toContain('object_missing');
    expect(human.code).toBe(6);
    expect(human.stdout).toMatch(/not repaired: --repair rebuilds a damaged database only/);
    expect(human.stdout).not.toMatch(/^repaired/m);
    expect(readdirSync(dir).filter((name) => name.includes('damaged'))).toEqual([]);
  });

  it('verifies a copy when SQLite cannot create the -shm file, and never calls the store damaged', async () => {
    const dir = await storeWithPoints(100);
    // A link is what SQLite refuses to open as -shm (O_NOFOLLOW): the same failure as a
    // read-only folder, without needing a mount.
    symlinkSync(join(dir, 'nowhere', 'shm'), join(dir, 'store.db-shm'));

    const result = await runCli(['verify', '--dir', dir, '--json']);

    expect(result.code, result.stdout).toBe(0);
    const data = parseEnvelope<VerifyData>(result.stdout).data;
    expect(data.findings.map((f) => f.code)).toContain('verified_copy');
    expect(data.findings.filter((f) => f.severity !== 'info')).toEqual([]);
  });

  it('reports a missing store with exit 6 and creates nothing', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tidemark-verify-')), 'absent');
    const result = await runCli(['verify', '--dir', dir, '--json']);
    expect(result.code).toBe(6);
    expect(parseEnvelope<VerifyData>(result.stdout).data.findings.map((f) => f.code)).toEqual([
      'store_missing',
    ]);
    expect(existsSync(dir)).toBe(false);
  });
});
