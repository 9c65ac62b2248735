import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Digest, getRun, initRun, objectPath, openReadOnly } from '@tidemark/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvelope, type RunningServer, runCli, startServer } from '../cli-harness.js';

const temp = (prefix: string): string => mkdtempSync(join(tmpdir(), prefix));

interface StatusData {
  running: boolean;
  pid: number | null;
  state: {
    phase: string;
    lastSuccessAt: number | null;
    lastError: { code: string; hint: string | null } | null;
  } | null;
  pending: {
    ops: number;
    runs: Array<{ runId: string; ops: number; points: number }>;
    quarantined: Array<{ runId: string; reason: string }>;
  } | null;
}

const started = new Set<number>();

/** Ends, by pid, any daemon a test started and did not stop. */
afterEach(() => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone: the test stopped it.
    }
  }
  started.clear();
});

async function recordPoints(dir: string, project: string, count: number): Promise<string> {
  const run = await initRun({ project, dir, captureContext: false, handleExit: false });
  for (let step = 0; step < count; step++) run.log('m', step, { step });
  await run.stop();
  return run.id;
}

async function status(dir: string): Promise<StatusData> {
  const result = await runCli(['daemon', 'status', '--dir', dir, '--json']);
  expect(result.code, result.stderr).toBe(0);
  return parseEnvelope<StatusData>(result.stdout).data;
}

/** Polls `daemon status` until `check` holds; the daemon announces nothing else to a shell. */
async function statusUntil(dir: string, check: (s: StatusData) => boolean): Promise<StatusData> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const current = await status(dir);
    if (check(current)) return current;
    if (Date.now() > deadline) throw new Error(`status never matched: ${JSON.stringify(current)}`);
  }
}

