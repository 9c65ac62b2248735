import { existsSync, mkdtempSync, statSync, truncateSync } from 'node:fs';
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
    const report = parseEnvelope<VerifyData>(found.stdout).data;
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
