import type { Seq } from '@tidemark/core';
import { RemoteError, Scheduler, type SyncReport, type SyncWindow } from '@tidemark/sync-daemon';
import { describe, expect, it } from 'vitest';
import { ManualClock, settle } from './support/manual-clock.js';
import { recordingLogger } from './support/recording-logger.js';

function report(change: Partial<SyncReport> = {}): SyncReport {
  return {
    remote: 'http://127.0.0.1/fake',
    only: null,
    opsSent: 1,
    opsApplied: 1,
    opsDuplicate: 0,
    opsSkipped: 0,
    chunksSent: 0,
    bytesSent: 0,
    chunksSkipped: 0,
    requests: 1,
    quarantined: [],
    cursor: 1 as Seq,
    pending: 0,
    ...change,
  };
}

/** A pass the test settles by hand, recording how many were started and their signals. */
function passes() {
  const started: Array<{
    signal: AbortSignal;
    resolve: (r: SyncReport) => void;
    reject: (e: unknown) => void;
  }> = [];
  return {
    started,
    pass: (signal: AbortSignal) =>
      new Promise<SyncReport>((resolve, reject) => started.push({ signal, resolve, reject })),
    last() {
      return started.at(-1) as (typeof started)[number];
    },
  };
}

function setup(options: { window?: SyncWindow; random?: () => number } = {}) {
  const time = new ManualClock();
  const logger = recordingLogger();
  const runs = passes();
  const scheduler = new Scheduler({
    pass: runs.pass,
    backoff: { baseMs: 1_000, maxMs: 60_000 },
    authRetryMs: 30 * 60_000,
    window: options.window ?? null,
    logger,
    clock: time.clock,
    random: options.random ?? (() => 0),
    timers: time,
  });
  return { time, logger, runs, scheduler };
}

const unreachable = () => RemoteError.unreachable('POST /api/v1/ops', 'ECONNREFUSED');