describe('tidemark daemon', () => {
  let server: RunningServer;
  let auth: Record<string, string> = {};

  beforeAll(async () => {
    server = await startServer(temp('tidemark-server-'));
    auth = { TIDEMARK_API_TOKEN: server.token };
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('starts detached, refuses a second instance, syncs new runs soon, reports status, stops', async () => {
    const dir = join(temp('tidemark-daemon-'), '.tidemark');
    await recordPoints(dir, 'team/a', 5);
    const env = { TIDEMARK_API_TOKEN: server.token, TIDEMARK_REMOTE: server.url };

    const start = await runCli(
      ['daemon', 'start', '--dir', dir, '--debounce-ms', '100', '--json'],
      env,
    );
    expect(start.code, start.stderr).toBe(0);
    const { pid } = parseEnvelope<{ pid: number }>(start.stdout).data;
    started.add(pid);

    const again = await runCli(['daemon', 'start', '--dir', dir], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already runs/);

    await statusUntil(dir, (s) => s.pending?.ops === 0 && s.state?.lastSuccessAt !== null);
    const later = await recordPoints(dir, 'team/a', 7);
    const synced = await statusUntil(dir, (s) => s.pending?.ops === 0 && s.state?.phase === 'idle');
    expect(synced).toMatchObject({ running: true, pid, state: { lastError: null } });
    const remote = await fetch(`${server.url}/api/v1/runs/${later}/series?path=m`, {
      headers: { authorization: `Bearer ${server.token}` },
    });
    expect(((await remote.json()) as { points: unknown[] }).points).toHaveLength(7);

    const stop = await runCli(['daemon', 'stop', '--dir', dir]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toMatch(`pid ${pid}`);
    expect(await status(dir)).toMatchObject({ running: false, pid: null });
    const log = readFileSync(join(dir, 'daemon.log'), 'utf8');
    expect(log).toMatch(/"event":"daemon_started"/);
    expect(log).toMatch(/"event":"daemon_stopped"/);
    expect(log).not.toContain(server.token);
  });

  it('refuses a wrong setting at start with the setting named, leaving nothing running', async () => {
    const dir = join(temp('tidemark-daemon-'), '.tidemark');
    await recordPoints(dir, 'team/a', 1);
    const env = { TIDEMARK_API_TOKEN: server.token, TIDEMARK_REMOTE: server.url };

    const rate = await runCli(['daemon', 'start', '--dir', dir, '--max-rate', '2XB/s'], env);
    expect(rate.code).toBe(2);
    expect(rate.stderr).toMatch(/--max-rate: '2XB\/s' is not a rate/);

    writeFileSync(join(dir, 'daemon.json'), JSON.stringify({ shedule: '*/5 * * * *' }));
    const typo = await runCli(['daemon', 'run', '--dir', dir], env);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/shedule/);
    expect(typo.stderr).toMatch(/Did you mean 'schedule'/);

    writeFileSync(join(dir, 'daemon.json'), '{}');
    const token = await runCli(['daemon', 'start', '--dir', dir], {
      TIDEMARK_REMOTE: server.url,
      TIDEMARK_API_TOKEN: '',
    });
    expect(token.code).toBe(2);
    expect(token.stderr).toMatch(/no API token/);
    expect((await status(dir)).running).toBe(false);
  });

  it('refuses at start a token the server rejects, leaving nothing running', async () => {
    const dir = join(temp('tidemark-daemon-'), '.tidemark');
    await recordPoints(dir, 'team/a', 3);

    const start = await runCli(['daemon', 'start', '--dir', dir, '--remote', server.url], {
      TIDEMARK_API_TOKEN: 'tdm_000000000000_wrong',
    });
    expect(start.code).toBe(5);
    expect(start.stderr).toMatch(/hint: .*TIDEMARK_API_TOKEN/);
    expect((await status(dir)).running).toBe(false);
  });

  it('reports a token revoked while it runs once, as the last error with a hint, and keeps the data', async () => {
    const dir = join(temp('tidemark-daemon-'), '.tidemark');
    await recordPoints(dir, 'team/a', 3);
    const created = await runCli(['token', 'create', '--data', server.dataDir, '--json']);
    const token = parseEnvelope<{ id: string; token: string }>(created.stdout).data;

    const start = await runCli(
      ['daemon', 'start', '--dir', dir, '--remote', server.url, '--json'],
      { TIDEMARK_API_TOKEN: token.token },
    );
    expect(start.code, start.stderr).toBe(0);
    started.add(parseEnvelope<{ pid: number }>(start.stdout).data.pid);
    await statusUntil(
      dir,
      (s) => s.state?.lastSuccessAt !== null && s.state?.lastSuccessAt !== undefined,
    );

    expect((await runCli(['token', 'revoke', token.id, '--data', server.dataDir])).code).toBe(0);
    await recordPoints(dir, 'team/a', 3);

    const failing = await statusUntil(
      dir,
      (s) => s.state?.lastError !== null && s.state?.lastError !== undefined,
    );
    expect(failing.state?.lastError).toMatchObject({
      code: 'auth_failed',
      hint: expect.stringMatching(/TIDEMARK_API_TOKEN/),
    });
    expect(failing.pending?.ops).toBeGreaterThan(0);
    const human = await runCli(['daemon', 'status', '--dir', dir]);
    expect(human.stdout).toMatch(/last error: {2}auth_failed/);
    expect(human.stdout).toMatch(/next try/);
    const log = readFileSync(join(dir, 'daemon.log'), 'utf8');
    expect(log.match(/sync_errors_started/g)).toHaveLength(1);

    expect((await runCli(['daemon', 'stop', '--dir', dir])).code).toBe(0);
  });

  it('stops with exit 5 for a token without access to a project, quarantining nothing; the right token then sends it', async () => {
    const dir = join(temp('tidemark-daemon-'), '.tidemark');
    const allowed = await recordPoints(dir, 'other', 4);
    const denied = await recordPoints(dir, 'team/a', 4);
    const limited = await runCli([
      'token',
      'create',
      '--data',
      server.dataDir,
      '--project',
      'other',
      '--json',
    ]);
    const token = parseEnvelope<{ token: string }>(limited.stdout).data.token;

    const refused = await runCli(['sync', '--dir', dir, '--remote', server.url], {
      TIDEMARK_API_TOKEN: token,
    });

    expect(refused.code, refused.stderr).toBe(5);
    expect(refused.stderr).toMatch(/team\/a/);
    expect(refused.stderr).toMatch(/--only/);
    const view = await runCli(['daemon', 'status', '--dir', dir, '--remote', server.url, '--json']);
    expect(parseEnvelope<StatusData>(view.stdout).data.pending?.quarantined).toEqual([]);

    const fixed = await runCli(['sync', '--dir', dir, '--remote', server.url], auth);

    expect(fixed.code, fixed.stderr).toBe(0);
    for (const runId of [allowed, denied]) {
      const remote = await fetch(`${server.url}/api/v1/runs/${runId}/series?path=m`, {
        headers: { authorization: `Bearer ${server.token}` },
      });
      expect(((await remote.json()) as { points: unknown[] }).points).toHaveLength(4);
    }
  });

  it('keeps reporting a quarantined run with exit 7 until --retry-run releases it and sends it whole', async () => {
    const dir = join(temp('tidemark-daemon-'), '.tidemark');
    const kept = await recordPoints(dir, 'team/a', 3);
    const run = await initRun({ project: 'team/a', dir, captureContext: false, handleExit: false });
    run.log('m', 1, { step: 0 });
    const artifact = join(temp('tidemark-artifact-'), 'model.bin');
    writeFileSync(artifact, 'weights');
    await run.upload('model', artifact);
    await run.stop();
    const db = openReadOnly(dir);
    const manifest = getRun(db, run.id).files[0]?.manifest as Digest;
    db.close();
    const object = objectPath(join(dir, 'objects'), manifest);
    const saved = join(temp('tidemark-saved-'), 'manifest');
    copyFileSync(object, saved);
    rmSync(object, { force: true });

    const first = await runCli(['sync', '--dir', dir, '--remote', server.url], auth);
    const again = await runCli(['sync', '--dir', dir, '--remote', server.url], auth);

    expect(first.code, first.stderr).toBe(7);
    expect(first.stdout).toMatch(`quarantined run ${run.id}: object_missing`);
    expect(first.stdout).toMatch(`--retry-run ${run.id}`);
    expect(again.code, again.stderr).toBe(7);
    expect(again.stdout).toMatch(`still quarantined run ${run.id}`);
    const status = await runCli(['daemon', 'status', '--dir', dir, '--remote', server.url]);
    expect(status.stdout).toMatch(/--retry-quarantined/);
    const series = await fetch(`${server.url}/api/v1/runs/${kept}/series?path=m`, {
      headers: { authorization: `Bearer ${server.token}` },
    });
    expect(((await series.json()) as { points: unknown[] }).points).toHaveLength(3);

    copyFileSync(saved, object);
    const released = await runCli(
      ['sync', '--dir', dir, '--remote', server.url, '--retry-run', run.id],
      auth,
    );

    expect(released.code, released.stderr).toBe(0);
    expect(released.stdout).toMatch(`released run ${run.id}`);
    const remote = await fetch(`${server.url}/api/v1/runs/${run.id}`, {
      headers: { authorization: `Bearer ${server.token}` },
    });
    expect(((await remote.json()) as { files: unknown[] }).files).toHaveLength(1);
    const view = await runCli(['daemon', 'status', '--dir', dir, '--remote', server.url, '--json']);
    expect(parseEnvelope<StatusData>(view.stdout).data.pending?.quarantined).toEqual([]);
  });
});
