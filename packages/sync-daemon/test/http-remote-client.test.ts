import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { type Digest, getHasher, type OpId, type RunId } from '@tidemark/core';
import { HttpRemoteClient, RemoteError } from '@tidemark/sync-daemon';
import { afterEach, describe, expect, it } from 'vitest';

interface Hit {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

type Handler = (hit: Hit, res: ServerResponse) => void;

const TOKEN = 'tdm_secret_token_value_42';
const servers: Array<() => Promise<void>> = [];

afterEach(async () => {
  while (servers.length > 0) await servers.pop()?.();
});

/** A tiny HTTP server on 127.0.0.1 that records every request and lets `handler` answer. */
async function serve(handler: Handler): Promise<{ url: string; hits: Hit[] }> {
  const hits: Hit[] = [];
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => {
      const hit = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(parts),
      };
      hits.push(hit);
      handler(hit, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits };
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function client(
  url: string,
  extra: Partial<ConstructorParameters<typeof HttpRemoteClient>[0]> = {},
) {
  return new HttpRemoteClient({ url, token: TOKEN, getRetries: 0, ...extra });
}

const op = {
  id: 'w1-1' as OpId,
  runId: '0000000000aaaaaaaaaaaaaaaa' as RunId,
  project: 'p',
  at: 1,
  kind: 'tags.add' as const,
  tags: ['x'],
};

function expectNoSecrets(error: unknown): void {
  for (const text of [String(error), JSON.stringify(error), inspect(error, { depth: 10 })]) {
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain('SECRET-BODY');
  }
}

describe('HttpRemoteClient', () => {
  it('sends the token on every call but health and reads the answers', async () => {
    const bytes = Buffer.from('chunk bytes');
    const digest = (await getHasher()).digest(bytes);
    const { url, hits } = await serve((hit, res) => {
      if (hit.url === '/api/v1/health') return json(res, 200, { ok: true, protocol: 1 });
      if (hit.url === '/api/v1/ops')
        return json(res, 200, { results: [{ id: op.id, status: 'applied' }] });
      if (hit.url === '/api/v1/chunks/missing') return json(res, 200, { missing: [digest] });
      if (hit.method === 'PUT') return json(res, 201, { stored: true });
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(bytes);
    });
    const remote = client(`${url}/`);

    expect(await remote.health()).toEqual({ ok: true, protocol: 1 });
    expect(await remote.sendOps({ storeId: 's', ops: [op] })).toEqual({
      results: [{ id: op.id, status: 'applied' }],
    });
    expect(await remote.missingChunks('team/a', [digest])).toEqual([digest]);
    expect(await remote.putChunk('team/a', digest, bytes)).toEqual({ stored: true });
    expect(await remote.getChunk('team/a', digest)).toEqual(bytes);

    expect(hits[0]?.headers.authorization).toBeUndefined();
    for (const hit of hits.slice(1)) expect(hit.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(JSON.parse(hits[1]?.body.toString() ?? '')).toEqual({ storeId: 's', ops: [op] });
    expect(hits[3]).toMatchObject({
      method: 'PUT',
      url: `/api/v1/chunks/${digest}?project=team%2Fa`,
    });
    expect(hits[3]?.headers['content-type']).toBe('application/octet-stream');
    expect(hits[3]?.body).toEqual(bytes);
  });

  it('maps 401 and 403 to auth_failed, not retryable, with the token nowhere in the error', async () => {
    const { url } = await serve((hit, res) =>
      json(res, hit.url === '/api/v1/ops' ? 401 : 403, {
        error: { code: 'x', message: 'SECRET-BODY' },
      }),
    );
    const remote = client(url);

    const refused = await remote.sendOps({ storeId: 's', ops: [op] }).catch((e: unknown) => e);
    const forbidden = await remote
      .missingChunks('p', ['0'.repeat(32) as Digest])
      .catch((e: unknown) => e);

    expect(refused).toBeInstanceOf(RemoteError);
    expect(refused).toMatchObject({ code: 'auth_failed', status: 401, retryable: false });
    expect((refused as RemoteError).message).toBe(
      'POST /api/v1/ops answered 401: the token was refused',
    );
    expect((refused as RemoteError).hint).toMatch(/TIDEMARK_API_TOKEN/);
    expect(forbidden).toMatchObject({ code: 'auth_failed', status: 403 });
    expectNoSecrets(refused);
    expectNoSecrets(forbidden);
  });

  it('maps 503 to a retryable server_error carrying Retry-After, and never retries a POST', async () => {
    const { url, hits } = await serve((_hit, res) =>
      json(res, 503, { error: { code: 'busy', message: 'SECRET-BODY' } }, { 'retry-after': '7' }),
    );

    const error = await client(url, { getRetries: 3 })
      .sendOps({ storeId: 's', ops: [op] })
      .catch((e: unknown) => e);

    expect(error).toMatchObject({
      code: 'server_error',
      status: 503,
      retryAfterMs: 7_000,
      retryable: true,
    });
    expect(hits).toHaveLength(1);
    expectNoSecrets(error);
  });

  it('reads a Retry-After date against the injected clock', async () => {
    const now = Date.UTC(2025, 0, 1, 12, 0, 0);
    const { url } = await serve((_hit, res) =>
      json(res, 429, {}, { 'retry-after': new Date(now + 90_000).toUTCString() }),
    );

    const error = await client(url, { clock: () => now })
      .whoami()
      .catch((e: unknown) => e);

    expect(error).toMatchObject({ code: 'server_error', status: 429, retryAfterMs: 90_000 });
  });

  it('retries a GET that met a 503 and answers once the server recovers', async () => {
    let calls = 0;
    const { url, hits } = await serve((_hit, res) => {
      calls += 1;
      if (calls === 1) return json(res, 503, {});
      json(res, 200, { token: 't1', projects: ['*'] });
    });

    const answer = await client(url, { getRetries: 2, maxRetryDelayMs: 10 }).whoami();

    expect(answer).toEqual({ token: 't1', projects: ['*'] });
    expect(hits).toHaveLength(2);
  });

  it('maps another 4xx to rejected with the server code but none of the body text', async () => {
    const { url } = await serve((_hit, res) =>
      json(res, 400, { error: { code: 'digest_mismatch', message: 'SECRET-BODY' } }),
    );

    const error = await client(url)
      .putChunk('p', `${'0'.repeat(32)}-3` as Digest, Buffer.from('abc'))
      .catch((e: unknown) => e);

    expect(error).toMatchObject({
      code: 'rejected',
      status: 400,
      serverCode: 'digest_mismatch',
      retryable: false,
    });
    expect((error as RemoteError).message).toMatch(/^PUT \/api\/v1\/chunks\/0+-3 answered 400/);
    expectNoSecrets(error);
  });

  it('maps a refused connection to unreachable with the hint that nothing was lost', async () => {
    const { url } = await serve(() => {});
    await servers.pop()?.();

    const error = await client(url)
      .sendOps({ storeId: 's', ops: [op] })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({ code: 'unreachable', retryable: true });
    expect((error as RemoteError).message).toContain('ECONNREFUSED');
    expect((error as RemoteError).hint).toBe(
      'nothing was lost; run `tidemark sync` again later, or keep `tidemark daemon start` ' +
        'running to retry by itself',
    );
    expectNoSecrets(error);
  });

  it('maps a server that never answers to unreachable once the response timeout passes', async () => {
    const { url } = await serve(() => {});

    const error = await client(url, { timeouts: { responseMs: 200 } })
      .sendOps({ storeId: 's', ops: [op] })
      .catch((e: unknown) => e);

    expect(error).toMatchObject({ code: 'unreachable', retryable: true });
    expect((error as RemoteError).message).toContain('timeout');
    expectNoSecrets(error);
  });

  it('maps answers that are not the protocol to protocol errors', async () => {
    const { url } = await serve((hit, res) => {
      if (hit.url === '/api/v1/health') {
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end('<html>captive portal</html>');
      }
      if (hit.url === '/api/v1/ops') return json(res, 200, { results: [] });
      if (hit.url === '/api/v1/whoami') {
        res.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' });
        return res.end();
      }
      res.writeHead(200);
      res.end('not the bytes');
    });
    const remote = client(url);

    await expect(remote.health()).rejects.toMatchObject({ code: 'protocol', retryable: true });
    await expect(remote.sendOps({ storeId: 's', ops: [op] })).rejects.toMatchObject({
      code: 'protocol',
      message: expect.stringContaining('expected 1 results'),
    });
    await expect(remote.whoami()).rejects.toMatchObject({
      code: 'protocol',
      message: expect.stringContaining('302'),
    });
    const digest = (await getHasher()).digest(Buffer.from('the bytes'));
    await expect(remote.getChunk('p', digest)).rejects.toMatchObject({
      code: 'protocol',
      message: expect.stringContaining('damaged'),
    });
  });

  it('decodes a run and its series from the server exactly', async () => {
    const runId = '0000000000bbbbbbbbbbbbbbbb';
    const { url, hits } = await serve((hit, res) => {
      if (hit.url.startsWith(`/prefix/api/v1/runs/${runId}/series`)) {
        return json(res, 200, {
          path: 'm',
          type: 'float',
          points: [
            [0, 1, 'NaN'],
            [1, 2, '-0'],
            [2, 3, 0.5],
          ],
        });
      }
      json(res, 200, {
        id: runId,
        project: 'p',
        name: null,
        state: 'finished',
        createdAt: 1,
        endedAt: 2,
        tags: ['t'],
        description: null,
        failure: null,
        forkOf: null,
        forkStep: null,
        host: null,
        fields: [{ path: 'big', type: 'int', value: '9007199254740993' }],
        series: [
          {
            path: 'm',
            type: 'float',
            count: 3,
            lastStep: 2,
            last: 0.5,
            min: '-0',
            max: 'Infinity',
            nanCount: 1,
          },
        ],
        files: [],
      });
    });
    const remote = client(`${url}/prefix`);

    const run = await remote.getRun(runId);
    const series = await remote.getSeries(runId, 'metrics/a b');

    expect(run.fields).toEqual([{ path: 'big', type: 'int', value: 9007199254740993n }]);
    expect(Object.is(run.series[0]?.min, -0)).toBe(true);
    expect(run.series[0]?.max).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(series.points[0]?.value)).toBe(true);
    expect(Object.is(series.points[1]?.value, -0)).toBe(true);
    expect(hits[1]?.url).toBe(`/prefix/api/v1/runs/${runId}/series?path=metrics%2Fa+b`);
  });

  it('refuses unknown options and a token a header cannot carry, without repeating the token', () => {
    expect(() => new HttpRemoteClient({ url: 'http://127.0.0.1:1', tokn: 'x' } as never)).toThrow(
      /tokn/,
    );
    expect(
      () => new HttpRemoteClient({ url: 'http://127.0.0.1:1', timeouts: { connect: 5 } as never }),
    ).toThrow(/timeouts.connect/);
    const bad = `${TOKEN}\n`;
    let error: unknown;
    try {
      new HttpRemoteClient({ url: 'http://127.0.0.1:1', token: bad });
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ code: 'invalid_token' });
    expectNoSecrets(error);
  });
});
