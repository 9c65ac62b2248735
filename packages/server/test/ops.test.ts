import type { Op } from '@tidemark/core';
import { afterEach, describe, expect, it } from 'vitest';
import { client, fileObjects, opsFor, startServer, type TestServer } from './harness.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

async function fresh(): Promise<TestServer> {
  const server = await startServer();
  servers.push(server);
  return server;
}

describe('POST /api/v1/ops', () => {
  it('applies each op once when the same batch is sent twice', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const run = opsFor('team/mnist');
    const batch = [
      run.create(1000),
      run.field(1001, 'parameters/lr', 'float', '0.001'),
      run.points(1002, [
        {
          path: 'metrics/loss',
          type: 'float',
          points: [
            [0, 1002, 0.9],
            [1, 1003, 0.5],
          ],
        },
      ]),
      run.tags(1004, 'tags.add', ['cnn']),
    ];

    const first = await api.ops(batch);
    const second = await api.ops(batch);

    expect(first.status).toBe(200);
    expect(first.body.results.map((r) => r.status)).toEqual([
      'applied',
      'applied',
      'applied',
      'applied',
    ]);
    expect(second.body.results.map((r) => r.status)).toEqual([
      'duplicate',
      'duplicate',
      'duplicate',
      'duplicate',
    ]);
    expect(second.body.results.map((r) => r.id)).toEqual(batch.map((op) => op.id));
    const series = await api.get(`/api/v1/runs/${run.runId}/series?path=metrics/loss`);
    expect(series.body.points).toEqual([
      [0, 1002, 0.9],
      [1, 1003, 0.5],
    ]);
  });

  it('ends in the same state whichever order retried batches arrive in', async () => {
    const run = opsFor('team/mnist');
    const older = [
      run.create(1000, 'first-name'),
      run.field(1001, 'parameters/lr', 'float', '0.1'),
      run.tags(1002, 'tags.add', ['keep', 'drop']),
      run.state(1003, 'finished'),
      run.points(1004, [{ path: 'metrics/acc', type: 'float', points: [[0, 1004, 0.1]] }]),
    ];
    const newer = [
      run.field(2001, 'parameters/lr', 'float', '0.01'),
      run.tags(2002, 'tags.remove', ['drop']),
      run.state(2003, 'running'),
      run.state(2004, 'failed', 'Error: diverged'),
      run.points(2005, [{ path: 'metrics/acc', type: 'float', points: [[1, 2005, 0.2]] }]),
    ];

    const inOrder = await fresh();
    const reversed = await fresh();
    const a = client(inOrder.url, inOrder.token);
    const b = client(reversed.url, reversed.token);
    await a.ops(older);
    await a.ops(newer);
    await b.ops([...newer].reverse());
    await b.ops([...older].reverse());

    const left = (await a.get(`/api/v1/runs/${run.runId}`)).body;
    const right = (await b.get(`/api/v1/runs/${run.runId}`)).body;
    expect(right).toEqual(left);
    expect(left).toMatchObject({
      name: 'first-name',
      state: 'failed',
      failure: 'Error: diverged',
      endedAt: 2004,
      createdAt: 1000,
      tags: ['keep'],
      fields: [{ path: 'parameters/lr', type: 'float', value: '0.01' }],
    });
    expect(left.series).toEqual([
      expect.objectContaining({ path: 'metrics/acc', count: 2, lastStep: 1, last: 0.2 }),
    ]);
  });

  it('breaks a tie in time by op id, the same way in both orders', async () => {
    const run = opsFor('p');
    const low = run.field(5000, 'x', 'string', 'low');
    const high = run.field(5000, 'x', 'string', 'high');
    const one = await fresh();
    const two = await fresh();
    await client(one.url, one.token).ops([low, high]);
    await client(two.url, two.token).ops([high, low]);

    for (const server of [one, two]) {
      const detail = await client(server.url, server.token).get(`/api/v1/runs/${run.runId}`);
      expect(detail.body.fields).toEqual([{ path: 'x', type: 'string', value: 'high' }]);
    }
  });

  it('creates a run first seen through another op and fills it in when run.create arrives', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const run = opsFor('team/mnist');
    const create = run.create(1000, 'late-name');
    const field = run.field(3000, 'parameters/epochs', 'int', '10');

    await api.ops([field]);
    const before = await api.get(`/api/v1/runs/${run.runId}`);
    expect(before.body).toMatchObject({ name: null, state: 'running', createdAt: 3000 });

    await api.ops([create]);
    const after = await api.get(`/api/v1/runs/${run.runId}`);
    expect(after.body).toMatchObject({ name: 'late-name', createdAt: 1000, project: 'team/mnist' });
  });

  it('rejects a bad op with a code and still applies the rest of the batch', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const run = opsFor('team/mnist');
    const good = run.field(1000, 'a', 'int', '1');
    const badPath = run.field(1001, 'a//b', 'int', '1');
    const badValue = run.field(1002, 'c', 'int', '1.5');
    const unknownKind = { ...run.create(1003), kind: 'run.teleport' } as unknown as Op;
    const badRun = { ...run.create(1004), runId: 'NOT-A-RUN' } as unknown as Op;
    const stringIntoFloat = run.points(1005, [
      { path: 'm', type: 'float', points: [[0, 1, 'fast' as never]] },
    ]);

    const answer = await api.ops([good, badPath, badValue, unknownKind, badRun, stringIntoFloat]);

    expect(answer.status).toBe(200);
    expect(answer.body.results.map((r) => [r.status, r.code])).toEqual([
      ['applied', undefined],
      ['rejected', 'invalid_path'],
      ['rejected', 'invalid_value'],
      ['rejected', 'unknown_kind'],
      ['rejected', 'invalid_run_id'],
      ['rejected', 'invalid_point'],
    ]);
    const again = await api.ops([badValue]);
    expect(again.body.results[0]).toMatchObject({ status: 'rejected', code: 'invalid_value' });
  });

  it('rejects points whose series already holds another type', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const run = opsFor('p');
    await api.ops([run.points(1, [{ path: 'log', type: 'string', points: [[0, 1, 'hello']] }])]);

    const answer = await api.ops([
      run.points(2, [{ path: 'log', type: 'float', points: [[1, 2, 1.5]] }]),
    ]);

    expect(answer.body.results[0]).toMatchObject({
      status: 'rejected',
      code: 'series_type_mismatch',
    });
    const series = await api.get(`/api/v1/runs/${run.runId}/series?path=log`);
    expect(series.body).toEqual({ path: 'log', type: 'string', points: [[0, 1, 'hello']] });
  });

  it("rejects a file.add or file series at a '.', '..' or backslash path with invalid_path", async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const run = opsFor('p');
    const digest = (await fileObjects(new Uint8Array(10))).manifestDigest;
    const bad = ['..', '.', '../evil', 'a/./b', 'a/..', 'a\\b'];
    const fileAdds = bad.map((path, i) => run.file(i, path, digest, 10));
    const filePoints = bad.map((path, i) =>
      run.points(10 + i, [{ path, type: 'file', points: [[0, 1, digest]] }]),
    );
    // The namespace rules alone hold for the other kinds of series: 'a/..' names no place on disk.
    const floats = run.points(20, [{ path: 'a/..', type: 'float', points: [[0, 1, 0.5]] }]);

    const answer = await api.ops([...fileAdds, ...filePoints, floats]);

    const results = answer.body.results;
    expect(results.slice(0, -1).map((r) => [r.status, r.code])).toEqual(
      [...bad, ...bad].map(() => ['rejected', 'invalid_path']),
    );
    expect(results.at(-1)).toMatchObject({ status: 'applied' });
    expect(results[0]?.reason).toContain("'..'");
  });

  it('keeps a run in the project it was first seen in', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const run = opsFor('alpha');
    await api.ops([run.create(1)]);

    const moved = { ...run.field(2, 'x', 'int', '1'), project: 'beta' };
    const answer = await api.ops([moved]);

    expect(answer.body.results[0]).toMatchObject({ status: 'rejected', code: 'project_mismatch' });
  });

  it('answers 400 for an envelope without ops, and for an op without an id', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);

    const noOps = await api.post('/api/v1/ops', { storeId: 's' });
    const noId = await api.post('/api/v1/ops', { storeId: 's', ops: [{ kind: 'run.create' }] });

    expect(noOps).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
    expect(noId).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
  });
});
