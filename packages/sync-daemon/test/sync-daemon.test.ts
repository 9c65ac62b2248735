import { join } from 'node:path';
import { initRun, openReadOnly, type Seq, Store } from '@tidemark/core';
import {
  FakeRemote,
  loadDaemonConfig,
  RemoteError,
  readDaemonState,
  readPending,
  SyncDaemon,
} from '@tidemark/sync-daemon';
import { afterEach, describe, expect, it } from 'vitest';
import { logPoints, recordRun, tempDir } from './helpers.js';
import { waitFor } from './support/processes.js';
import { recordingLogger } from './support/recording-logger.js';

const daemons: SyncDaemon[] = [];
afterEach(async () => {
  for (const daemon of daemons.splice(0)) await daemon.stop();
});

async function startDaemon(
  dir: string,
  remote: FakeRemote,
  settings: Record<string, unknown> = {},
) {
  const logger = recordingLogger();
  const config = loadDaemonConfig({
    storeDir: dir,
    env: { TIDEMARK_API_TOKEN: 'tdm_test' },
    flags: {
      remote: remote.url,
      debounceMs: 50,
      pollMs: 60_000,
      backoffBaseMs: 20,
      backoffMaxMs: 200,
      ...settings,
    },
  });
  const daemon = await SyncDaemon.start({ config, logger, remote });
  daemons.push(daemon);
  return { daemon, logger };
}

function confirmed(dir: string, remote: FakeRemote): { cursor: number; last: number } {
  const db = openReadOnly(dir);
  try {
    const cursor =
      (db.prepare('SELECT seq FROM sync_cursors WHERE remote = ?').pluck().get(remote.url) as
        | number
        | undefined) ?? 0;
    const last = (db.prepare('SELECT max(seq) FROM journal').pluck().get() as number | null) ?? 0;
    return { cursor, last };
  } finally {
    db.close();
  }
}

const caughtUp = (dir: string, remote: FakeRemote) => () => {
  const { cursor, last } = confirmed(dir, remote);
  return cursor === last;
};

