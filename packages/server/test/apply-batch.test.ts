import { afterEach, describe, expect, it } from 'vitest';
import { client, opsFor, startServer, type TestServer } from './harness.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

describe('applying float points in batches', () => {
  it('keeps every point, in order and exact, across batch boundaries', async () => {
    const server = await startServer();
    servers.push(server);
    const api = client(server.url, server.token);
    const run = opsFor('team/a');
    const special = ['NaN', 'Infinity', '-Infinity', '-0'] as const;
    const points = Array.from(
      { length: 64 * 3 + 17 },
      (_, i): [number, number, number | string] => [i, 1000 + i, special[i % 50] ?? i / 3],
    );

    const answer = await api.ops([
      run.points(1000, [{ path: 'loss', type: 'float', points }]),
      run.points(1001, [{ path: 'loss', type: 'float', points: [[500, 2000, 0.5]] }]),
    ]);
    const series = await api.get(`/api/v1/runs/${run.runId}/series?path=loss`);

    expect(answer.body.results.map((r) => r.status)).toEqual(['applied', 'applied']);
    expect(series.body.points).toEqual([...points, [500, 2000, 0.5]]);
  });

  it('forgets a series a rejected op created, so a later op of the request cannot use it', async () => {
    const server = await startServer();
    servers.push(server);
    const api = client(server.url, server.token);
    const run = opsFor('team/a');
    const missing = `${'0'.repeat(32)}-10`;

    const answer = await api.ops([
      run.points(1000, [
        { path: 'fresh', type: 'float', points: [[0, 1000, 1]] },
        { path: 'images', type: 'file', points: [[0, 1000, missing]] },
      ]),
      run.points(1001, [{ path: 'fresh', type: 'float', points: [[1, 1001, 2]] }]),
    ]);
    const series = await api.get(`/api/v1/runs/${run.runId}/series?path=fresh`);

    expect(answer.body.results.map((r) => r.status)).toEqual(['rejected', 'applied']);
    expect(series.body.points).toEqual([[1, 1001, 2]]);
  });
});
