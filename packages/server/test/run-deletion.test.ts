import { createToken } from '@tidemark/server';
import { afterEach, describe, expect, it } from 'vitest';
import { client, opsFor, startServer, type TestServer } from './harness.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

const floats = (from: number, count: number) => ({
  path: 'metrics/loss',
  type: 'float' as const,
  points: Array.from({ length: count }, (_, i): [number, number, number] => [
    from + i,
    1000 + i,
    i / 10,
  ]),
});

describe('DELETE /api/v1/runs/<id>', () => {
  it('removes the run and refuses every op of it with run_deleted, so it never comes back', async () => {
    const server = await startServer();
    servers.push(server);
    const api = client(server.url, server.token);
    const run = opsFor('team/a');
    const early = [run.create(1000), run.points(1001, [floats(0, 3)])];
    await api.ops(early);

    const deleted = await fetch(`${server.url}/api/v1/runs/${run.runId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${server.token}` },
    });
    const late = await api.ops([run.points(1002, [floats(3, 2)]), run.state(1003, 'finished')]);
    const again = await api.ops(early);

    expect(deleted.status).toBe(200);
    expect(late.body.results.map((r) => [r.status, r.code])).toEqual([
      ['rejected', 'run_deleted'],
      ['rejected', 'run_deleted'],
    ]);
    expect(again.body.results.map((r) => r.code)).toEqual(['run_deleted', 'run_deleted']);
    expect((await api.get(`/api/v1/runs/${run.runId}`)).status).toBe(404);
  });

  it('answers 404 for a run of a project the token cannot see, and deletes nothing', async () => {
    const server = await startServer();
    servers.push(server);
    const run = opsFor('team/a');
    await client(server.url, server.token).ops([run.create(1000)]);
    const other = createToken(server.dataDir, { projects: ['team/b'] }).token;

    const refused = await fetch(`${server.url}/api/v1/runs/${run.runId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${other}` },
    });
    const late = await client(server.url, other).ops([run.state(1001, 'finished')]);

    expect(refused.status).toBe(404);
    expect((await client(server.url, server.token).get(`/api/v1/runs/${run.runId}`)).status).toBe(
      200,
    );
    expect(late.body.results[0]?.code).toBe('forbidden');
  });
});
