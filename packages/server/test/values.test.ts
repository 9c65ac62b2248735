import { rmSync } from 'node:fs';
import { initRun, type Op, type Seq, Store } from '@tidemark/core';
import { afterEach, describe, expect, it } from 'vitest';
import { client, opsFor, startServer, type TestServer, tempDir } from './harness.js';

const servers: TestServer[] = [];
const folders: string[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

describe('values on the wire', () => {
  it('round-trips NaN, ±Infinity, -0, 2^53+1, unicode and 1 KB keys, out-of-order steps exactly', async () => {
    const server = await startServer();
    servers.push(server);
    const api = client(server.url, server.token);
    const run = opsFor('team/mnist');
    const longKey = `parameters/${'ключ'.repeat(256)}`;

    const answer = await api.ops([
      run.field(1, 'values/nan', 'float', 'NaN'),
      run.field(2, 'values/inf', 'float', 'Infinity'),
      run.field(3, 'values/neg_inf', 'float', '-Infinity'),
      run.field(4, 'values/neg_zero', 'float', '-0'),
      run.field(5, 'values/big', 'int', '9007199254740993'),
      run.field(6, 'values/tiny', 'float', '5e-324'),
      run.field(7, longKey, 'string', '🌊 tide'),
      run.points(8, [
        {
          path: 'metrics/odd',
          type: 'float',
          points: [
            [3, 13, 'NaN'],
            [1, 11, 'Infinity'],
            [0, 10, '-0'],
            [2, 12, '-Infinity'],
            [4, 14, 9007199254740992],
            [1.5, 11.5, -0.25],
          ],
        },
      ]),
    ]);
    expect(answer.body.results.every((r) => r.status === 'applied')).toBe(true);

    const detail = (await api.get(`/api/v1/runs/${run.runId}`)).body;
    const value = (path: string) =>
      detail.fields.find((f: { path: string }) => f.path === path)?.value;
    expect(value('values/nan')).toBe('NaN');
    expect(value('values/inf')).toBe('Infinity');
    expect(value('values/neg_inf')).toBe('-Infinity');
    expect(value('values/neg_zero')).toBe('-0');
    expect(value('values/big')).toBe('9007199254740993');
    expect(value('values/tiny')).toBe('5e-324');
    expect(value(longKey)).toBe('🌊 tide');

    const series = await api.get(
      `/api/v1/runs/${run.runId}/series?path=${encodeURIComponent('metrics/odd')}`,
    );
    expect(series.body.points).toEqual([
      [0, 10, '-0'],
      [1, 11, 'Infinity'],
      [1.5, 11.5, -0.25],
      [2, 12, '-Infinity'],
      [3, 13, 'NaN'],
      [4, 14, 9007199254740992],
    ]);
    expect(detail.series[0]).toEqual({
      path: 'metrics/odd',
      type: 'float',
      count: 6,
      lastStep: 4,
      last: 9007199254740992,
      min: '-Infinity',
      max: 'Infinity',
      nanCount: 1,
    });
  });

  it('never counts a NaN point as a number in a series summary', async () => {
    const server = await startServer();
    servers.push(server);
    const api = client(server.url, server.token);
    const run = opsFor('p');
    await api.ops([
      run.points(1, [
        {
          path: 'm',
          type: 'float',
          points: [
            [0, 1, 'NaN'],
            [1, 2, 'NaN'],
          ],
        },
      ]),
    ]);

    const detail = (await api.get(`/api/v1/runs/${run.runId}`)).body;

    expect(detail.series[0]).toMatchObject({
      count: 2,
      min: null,
      max: null,
      nanCount: 2,
      last: 'NaN',
    });
  });

  it('accepts every op a core store journals and reads the run back as the store holds it', async () => {
    const server = await startServer();
    servers.push(server);
    const storeDir = tempDir('tidemark-store-');
    folders.push(storeDir);
    const store = Store.open({ dir: storeDir });
    const run = await initRun({
      project: 'team/mnist',
      name: 'baseline',
      store,
      captureContext: false,
      handleExit: false,
    });
    run.set('parameters', { lr: 0.001, big: 2n ** 53n + 1n, odd: Number.NaN, zero: -0, on: true });
    run.log('metrics/loss', 0.5, { step: 2 });
    run.log('metrics/loss', Number.NaN, { step: 1 });
    run.log('metrics/loss', Number.NEGATIVE_INFINITY, { step: 3 });
    run.log('logs/stdout', 'epoch 1 done', { step: 1 });
    run.addTags('cnn', 'v2');
    run.removeTags('v2');
    await run.stop();

    const entries = store.journal.readAfter(0 as Seq, { maxEntries: 1000, maxPoints: 100_000 });
    const ops: Op[] = entries.map((entry) => entry.op);
    await store.close();
    const answer = await client(server.url, server.token).ops(ops);

    expect(answer.body.results.filter((r) => r.status !== 'applied')).toEqual([]);
    const api = client(server.url, server.token);
    const detail = (await api.get(`/api/v1/runs/${run.id}`)).body;
    expect(detail).toMatchObject({
      name: 'baseline',
      state: 'finished',
      tags: ['cnn'],
      project: 'team/mnist',
    });
    expect(detail.fields).toEqual([
      { path: 'parameters/big', type: 'int', value: '9007199254740993' },
      { path: 'parameters/lr', type: 'float', value: '0.001' },
      { path: 'parameters/odd', type: 'float', value: 'NaN' },
      { path: 'parameters/on', type: 'bool', value: 'true' },
      { path: 'parameters/zero', type: 'float', value: '-0' },
    ]);
    const loss = await api.get(`/api/v1/runs/${run.id}/series?path=metrics/loss`);
    expect(loss.body.points.map((p: unknown[]) => [p[0], p[2]])).toEqual([
      [1, 'NaN'],
      [2, 0.5],
      [3, '-Infinity'],
    ]);
  });
});
