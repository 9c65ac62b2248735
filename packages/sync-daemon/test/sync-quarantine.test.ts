import type { Seq } from '@tidemark/core';
import { FakeRemote, syncOnce } from '@tidemark/sync-daemon';
import { describe, expect, it } from 'vitest';
import { logPoints, openTestStore, recordRun } from './helpers.js';

describe('syncOnce with refused operations', () => {
  it('quarantines a run whose op is refused, holds back its later entries and syncs the other runs', async () => {
    const { dir, store } = openTestStore();
    const bad = await recordRun(dir, 'p', (r) => {
      r.set('parameters/poison', 'x');
      logPoints(r, 'm', 8);
    });
    const good = await recordRun(dir, 'p', (r) => logPoints(r, 'm', 8));
    const remote = new FakeRemote();
    remote.refuseOps((op) =>
      op.kind === 'field.set' && op.path === 'parameters/poison'
        ? { code: 'invalid_value', reason: 'poison' }
        : undefined,
    );

    const report = await syncOnce(store, remote, { limits: { maxEntries: 3 } });

    expect(report.quarantined).toEqual([
      { runId: bad.id, reason: 'refused by the server (invalid_value): poison', isNew: true },
    ]);
    expect(report.cursor).toBe(store.journal.lastSeq());
    expect((await remote.getSeries(good.id, 'm')).points).toHaveLength(8);
    const badPoints = (await remote.getSeries(bad.id, 'm')).points.length;
    expect(badPoints).toBeLessThan(8);
    expect(report.opsSkipped).toBeGreaterThan(0);

    const row = store.db
      .prepare('SELECT reason FROM quarantine WHERE remote = ? AND run_id = ?')
      .get(remote.url, bad.id);
    expect(row).toEqual({ reason: 'refused by the server (invalid_value): poison' });
  });

  it('keeps holding a quarantined run back in later passes and reports it each time', async () => {
    const { dir, store } = openTestStore();
    const bad = await recordRun(dir, 'p', (r) => r.set('poison', 1));
    const remote = new FakeRemote();
    remote.refuseOps((op) => (op.kind === 'field.set' ? { code: 'invalid_value' } : undefined));
    await syncOnce(store, remote);
    const received = remote.opsReceived.length;

    await recordRun(dir, 'p', (r) => r.log('m', 1));
    const { initRun } = await import('@tidemark/core');
    const resumed = await initRun({
      project: 'p',
      dir,
      resume: bad.id,
      captureContext: false,
      handleExit: false,
    });
    resumed.log('more', 1);
    await resumed.stop();

    const report = await syncOnce(store, remote);

    expect(report.quarantined).toEqual([
      { runId: bad.id, reason: 'refused by the server (invalid_value)', isNew: false },
    ]);
    expect(report.opsSkipped).toBe(3);
    expect(remote.opsReceived.length - received).toBe(report.opsSent);
    expect(report.opsSent).toBe(store.journal.countAfter(0 as Seq) - received - 3);
  });
});

describe('syncOnce with only', () => {
  async function twoProjects() {
    const { dir, store } = openTestStore();
    const a1 = await recordRun(dir, 'team/a', (r) => logPoints(r, 'm', 3));
    const b = await recordRun(dir, 'team/b', (r) => logPoints(r, 'm', 3));
    const a2 = await recordRun(dir, 'team/a', (r) => logPoints(r, 'm', 3));
    return { dir, store, a1, a2, b };
  }

  it('sends only that project and keeps the remote cursor before the first entry of another', async () => {
    const { store, a1, a2, b } = await twoProjects();
    const remote = new FakeRemote();
    const firstOfB = (
      store.db.prepare('SELECT min(seq) AS seq FROM journal WHERE run_id = ?').get(b.id) as {
        seq: number;
      }
    ).seq;

    const report = await syncOnce(store, remote, { only: 'team/a' });

    expect(report.only).toBe('team/a');
    expect(remote.state.runs.has(a1.id) && remote.state.runs.has(a2.id)).toBe(true);
    expect(remote.state.runs.has(b.id)).toBe(false);
    expect(store.journal.getCursor(remote.url)).toBe(firstOfB - 1);
    expect(report.cursor).toBe(store.journal.lastSeq());
    expect(report.pending).toBe(0);

    const again = await syncOnce(store, remote, { only: 'team/a' });
    expect(again).toMatchObject({ opsSent: 0, requests: 1, pending: 0 });
  });

  it('reports the remote cursor and nothing pending for an only pass after a full one', async () => {
    const { store } = await twoProjects();
    const remote = new FakeRemote();
    await syncOnce(store, remote);

    const report = await syncOnce(store, remote, { only: 'team/b' });

    expect(report).toMatchObject({ opsSent: 0, requests: 1, pending: 0 });
    expect(report.cursor).toBe(store.journal.lastSeq());
  });

  it('leaves a full pass afterwards to send the other projects without sending anything twice', async () => {
    const { store, b } = await twoProjects();
    const remote = new FakeRemote();
    const onlyA = await syncOnce(store, remote, { only: 'team/a' });

    const full = await syncOnce(store, remote);

    const entriesOfB = store.db
      .prepare('SELECT count(*) AS n FROM journal WHERE run_id = ?')
      .get(b.id) as {
      n: number;
    };
    expect(full.opsSent).toBe(entriesOfB.n);
    expect(full.opsDuplicate).toBe(0);
    expect(onlyA.opsSent + full.opsSent).toBe(store.journal.countAfter(0 as Seq));
    expect(full.cursor).toBe(store.journal.lastSeq());
    const projectCursors = store.db
      .prepare("SELECT count(*) AS n FROM sync_cursors WHERE remote LIKE '%#only=%'")
      .get();
    expect(projectCursors).toEqual({ n: 0 });
  });
});
