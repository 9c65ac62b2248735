import { readFileSync } from 'node:fs';
import { initRun } from '@tidemark/core';
import { createServer, ensureInitialToken } from '@tidemark/server';
import { HttpRemoteClient, syncOnce } from '@tidemark/sync-daemon';
import { afterEach, describe, expect, it } from 'vitest';
import { logPoints, openTestStore, recordRun, tempDir } from './helpers.js';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (stops.length > 0) await stops.pop()?.();
});

describe('a run deleted on the server', () => {
  it('is quarantined once, stays deleted, and the other runs keep syncing', async () => {
    const dataDir = tempDir('tidemark-server-');
    const token = readFileSync(ensureInitialToken(dataDir).path, 'utf8').trim();
    const server = createServer({ dataDir });
    const { url } = await server.listen(0, '127.0.0.1');
    stops.push(() => server.close());
    const remote = new HttpRemoteClient({ url, token });
    const { dir, store } = openTestStore();
    const doomed = await recordRun(dir, 'p', (r) => logPoints(r, 'm', 3));
    const kept = await recordRun(dir, 'p', (r) => logPoints(r, 'm', 3));
    await syncOnce(store, remote);

    const deleted = await fetch(`${url}/api/v1/runs/${doomed.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(deleted.status).toBe(200);
    const resume = async (id: string, from: number) => {
      const run = await initRun({
        project: 'p',
        dir,
        resume: id,
        captureContext: false,
        handleExit: false,
      });
      for (let step = from; step < from + 4; step++) run.log('m', step, { step });
      await run.stop();
    };
    await resume(doomed.id, 3);
    await resume(kept.id, 3);

    const first = await syncOnce(store, remote);
    await resume(doomed.id, 7);
    const second = await syncOnce(store, remote);

    expect(first.quarantined).toEqual([
      {
        runId: doomed.id,
        reason: expect.stringMatching(/^refused by the server \(run_deleted\)/),
        isNew: true,
      },
    ]);
    expect(second.quarantined.map((q) => q.runId)).toEqual([doomed.id]);
    expect(second.opsSent).toBe(0);
    expect(second.opsSkipped).toBeGreaterThan(0);
    await expect(remote.getRun(doomed.id)).rejects.toMatchObject({ status: 404 });
    expect((await remote.getSeries(kept.id, 'm')).points).toHaveLength(7);
  });
});
