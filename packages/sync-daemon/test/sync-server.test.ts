import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRun, openReadOnly, readSeries, type Seq } from '@tidemark/core';
import { createServer, ensureInitialToken } from '@tidemark/server';
import { HttpRemoteClient, syncOnce } from '@tidemark/sync-daemon';
import { afterEach, describe, expect, it } from 'vitest';
import { openTestStore, randomFile, recordRun } from './helpers.js';

const stops: Array<() => Promise<void>> = [];

afterEach(async () => {
  while (stops.length > 0) await stops.pop()?.();
});

async function startServer(): Promise<{ url: string; token: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tidemark-server-'));
  const token = readFileSync(ensureInitialToken(dataDir).path, 'utf8').trim();
  const server = createServer({ dataDir });
  const { url } = await server.listen(0, '127.0.0.1');
  stops.push(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { url, token };
}

describe('syncOnce over HTTP to @tidemark/server', () => {
  it('syncs a run with an artifact logged twice, then sends nothing on the second pass', async () => {
    const { dir, store } = openTestStore();
    const artifact = randomFile(3 * 1024 * 1024);
    const specials = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0.25];
    const run = await recordRun(dir, 'team/mnist', async (r) => {
      r.set('parameters', { huge: 2n ** 60n + 1n, lr: 0.001 });
      for (const [step, value] of specials.entries()) r.log('metrics/loss', value, { step });
      await r.upload('model/first', artifact);
      await r.upload('model/second', artifact);
    });
    const { url, token } = await startServer();
    const remote = new HttpRemoteClient({ url, token });

    const first = await syncOnce(store, remote, { limits: { maxEntries: 4 } });
    const second = await syncOnce(store, remote);

    expect(first.opsApplied).toBe(store.journal.countAfter(0 as Seq));
    expect(first.quarantined).toEqual([]);
    expect(first.chunksSent).toBe(localObjects(dir));
    expect(second).toMatchObject({ opsSent: 0, chunksSent: 0, bytesSent: 0, requests: 1 });

    const db = openReadOnly(dir);
    const local = getRun(db, run.id);
    const points = readSeries(db, run.id, 'metrics/loss');
    db.close();
    const onServer = await remote.getRun(run.id);
    expect(onServer.fields).toEqual(local.fields);
    expect(onServer.files).toEqual(local.files);
    expect((await remote.getSeries(run.id, 'metrics/loss')).points).toEqual(points);
  });
});

/** Objects in the store: one manifest and the chunks of the one file logged. */
function localObjects(dir: string): number {
  const names = readdirSync(join(dir, 'objects'), { recursive: true }).map(String);
  return names.filter((name) => /[0-9a-f]{32}-\d+$/.test(name)).length;
}