describe('Scheduler', () => {
  it('runs one pass at a time, and one more after it for any triggers that came meanwhile', async () => {
    const { time, runs, scheduler } = setup();

    scheduler.trigger('start');
    scheduler.trigger('journal');
    scheduler.trigger('schedule');
    scheduler.trigger('journal');
    expect(runs.started).toHaveLength(1);

    runs.last().resolve(report());
    await time.advance(0);
    expect(runs.started).toHaveLength(2);

    runs.last().resolve(report());
    await time.advance(60_000);
    expect(runs.started).toHaveLength(2);
    expect(scheduler.status.phase).toBe('idle');
  });

  it('backs off with capped, jittered waits while unreachable, ignoring wake-ups meanwhile', async () => {
    const { time, runs, scheduler } = setup({ random: () => 0 });
    const waits: number[] = [];

    scheduler.trigger('start');
    for (let failure = 1; failure <= 9; failure++) {
      runs.last().reject(unreachable());
      await settle();
      const next = scheduler.status.nextAttemptAt as number;
      waits.push(next - time.now);
      scheduler.trigger('journal');
      scheduler.trigger('poll');
      expect(runs.started).toHaveLength(failure);
      await time.advance(next - time.now);
      expect(runs.started).toHaveLength(failure + 1);
    }

    expect(waits).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
    expect(scheduler.status).toMatchObject({
      phase: 'syncing',
      lastError: { code: 'unreachable', failures: 9 },
    });
  });

  it('logs one line when errors start and one when they end, not one per retry', async () => {
    const { time, runs, scheduler, logger } = setup();

    scheduler.trigger('start');
    for (let i = 0; i < 5; i++) {
      runs.last().reject(unreachable());
      await time.advance(60_000);
    }
    runs.last().resolve(report());
    await settle();

    const loud = logger.records.filter((r) => r.level !== 'debug').map((r) => r.event);
    expect(loud).toEqual(['sync_errors_started', 'sync_recovered', 'pass_done']);
    const recovered = logger.records.filter((r) => r.event === 'sync_recovered');
    expect(recovered).toHaveLength(1);
    expect(recovered[0]?.fields).toMatchObject({ after_failures: 5, last_code: 'unreachable' });
    expect(logger.events('debug').filter((e) => e === 'sync_retry_failed')).toHaveLength(4);
    expect(scheduler.status).toMatchObject({ phase: 'idle', lastError: null });
  });

  it('logs again when an outage turns into a refusal, not when its symptoms vary', async () => {
    const { time, runs, scheduler, logger } = setup();

    scheduler.trigger('start');
    runs.last().reject(unreachable());
    await time.advance(60_000);
    runs.last().reject(RemoteError.serverError('POST /api/v1/ops', 503));
    await time.advance(60_000);
    runs.last().reject(RemoteError.protocol('POST /api/v1/ops', 'the answer is not JSON'));
    await time.advance(60_000);
    runs.last().reject(RemoteError.authFailed('POST /api/v1/ops', 401));
    await settle();

    expect(logger.events('warn')).toEqual(['sync_errors_started', 'sync_errors_changed']);
    expect(scheduler.status.lastError).toMatchObject({ code: 'auth_failed', retryable: false });
  });

  it('waits at least as long as a Retry-After asks', async () => {
    const { time, runs, scheduler } = setup();

    scheduler.trigger('start');
    runs.last().reject(RemoteError.serverError('POST /api/v1/ops', 429, 20_000));
    await settle();

    expect((scheduler.status.nextAttemptAt as number) - time.now).toBe(20_000);
    await time.advance(19_999);
    expect(runs.started).toHaveLength(1);
    await time.advance(1);
    expect(runs.started).toHaveLength(2);
  });

  it('after an auth failure waits the long delay, once, and says why', async () => {
    const { time, runs, scheduler, logger } = setup();

    scheduler.trigger('start');
    runs.last().reject(RemoteError.authFailed('POST /api/v1/ops', 401));
    await settle();
    for (let minute = 0; minute < 29; minute++) {
      scheduler.trigger('journal');
      await time.advance(60_000);
    }

    expect(runs.started).toHaveLength(1);
    expect(scheduler.status.lastError).toMatchObject({
      code: 'auth_failed',
      hint: expect.stringMatching(/TIDEMARK_API_TOKEN/),
    });
    await time.advance(60_000);
    expect(runs.started).toHaveLength(2);
    expect(logger.events('warn')).toEqual(['sync_errors_started']);
  });

  it('ends a backoff wait when asked to sync now', async () => {
    const { time, runs, scheduler } = setup();

    scheduler.trigger('start');
    runs.last().reject(RemoteError.authFailed('POST /api/v1/ops', 401));
    await settle();
    scheduler.trigger('manual');
    await time.advance(0);

    expect(runs.started).toHaveLength(2);
  });

  it('syncs again at once while a run is still being written, until nothing is pending', async () => {
    const { time, runs, scheduler } = setup();

    scheduler.trigger('start');
    runs.last().resolve(report({ cursor: 10 as Seq, pending: 5 }));
    await time.advance(0);
    runs.last().resolve(report({ cursor: 15 as Seq, pending: 2 }));
    await time.advance(0);
    runs.last().resolve(report({ cursor: 17 as Seq, pending: 0 }));
    await time.advance(60_000);

    expect(runs.started).toHaveLength(3);
  });

  it('does not spin when entries stay pending without progress', async () => {
    const { time, runs, scheduler } = setup();

    scheduler.trigger('start');
    runs.last().resolve(report({ cursor: 10 as Seq, pending: 5 }));
    await time.advance(0);
    runs.last().resolve(report({ cursor: 10 as Seq, pending: 5 }));
    await time.advance(60_000);

    expect(runs.started).toHaveLength(2);
  });

  it('runs nothing outside the window, starts when it opens, and stops a pass when it closes', async () => {
    const clockStart = new ManualClock().now;
    const opens = clockStart + 60 * 60_000;
    const closes = opens + 30 * 60_000;
    const window: SyncWindow = {
      text: 'test window',
      contains: (at) => at >= opens && at < closes,
      nextChange: (at) => (at < opens ? opens : at < closes ? closes : undefined),
      dispose: () => {},
    };
    const { time, runs, scheduler, logger } = setup({ window });

    scheduler.trigger('start');
    scheduler.trigger('journal');
    expect(runs.started).toHaveLength(0);
    expect(scheduler.status).toMatchObject({ phase: 'outside_window', nextAttemptAt: opens });

    await time.advance(opens - time.now);
    expect(runs.started).toHaveLength(1);
    const inFlight = runs.last();

    await time.advance(closes - time.now);
    expect(inFlight.signal.aborted).toBe(true);
    inFlight.reject(new DOMException('stopped', 'AbortError'));
    await settle();

    expect(scheduler.status.phase).toBe('outside_window');
    expect(scheduler.status.lastError).toBeNull();
    expect(logger.events()).toContain('pass_interrupted');
  });

  it('counts a pass that throws at once as a failed pass', async () => {
    const time = new ManualClock();
    const logger = recordingLogger();
    const scheduler = new Scheduler({
      pass: () => {
        throw RemoteError.unreachable('POST /api/v1/ops', 'SQLITE_BUSY');
      },
      backoff: { baseMs: 1_000, maxMs: 60_000 },
      authRetryMs: 60_000,
      logger,
      clock: time.clock,
      timers: time,
    });

    expect(() => scheduler.trigger('start')).not.toThrow();
    await settle();

    expect(scheduler.status).toMatchObject({ phase: 'backing_off', lastError: { failures: 1 } });
  });

  it('stops: waits for the pass in flight to reach a boundary and starts nothing after', async () => {
    const { time, runs, scheduler } = setup();

    scheduler.trigger('start');
    const inFlight = runs.last();
    const stopping = scheduler.stop(10_000);
    expect(inFlight.signal.aborted).toBe(true);
    inFlight.reject(new DOMException('stopped', 'AbortError'));
    await stopping;
    scheduler.trigger('manual');
    await time.advance(60_000);

    expect(runs.started).toHaveLength(1);
    expect(scheduler.status.phase).toBe('stopped');
  });

  it('gives up waiting for a pass stuck in a request after the grace period', async () => {
    const { time, runs, scheduler } = setup();

    scheduler.trigger('start');
    const stopping = scheduler.stop(5_000);
    let stopped = false;
    void stopping.then(() => {
      stopped = true;
    });
    await time.advance(4_999);
    expect(stopped).toBe(false);
    await time.advance(1);
    expect(stopped).toBe(true);
    expect(runs.started).toHaveLength(1);
  });
});