describe('SyncDaemon', () => {
  it('syncs what is there at start, then new entries soon after they land', async () => {
    const dir = join(tempDir(), '.tidemark');
    await recordRun(dir, 'p', (r) => logPoints(r, 'm', 5));
    const remote = new FakeRemote();
    const { logger } = await startDaemon(dir, remote);

    await waitFor(caughtUp(dir, remote), 10_000, 'the first pass');
    const before = remote.appliedCount;
    const second = await recordRun(dir, 'p', (r) => logPoints(r, 'm', 7));
    await waitFor(caughtUp(dir, remote), 10_000, 'a pass after the new entries');

    expect(remote.appliedCount).toBeGreaterThan(before);
    expect((await remote.getSeries(second.id, 'm')).points).toHaveLength(7);
    expect(new Set(remote.opsReceived).size).toBe(remote.opsReceived.length);
    // Woken by the change: the safety poll is a minute away.
    const reasons = logger.records
      .filter((r) => r.event === 'pass_start')
      .map((r) => r.fields.reason);
    expect(reasons[0]).toBe('start');
    expect(reasons.slice(1).every((reason) => reason === 'journal' || reason === 'more')).toBe(
      true,
    );
  });

  it('syncs a run still being written, pass after pass, before it ends', async () => {
    const dir = join(tempDir(), '.tidemark');
    const store = Store.open({ dir });
    const run = await initRun({ project: 'p', store, captureContext: false, handleExit: false });
    const remote = new FakeRemote();
    await startDaemon(dir, remote);

    for (let batch = 1; batch <= 5; batch++) {
      for (let i = 0; i < 10; i++) run.log('loss', i, { step: batch * 10 + i });
      await waitFor(
        async () => {
          const series = await remote.getSeries(run.id, 'loss').catch(() => undefined);
          return series?.points.length === batch * 10;
        },
        10_000,
        `batch ${batch} on the server`,
      );
      expect((await remote.getRun(run.id)).state).toBe('running');
    }

    await run.stop();
    await waitFor(
      async () => (await remote.getRun(run.id)).state === 'finished',
      10_000,
      'the end of the run',
    );
    await store.close();
  });

  it('backs off while the remote fails, says so in its state, and recovers by itself', async () => {
    const dir = join(tempDir(), '.tidemark');
    await recordRun(dir, 'p', (r) => logPoints(r, 'm', 3));
    const remote = new FakeRemote();
    remote.failNext(3, RemoteError.unreachable('POST /api/v1/ops', 'ECONNREFUSED'), {
      method: 'sendOps',
    });
    const { logger } = await startDaemon(dir, remote, { backoffBaseMs: 400, backoffMaxMs: 1_000 });

    await waitFor(() => readDaemonState(dir)?.phase === 'backing_off', 10_000, 'a failure');
    const failing = readDaemonState(dir);
    expect(failing).toMatchObject({ remote: remote.url, lastSuccessAt: null });
    expect(failing?.lastError).toMatchObject({
      code: 'unreachable',
      hint: expect.stringMatching(/retry/),
    });
    expect(failing?.nextAttemptAt).toBeGreaterThan(failing?.updatedAt ?? 0);

    await waitFor(caughtUp(dir, remote), 10_000, 'recovery');
    await waitFor(() => readDaemonState(dir)?.lastError === null, 10_000, 'the state to say so');
    expect(logger.events('warn')).toEqual(['sync_errors_started']);
    expect(logger.events('info')).toContain('sync_recovered');
    expect(readDaemonState(dir)).toMatchObject({
      phase: 'idle',
      lastSuccessAt: expect.any(Number),
    });
  });

  it('stops the pass on an auth failure and waits long, trying once', async () => {
    const dir = join(tempDir(), '.tidemark');
    await recordRun(dir, 'p', (r) => logPoints(r, 'm', 3));
    const remote = new FakeRemote();
    remote.failNext(1_000, RemoteError.authFailed('POST /api/v1/ops', 401), { method: 'sendOps' });
    const { logger } = await startDaemon(dir, remote, { authRetryMs: 3_600_000 });

    await waitFor(() => readDaemonState(dir)?.phase === 'backing_off', 10_000, 'the backoff');
    await recordRun(dir, 'p', (r) => logPoints(r, 'm', 3));
    const state = readDaemonState(dir);

    expect(remote.calls.sendOps).toBe(1);
    expect(state?.lastError).toMatchObject({
      code: 'auth_failed',
      hint: expect.stringMatching(/TIDEMARK_API_TOKEN/),
    });
    expect((state?.nextAttemptAt ?? 0) - (state?.updatedAt ?? 0)).toBe(3_600_000);
    expect(logger.events('warn')).toEqual(['sync_errors_started']);
  });

  it('runs passes on a cron schedule when it does not watch', async () => {
    const dir = join(tempDir(), '.tidemark');
    await recordRun(dir, 'p', (r) => logPoints(r, 'm', 2));
    const remote = new FakeRemote();
    await startDaemon(dir, remote, { schedule: '* * * * * *' });

    await waitFor(() => remote.calls.whoami >= 2, 10_000, 'two ticks with nothing new');

    expect(confirmed(dir, remote).cursor).toBe(confirmed(dir, remote).last);
  });

  it('with only, syncs that project and leaves the others pending', async () => {
    const dir = join(tempDir(), '.tidemark');
    const wanted = await recordRun(dir, 'team/a', (r) => logPoints(r, 'm', 3));
    const other = await recordRun(dir, 'team/b', (r) => logPoints(r, 'm', 3));
    const remote = new FakeRemote();
    await startDaemon(dir, remote, { only: 'team/a' });

    await waitFor(() => readDaemonState(dir)?.lastSuccessAt != null, 10_000, 'a pass');
    const db = openReadOnly(dir);
    const rest = readPending(db, remote.url);
    db.close();

    expect((await remote.getSeries(wanted.id, 'm')).points).toHaveLength(3);
    await expect(remote.getRun(other.id)).rejects.toMatchObject({ status: 404 });
    expect(rest.runs.map((run) => run.runId)).toEqual([other.id]);
    expect(readDaemonState(dir)).toMatchObject({ only: 'team/a', lastPass: { pending: 0 } });
  });

  it('lets status count what is pending per run and show quarantined runs', async () => {
    const dir = join(tempDir(), '.tidemark');
    const bad = await recordRun(dir, 'p', (r) => r.set('poison', 1));
    const remote = new FakeRemote();
    remote.refuseOps((op) => (op.kind === 'field.set' ? { code: 'invalid_value' } : undefined));
    const { daemon } = await startDaemon(dir, remote);
    await waitFor(caughtUp(dir, remote), 10_000, 'the first pass');
    await daemon.stop();

    const waiting = await recordRun(dir, 'p', (r) => logPoints(r, 'm', 4));
    const db = openReadOnly(dir);
    const pending = readPending(db, remote.url);
    db.close();

    expect(pending.runs).toEqual([
      {
        runId: waiting.id,
        project: 'p',
        ops: expect.any(Number),
        points: 4,
        bytes: expect.any(Number),
      },
    ]);
    expect(pending.ops).toBe(pending.runs[0]?.ops);
    expect(pending.points).toBe(4);
    expect(pending.quarantined).toEqual([
      { runId: bad.id, reason: 'refused by the server (invalid_value)', at: expect.any(Number) },
    ]);
    expect(pending.cursor).toBeGreaterThan(0 as Seq);
  });
});
