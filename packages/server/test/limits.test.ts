import { randomBytes } from 'node:crypto';
import { getHasher } from '@tidemark/core';
import { afterEach, describe, expect, it } from 'vitest';
import { client, opsFor, startServer, type TestServer } from './harness.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

async function fresh(limits = {}): Promise<TestServer> {
  const server = await startServer({ limits });
  servers.push(server);
  return server;
}

describe('request limits', () => {
  it('answers 413 to an ops body over the limit and closes the connection', async () => {
    const server = await fresh({ maxOpsBodyBytes: 2048 });
    const api = client(server.url, server.token);
    const run = opsFor('p');

    const big = await fetch(`${server.url}/api/v1/ops`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ storeId: 's', ops: [run.field(1, 'x', 'string', 'y'.repeat(4096))] }),
    });
    const small = await api.ops([run.field(2, 'x', 'string', 'y')]);

    expect(big.status).toBe(413);
    expect(big.headers.get('connection')).toBe('close');
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('body_too_large');
    expect(small.body.results[0]?.status).toBe('applied');
  });

  it('answers 413 to a streamed body of undeclared length once it passes the limit', async () => {
    const server = await fresh({ maxOpsBodyBytes: 4096 });
    const pieces = [
      Buffer.from('{"storeId":"s","ops":['),
      Buffer.alloc(8192, 0x20),
      Buffer.from(']}'),
    ];
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = pieces.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(next);
      },
    });

    const answer = await fetch(`${server.url}/api/v1/ops`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.token}` },
      body,
      duplex: 'half',
    } as RequestInit);

    expect(answer.status).toBe(413);
  });

  it('answers 413 to a chunk larger than the chunk limit', async () => {
    const server = await fresh({ maxChunkBytes: 1024 });
    const api = client(server.url, server.token);
    const bytes = randomBytes(2048);
    const digest = (await getHasher()).digest(bytes);

    const answer = await api.put(`/api/v1/chunks/${digest}?project=p`, bytes);

    expect(answer).toMatchObject({ status: 413, body: { error: { code: 'body_too_large' } } });
  });

  it('refuses more ops or digests per request than allowed', async () => {
    const server = await fresh({ maxOpsPerRequest: 3, maxDigestsPerRequest: 2 });
    const api = client(server.url, server.token);
    const run = opsFor('p');
    const digest = (await getHasher()).digest(Buffer.from('x'));

    const ops = await api.ops([1, 2, 3, 4].map((at) => run.field(at, 'x', 'int', String(at))));
    const digests = await api.post('/api/v1/chunks/missing', {
      project: 'p',
      digests: [digest, digest, digest],
    });

    expect(ops).toMatchObject({ status: 400, body: { error: { code: 'too_many_ops' } } });
    expect(digests).toMatchObject({ status: 400, body: { error: { code: 'too_many_digests' } } });
  });

  it('answers 400 invalid_json to a malformed or empty body', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);

    const malformed = await api.post('/api/v1/ops', '{"storeId": "s", "ops": [');
    const empty = await api.post('/api/v1/ops', '');
    const missing = await api.post('/api/v1/chunks/missing', 'not json');

    for (const answer of [malformed, empty, missing]) {
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBe('invalid_json');
    }
  });

  it('answers 404 to an unknown endpoint, 405 to a wrong method, 400 to a bad digest', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);

    const unknown = await api.get('/api/v2/ops');
    const wrongMethod = await api.get('/api/v1/ops');
    const badDigest = await api.get('/api/v1/chunks/not-a-digest?project=p');
    const badProject = await api.get('/api/v1/runs?project=../x');

    expect(unknown.status).toBe(404);
    expect(wrongMethod.status).toBe(405);
    expect(badDigest).toMatchObject({ status: 400, body: { error: { code: 'invalid_digest' } } });
    expect(badProject).toMatchObject({ status: 400, body: { error: { code: 'invalid_project' } } });
  });

  it('refuses unknown options and limits with a hint naming the known ones', async () => {
    const { createServer } = await import('@tidemark/server');
    expect(() =>
      createServer({ dataDir: '/nonexistent', limits: { maxOpsPerRequests: 5 } } as never),
    ).toThrow(
      expect.objectContaining({
        code: 'invalid_option',
        hint: expect.stringContaining('maxOpsPerRequest'),
      }),
    );
    expect(() => createServer({ dataDir: '/nonexistent', dataDirectory: 'x' } as never)).toThrow(
      expect.objectContaining({ code: 'invalid_option' }),
    );
  });
});
