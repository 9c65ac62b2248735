import { getRun, initRun, openReadOnly, readSeries, type Seq } from '@tidemark/core';
import { FakeRemote, type SyncProgress, syncOnce } from '@tidemark/sync-daemon';
import { describe, expect, it } from 'vitest';
import { logPoints, openTestStore, randomFile, recordRun } from './helpers.js';

describe('syncOnce against a fake remote', () => {
  it('sends every entry and object once, then a second pass makes one small request and sends nothing', async () => {
    const { dir, store } = openTestStore();
    const artifact = randomFile(600 * 1024);
    const run = await recordRun(dir, 'team/mnist', async (r) => {
      r.set('parameters', { lr: 0.001, optimizer: { name: 'adam' } });
      r.addTags('baseline', 'cnn');
      logPoints(r, 'metrics/loss', 20);
      await r.upload('model/weights', artifact);
    });
    const remote = new FakeRemote();
    const entries = store.journal.countAfter(0 as Seq);

    const first = await syncOnce(store, remote);

    expect(first.opsSent).toBe(entries);
    expect(first.opsApplied).toBe(entries);
    expect(first.opsDuplicate).toBe(0);
    expect(first.chunksSent).toBeGreaterThanOrEqual(2);
    expect(first.bytesSent).toBeGreaterThan(600 * 1024);
    expect(first.quarantined).toEqual([]);
    expect(first.cursor).toBe(store.journal.lastSeq());
    expect(first.pending).toBe(0);
    expect(remote.appliedCount).toBe(entries);

    const callsBefore = remote.totalCalls();
    const second = await syncOnce(store, remote);

    expect(second).toMatchObject({ opsSent: 0, chunksSent: 0, bytesSent: 0, requests: 1 });
    expect(remote.totalCalls()).toBe(callsBefore + 1);
    expect(remote.calls.whoami).toBeGreaterThan(0);

    const db = openReadOnly(dir);
    const local = getRun(db, run.id);
    db.close();
    const onServer = await remote.getRun(run.id);
    expect(onServer.name).toBe(local.name);
    expect(onServer.state).toBe('finished');
    expect(onServer.tags).toEqual(local.tags);
    expect(onServer.fields).toEqual(local.fields);
    expect(onServer.files).toEqual(local.files);
    expect(onServer.series.map((s) => [s.path, s.count])).toEqual([['metrics/loss', 20]]);
  });

  it('carries NaN, infinities, -0, 2^53+1, unicode and 1 KB keys and out-of-order steps exactly', async () => {
    const { dir, store } = openTestStore();
    const values = [
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      -0,
      0,
      Number.MIN_VALUE,
      Number.MAX_VALUE,
      2 ** 53 + 2,
      0.1,
    ];
    const steps = [7, 3, 8, 0, 5, 1, 6, 2, 4];
    const longKey = `parameters/${'k'.repeat(1024)}`;
    const run = await recordRun(dir, 'p', (r) => {
      for (const [i, value] of values.entries()) {
        r.log('metrics/ünï/λ 損失', value, { step: steps[i] as number });
      }
      r.set('parameters/big', 2n ** 53n + 1n);
      r.set('parameters/nan', Number.NaN);
      r.set('parameters/negative_zero', -0);
      r.set('parameters/ratio', 1 / 3);
      r.set(longKey, 'long');
      r.set('parameters/когда', new Date(Date.UTC(2024, 1, 29)));
    });
    const remote = new FakeRemote();

    await syncOnce(store, remote);

    const db = openReadOnly(dir);
    const local = readSeries(db, run.id, 'metrics/ünï/λ 損失');
    const localRun = getRun(db, run.id);
    db.close();
    const series = await remote.getSeries(run.id, 'metrics/ünï/λ 損失');
    expect(series.points).toEqual(local);
    expect(series.points.map((p) => p.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Object.is(series.points.find((p) => p.step === 0)?.value, -0)).toBe(true);

    const fields = new Map((await remote.getRun(run.id)).fields.map((f) => [f.path, f.value]));
    expect(fields.get('parameters/big')).toBe(2n ** 53n + 1n);
    expect(Number.isNaN(fields.get('parameters/nan'))).toBe(true);
    expect(Object.is(fields.get('parameters/negative_zero'), -0)).toBe(true);
    expect(fields.get('parameters/ratio')).toBe(1 / 3);
    expect(fields.get(longKey)).toBe('long');
    expect(fields.get('parameters/когда')).toEqual(new Date(Date.UTC(2024, 1, 29)));
    expect([...fields.keys()].sort()).toEqual(localRun.fields.map((f) => f.path).sort());
  });

  it('reads the journal in bounded pages and cuts requests by size', async () => {
    const { dir, store } = openTestStore();
    await recordRun(dir, 'p', (r) => logPoints(r, 'm', 23));
    const entries = store.journal.countAfter(0 as Seq);
    const remote = new FakeRemote();

    const paged = await syncOnce(store, remote, { limits: { maxEntries: 5 } });
    expect(paged.requests).toBe(Math.ceil(entries / 5));
    expect(paged.opsApplied).toBe(entries);

    const { dir: dir2, store: store2 } = openTestStore();
    await recordRun(dir2, 'p', (r) => logPoints(r, 'm', 4));
    const tiny = await syncOnce(store2, new FakeRemote(), { limits: { maxRequestBytes: 1 } });
    expect(tiny.requests).toBe(store2.journal.countAfter(0 as Seq));
  });

  it('reports progress that ends at the totals it announced', async () => {
    const { dir, store } = openTestStore();
    await recordRun(dir, 'p', async (r) => {
      logPoints(r, 'm', 12);
      await r.upload('blob', randomFile(300 * 1024));
    });
    const seen: SyncProgress[] = [];

    await syncOnce(store, new FakeRemote(), {
      limits: { maxEntries: 4 },
      onProgress: (p) => seen.push(p),
    });

    const last = seen.at(-1) as SyncProgress;
    expect(last.opsDone).toBe(last.opsTotal);
    expect(last.opsTotal).toBe(store.journal.countAfter(0 as Seq));
    expect(last.bytesDone).toBe(last.bytesTotal);
    expect(last.bytesTotal).toBeGreaterThan(300 * 1024);
    const done = seen.map((p) => p.opsDone);
    expect(done).toEqual([...done].sort((a, b) => a - b));
  });

  it('leaves entries written during the pass for the next one and counts them as pending', async () => {
    const { store } = openTestStore();
    const run = await initRun({ project: 'p', store, captureContext: false, handleExit: false });
    logPoints(run, 'm', 6);
    const remote = new FakeRemote();
    let written = 0;

    const report = await syncOnce(store, remote, {
      limits: { maxEntries: 2 },
      onProgress: () => {
        if (written < 3) {
          run.log('late', written, { step: written });
          written += 1;
        }
      },
    });

    expect(written).toBe(3);
    expect(report.pending).toBe(3);
    const next = await syncOnce(store, remote);
    await run.stop();
    expect(next.opsApplied).toBe(3);
    expect(next.pending).toBe(0);
  });

  it('refuses options it does not know, naming them', async () => {
    const { store } = openTestStore();
    const remote = new FakeRemote();

    await expect(syncOnce(store, remote, { onlyy: 'p' } as never)).rejects.toMatchObject({
      code: 'invalid_option',
      message: expect.stringContaining('onlyy'),
    });
    await expect(syncOnce(store, remote, { limits: { maxEntries: 20_000 } })).rejects.toMatchObject(
      {
        code: 'invalid_option',
      },
    );
  });
});
