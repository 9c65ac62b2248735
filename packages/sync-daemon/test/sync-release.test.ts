import type { Store } from '@tidemark/core';
import { FakeRemote, RemoteError, syncOnce } from '@tidemark/sync-daemon';
import { describe, expect, it } from 'vitest';
import { logPoints, openTestStore, recordRun } from './helpers.js';

function quarantineRows(store: Store): unknown[] {
  return store.db.prepare('SELECT remote, run_id AS runId FROM quarantine').all();
}

describe('syncOnce with a token that may not write a project', () => {
  it('ends the pass with auth_failed on a per-op forbidden, quarantining nothing and keeping the cursor', async () => {
    const { dir, store } = openTestStore();
    const other = await recordRun(dir, 'other', (r) => logPoints(r, 'm', 3));
    const denied = await recordRun(dir, 'team/a', (r) => logPoints(r, 'm', 5));
    const remote = new FakeRemote();
    remote.refuseOps((op) => (op.project === 'team/a' ? { code: 'forbidden' } : undefined));

    const error = await syncOnce(store, remote, { limits: { maxEntries: 2 } }).catch(
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({ code: 'auth_failed', status: 403, retryable: false });
    expect((error as RemoteError).hint).toMatch(/project team\/a.*--only/);
    expect(quarantineRows(store)).toEqual([]);
    const firstDenied = store.journal
      .readRun(denied.id, 0 as never, { maxEntries: 1, maxPoints: 1 })
      .at(0)?.seq as number;
    expect(store.journal.getCursor(remote.url)).toBeLessThan(firstDenied);
    expect((await remote.getSeries(other.id, 'm')).points).toHaveLength(3);

    remote.refuseOps(() => undefined);
    const report = await syncOnce(store, remote);

    expect(report.quarantined).toEqual([]);
    expect((await remote.getSeries(denied.id, 'm')).points).toHaveLength(5);
    expect(report.cursor).toBe(store.journal.lastSeq());
  });
});

describe('syncOnce releasing quarantined runs', () => {
  async function heldRun() {
    const { dir, store } = openTestStore();
    const bad = await recordRun(dir, 'p', (r) => {
      logPoints(r, 'before', 3);
      r.set('poison', 1);
      logPoints(r, 'after', 4);
    });
    const good = await recordRun(dir, 'p', (r) => logPoints(r, 'm', 2));
    const remote = new FakeRemote();
    remote.refuseOps((op) =>
      op.kind === 'field.set' && op.path === 'poison' ? { code: 'invalid_value' } : undefined,
    );
    const first = await syncOnce(store, remote, { limits: { maxEntries: 1 } });
    return { dir, store, bad, good, remote, first };
  }

  it('lists a run held since an earlier pass in every report, even a pass with nothing new', async () => {
    const { store, bad, remote, first } = await heldRun();

    const idle = await syncOnce(store, remote);

    expect(first.quarantined).toEqual([
      { runId: bad.id, reason: 'refused by the server (invalid_value)', isNew: true },
    ]);
    expect(idle.quarantined).toEqual([
      { runId: bad.id, reason: 'refused by the server (invalid_value)', isNew: false },
    ]);
    expect(idle.requests).toBe(1);
  });

  it('sends every entry of a released run again from its start, and the server answers duplicate for the applied ones', async () => {
    const { store, bad, remote } = await heldRun();
    const appliedBefore = remote.appliedCount;
    await expect(remote.getSeries(bad.id, 'after')).rejects.toMatchObject({ status: 404 });
    remote.refuseOps(() => undefined);

    const report = await syncOnce(store, remote, { release: [bad.id] });

    const entries = store.journal.readRun(bad.id, 0 as never, {
      maxEntries: 10_000,
      maxPoints: 1e9,
    });
    expect(report.released).toEqual([bad.id]);
    expect(report.quarantined).toEqual([]);
    expect(report.opsSent).toBe(entries.length);
    const poison = entries.findIndex((e) => e.op.kind === 'field.set' && e.op.path === 'poison');
    expect(poison).toBeGreaterThan(0);
    expect(report.opsDuplicate).toBe(poison);
    expect(report.opsApplied).toBe(entries.length - poison);
    expect(remote.appliedCount).toBe(appliedBefore + entries.length - poison);
    expect((await remote.getSeries(bad.id, 'after')).points).toHaveLength(4);
    expect((await remote.getRun(bad.id)).state).toBe('finished');
    expect(quarantineRows(store)).toEqual([]);

    const next = await syncOnce(store, remote);
    expect(next.quarantined).toEqual([]);
    expect(next.opsSent).toBe(0);
  });

  it("releases every run held for this remote with 'all' and leaves another remote's quarantine alone", async () => {
    const { store, bad, remote } = await heldRun();
    store.db
      .prepare('INSERT INTO quarantine (remote, run_id, reason, at) VALUES (?, ?, ?, ?)')
      .run('http://127.0.0.1/elsewhere', bad.id, 'held elsewhere', 1);
    remote.refuseOps(() => undefined);

    const report = await syncOnce(store, remote, { release: 'all' });

    expect(report.released).toEqual([bad.id]);
    expect(quarantineRows(store)).toEqual([
      { remote: 'http://127.0.0.1/elsewhere', runId: bad.id },
    ]);
  });

  it('quarantines a released run anew, with the new reason, when the server refuses it again', async () => {
    const { store, bad, remote } = await heldRun();
    remote.refuseOps((op) => (op.runId === bad.id ? { code: 'run_deleted' } : undefined));

    const report = await syncOnce(store, remote, { release: 'all' });

    expect(report.released).toEqual([]);
    expect(report.quarantined).toEqual([
      { runId: bad.id, reason: 'refused by the server (run_deleted)', isNew: true },
    ]);
  });

  it('keeps the run held when a release fails midway, so a later release starts over', async () => {
    const { store, bad, remote } = await heldRun();
    remote.refuseOps(() => undefined);
    remote.failNext(1, RemoteError.unreachable('POST /api/v1/ops', 'ECONNRESET'), {
      method: 'sendOps',
      after: 1,
    });

    await expect(
      syncOnce(store, remote, { release: [bad.id], limits: { maxEntries: 1 } }),
    ).rejects.toMatchObject({ code: 'unreachable' });
    expect(quarantineRows(store)).toEqual([{ remote: remote.url, runId: bad.id }]);

    const report = await syncOnce(store, remote, { release: [bad.id] });
    expect(report.released).toEqual([bad.id]);
    expect((await remote.getSeries(bad.id, 'after')).points).toHaveLength(4);
  });

  it('refuses to release a run that is not quarantined, before sending anything', async () => {
    const { store, good, remote } = await heldRun();
    const calls = remote.totalCalls();

    await expect(syncOnce(store, remote, { release: [good.id] })).rejects.toMatchObject({
      code: 'not_quarantined',
      hint: expect.stringMatching(/--retry-quarantined/),
    });
    expect(remote.totalCalls()).toBe(calls);
  });

  it('refuses a release option that is neither all nor a list of run ids', async () => {
    const { store, remote } = await heldRun();

    await expect(syncOnce(store, remote, { release: 'everything' as never })).rejects.toMatchObject(
      { code: 'invalid_option' },
    );
  });
});
