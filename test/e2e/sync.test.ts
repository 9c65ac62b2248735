import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  encodeField,
  getRun,
  initRun,
  openReadOnly,
  readSeries,
  toWireFloat,
} from '@tidemark/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvelope, type RunningServer, runCli, startServer } from '../cli-harness.js';

const temp = (prefix: string): string => mkdtempSync(join(tmpdir(), prefix));

interface SyncData {
  opsSent: number;
  opsApplied: number;
  chunksSent: number;
  bytesSent: number;
}

describe('a run recorded offline, synced to a real server process', () => {
  let server: RunningServer;
  const storeDir = join(temp('tidemark-e2e-'), '.tidemark');
  let runId = '';
  const values: number[] = [];

  beforeAll(async () => {
    server = await startServer(temp('tidemark-server-'));

    const run = await initRun({
      project: 'team/mnist',
      name: 'e2e',
      tags: ['e2e'],
      dir: storeDir,
      handleExit: false,
    });
    run.set('parameters', {
      lr: 0.001,
      batch: 64,
      optimizer: { name: 'adam' },
      huge: 2n ** 60n + 1n,
    });
    for (let i = 0; i < 100; i++) {
      const special = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0];
      const value = i < special.length ? (special[i] as number) : Math.sin(i) / 3;
      values.push(value);
      run.log('metrics/loss', value, { step: i });
    }
    const artifact = join(temp('tidemark-artifact-'), 'model.bin');
    writeFileSync(artifact, randomFillSync(Buffer.alloc(5 * 1024 * 1024)));
    await run.upload('model/first', artifact);
    await run.upload('model/second', artifact);
    await run.stop();
    runId = run.id;
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('syncs everything once, and a second sync sends nothing', async () => {
    const env = { TIDEMARK_API_TOKEN: server.token };
    const first = await runCli(['sync', '--dir', storeDir, '--remote', server.url, '--json'], env);
    expect(first.code, first.stderr).toBe(0);
    const report = parseEnvelope<SyncData>(first.stdout).data;
    expect(report.opsApplied).toBeGreaterThan(100);
    expect(report.chunksSent).toBeGreaterThan(1);
    // The artifact was logged twice: its 5 MiB travel once, plus small manifests.
    expect(report.bytesSent).toBeGreaterThanOrEqual(5 * 1024 * 1024);
    expect(report.bytesSent).toBeLessThan(5.5 * 1024 * 1024);

    const second = await runCli(['sync', '--dir', storeDir, '--remote', server.url, '--json'], env);
    expect(second.code, second.stderr).toBe(0);
    const again = parseEnvelope<SyncData>(second.stdout).data;
    expect(again.opsSent).toBe(0);
    expect(again.chunksSent).toBe(0);
    expect(again.bytesSent).toBe(0);
  });

  it('leaves the server holding exactly the values recorded locally', async () => {
    const headers = { authorization: `Bearer ${server.token}` };
    const remote = (await (
      await fetch(`${server.url}/api/v1/runs/${runId}`, { headers })
    ).json()) as {
      name: string;
      tags: string[];
      fields: Array<{ path: string; type: string; value: unknown }>;
      files: Array<{ path: string; manifest: string }>;
    };
    const series = (await (
      await fetch(
        `${server.url}/api/v1/runs/${runId}/series?path=${encodeURIComponent('metrics/loss')}`,
        { headers },
      )
    ).json()) as { points: Array<[number, number, unknown]> };

    const db = openReadOnly(storeDir);
    const local = getRun(db, runId);
    const localPoints = readSeries(db, runId, 'metrics/loss');
    db.close();

    expect(remote.name).toBe('e2e');
    expect(remote.tags).toEqual(['e2e']);
    expect(series.points.map(([step, ts, value]) => [step, ts, value])).toEqual(
      localPoints.map((p) => [p.step, p.ts, toWireFloat(p.value as number)]),
    );
    expect(series.points.map((p) => p[2])).toEqual(values.map(toWireFloat));
    const remoteFields = new Map(remote.fields.map((f) => [f.path, f]));
    expect(remoteFields.get('parameters/huge')).toMatchObject({ type: 'int' });
    expect(String((remoteFields.get('parameters/huge') as { value: unknown }).value)).toBe(
      '1152921504606846977',
    );
    const localFields = local.fields.map((f) => [
      f.path,
      f.type,
      encodeField(f.value, f.path).text,
    ]);
    expect(remote.fields.map((f) => [f.path, f.type, f.value]).sort()).toEqual(localFields.sort());
    expect(remote.files.map((f) => f.manifest)).toEqual(local.files.map((f) => f.manifest));
  });

  it('keeps one copy of an artifact logged twice on the server, byte for byte', async () => {
    const headers = { authorization: `Bearer ${server.token}` };
    const db = openReadOnly(storeDir);
    const manifest = getRun(db, runId).files[0]?.manifest as string;
    db.close();

    const stored = readdirSync(join(server.dataDir, 'chunks'), { recursive: true }).filter((f) =>
      /[0-9a-f]{32}-\d+$/.test(String(f)),
    );
    const localObjects = readdirSync(join(storeDir, 'objects'), { recursive: true }).filter((f) =>
      /[0-9a-f]{32}-\d+$/.test(String(f)),
    );
    expect(stored.length).toBe(localObjects.length);

    const a = Buffer.from(
      await (
        await fetch(`${server.url}/api/v1/runs/${runId}/files/model/first`, { headers })
      ).arrayBuffer(),
    );
    const b = Buffer.from(
      await (
        await fetch(`${server.url}/api/v1/runs/${runId}/files/model/second`, { headers })
      ).arrayBuffer(),
    );
    expect(a.length).toBe(5 * 1024 * 1024);
    expect(a.equals(b)).toBe(true);
    expect(manifest).toMatch(/^[0-9a-f]{32}-\d+$/);
  });

  it('refuses a wrong token with a clear message and exit code 5', async () => {
    const result = await runCli(['sync', '--dir', storeDir, '--remote', server.url], {
      TIDEMARK_API_TOKEN: 'tdm_wrong',
    });
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(/^error: .*(token|auth)/im);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('keeps everything local and says it will retry when the server is unreachable', async () => {
    const dir = join(temp('tidemark-offline-'), '.tidemark');
    const run = await initRun({ project: 'p', dir, captureContext: false, handleExit: false });
    run.log('m', 1);
    await run.stop();
    const result = await runCli(['sync', '--dir', dir, '--remote', 'http://127.0.0.1:9'], {
      TIDEMARK_API_TOKEN: 'x',
    });
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/nothing was lost; run `tidemark sync` again later/);
    expect(result.stderr).toMatch(/tidemark daemon start/);
    const db = openReadOnly(dir);
    expect(readSeries(db, run.id, 'm')).toHaveLength(1);
    db.close();
  });
});

describe('the tidemark command on bad input', () => {
  const storeDir = join(temp('tidemark-cli-'), '.tidemark');

  beforeAll(async () => {
    const run = await initRun({
      project: 'p',
      dir: storeDir,
      captureContext: false,
      handleExit: false,
    });
    run.log('m', 1);
    await run.stop();
  });

  it('says an unknown run id is not found (exit 3)', async () => {
    const result = await runCli(['show', 'nosuchrun', '--dir', storeDir]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/no run nosuchrun/);
    expect(result.stderr).toMatch(/hint: /);
  });

  it('rejects malformed SQL with the reason (exit 2)', async () => {
    const result = await runCli(['query', 'SELEC * FROM runs_view', '--dir', storeDir, '--json']);
    expect(result.code).toBe(2);
    const envelope = parseEnvelope(result.stdout);
    expect(envelope.ok).toBe(false);
    expect(envelope.error?.code).toBe('invalid_sql');
  });

  it('refuses a write statement and leaves the store unchanged', async () => {
    const result = await runCli(['query', 'DELETE FROM runs', '--dir', storeDir]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/read-only/);
    const count = await runCli([
      'query',
      'SELECT count(*) AS n FROM runs_view',
      '--dir',
      storeDir,
      '--json',
    ]);
    expect(parseEnvelope<{ rows: number[][] }>(count.stdout).data.rows).toEqual([[1]]);
  });

  it('answers a query as a table, JSON and CSV', async () => {
    const table = await runCli([
      'query',
      'SELECT path, count FROM series_stats',
      '--dir',
      storeDir,
    ]);
    expect(table.stdout).toMatch(/path.*count/);
    const csv = await runCli([
      'query',
      'SELECT path, count FROM series_stats',
      '--dir',
      storeDir,
      '--csv',
    ]);
    expect(csv.stdout).toBe('path,count\nm,1\n');
    const json = await runCli([
      'query',
      'SELECT path, count FROM series_stats',
      '--dir',
      storeDir,
      '--json',
    ]);
    expect(parseEnvelope<{ columns: string[]; rows: unknown[][] }>(json.stdout)).toMatchObject({
      ok: true,
      command: 'query',
      data: { columns: ['path', 'count'], rows: [['m', 1]] },
    });
  });
});
