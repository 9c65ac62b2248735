import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { join } from 'node:path';
import { type Digest, getHasher } from '@tidemark/core';
import { createToken } from '@tidemark/server';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { client, startServer, type TestServer } from './harness.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

async function fresh(limits = {}): Promise<TestServer> {
  const server = await startServer({ limits });
  servers.push(server);
  return server;
}

async function chunks(...sizes: number[]): Promise<Array<{ digest: Digest; bytes: Buffer }>> {
  const hasher = await getHasher();
  return sizes.map((size) => {
    const bytes = randomBytes(size);
    return { digest: hasher.digest(bytes), bytes };
  });
}

function batchPath(project: string, digests: readonly Digest[]): string {
  return `/api/v1/chunks/batch?project=${project}&digests=${digests.join(',')}`;
}

async function postBatch(server: TestServer, path: string, body: Buffer, token = server.token) {
  const response = await fetch(server.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body,
  });
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked by assertions, not by types.
  const answer: any = await response.json();
  return { status: response.status, body: answer };
}

async function missing(server: TestServer, project: string, digests: readonly Digest[]) {
  const answer = await client(server.url, server.token).post('/api/v1/chunks/missing', {
    project,
    digests,
  });
  return answer.body.missing as Digest[];
}

describe('chunk batches', () => {
  it('stores every chunk of a batch and answers how many were new', async () => {
    const server = await fresh();
    const parts = await chunks(3000, 1, 70_000, 0);
    const digests = parts.map((part) => part.digest);
    const body = Buffer.concat(parts.map((part) => part.bytes));

    const first = await postBatch(server, batchPath('p', digests), body);
    const again = await postBatch(server, batchPath('p', digests), body);
    const back = await client(server.url, server.token).getBytes(
      `/api/v1/chunks/${digests[2]}?project=p`,
    );

    expect(first).toEqual({ status: 200, body: { stored: 4, refused: [] } });
    expect(again).toEqual({ status: 200, body: { stored: 0, refused: [] } });
    expect(await missing(server, 'p', digests)).toEqual([]);
    expect(back.bytes.equals(parts[2]?.bytes as Buffer)).toBe(true);
  });

  it('refuses only the chunk whose bytes do not match, and keeps the others', async () => {
    const server = await fresh();
    const parts = await chunks(5000, 6000, 7000);
    const digests = parts.map((part) => part.digest);
    const body = Buffer.concat(parts.map((part) => part.bytes));
    body[5000 + 17] = (body[5000 + 17] as number) ^ 0xff;

    const answer = await postBatch(server, batchPath('p', digests), body);

    expect(answer.status).toBe(200);
    expect(answer.body.stored).toBe(2);
    expect(answer.body.refused).toEqual([
      { digest: digests[1], code: 'digest_mismatch', message: expect.any(String) },
    ]);
    expect(await missing(server, 'p', digests)).toEqual([digests[1]]);
  });

  it('keeps the chunks that arrived whole when the body breaks off, and not the one it was cut in', async () => {
    const server = await fresh();
    const parts = await chunks(100_000, 100_000, 100_000);
    const digests = parts.map((part) => part.digest);
    const [first, second] = parts.map((part) => part.bytes) as [Buffer, Buffer];
    const url = new URL(server.url + batchPath('p', digests));

    // Announces three chunks, sends one and a half, then resets the connection.
    const req = request(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.token}`, 'content-length': String(300_000) },
    });
    req.on('error', () => {});
    req.write(Buffer.concat([first, second.subarray(0, 50_000)]));
    // Waits until the first chunk is recorded, read from the database as another process would:
    // a presence answer would wait for the batch to end.
    await untilHeld(server, 'p', 1);
    req.destroy();

    expect(await missing(server, 'p', digests)).toEqual([digests[1], digests[2]]);
  });

  it('refuses a body longer or shorter than the chunks it names, before keeping anything wrong', async () => {
    const server = await fresh();
    const parts = await chunks(4000, 4000);
    const digests = parts.map((part) => part.digest);
    const whole = Buffer.concat(parts.map((part) => part.bytes));

    const longer = await postBatch(server, batchPath('p', digests), Buffer.concat([whole, whole]));
    const shorter = await postBatch(server, batchPath('p', digests), whole.subarray(0, 7000));

    expect(longer).toMatchObject({ status: 400, body: { error: { code: 'digest_mismatch' } } });
    expect(shorter).toMatchObject({ status: 400, body: { error: { code: 'digest_mismatch' } } });
    expect(await missing(server, 'p', digests)).toEqual(digests);
  });

  it('checks the digest list, its count and size limits, and the project', async () => {
    const server = await fresh({ maxChunksPerBatch: 2, maxBatchBytes: 10_000 });
    const parts = await chunks(4000, 4000, 4000);
    const digests = parts.map((part) => part.digest);
    const body = Buffer.concat(parts.map((part) => part.bytes));
    const other = createToken(server.dataDir, { projects: ['team/b'] }).token;

    const none = await postBatch(server, '/api/v1/chunks/batch?project=p', body);
    const bad = await postBatch(server, batchPath('p', ['x' as Digest]), body);
    const many = await postBatch(server, batchPath('p', digests), body);
    const big = await chunks(12_000);
    const large = await postBatch(
      server,
      batchPath('p', [big[0]?.digest as Digest]),
      big[0]?.bytes as Buffer,
    );
    const forbidden = await postBatch(server, batchPath('p', digests.slice(0, 2)), body, other);

    expect(none).toMatchObject({ status: 400, body: { error: { code: 'missing_digests' } } });
    expect(bad).toMatchObject({ status: 400, body: { error: { code: 'invalid_digest' } } });
    expect(many).toMatchObject({ status: 400, body: { error: { code: 'too_many_digests' } } });
    expect(large).toMatchObject({ status: 413, body: { error: { code: 'body_too_large' } } });
    expect(forbidden).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
    expect(await missing(server, 'p', digests)).toEqual(digests);
  });
});

describe('a batch upload that stalls', () => {
  it('holds presence answers for its project no longer than the presence wait', async () => {
    const server = await fresh({ presenceWaitMs: 200 });
    const parts = await chunks(100_000, 100_000);
    const digests = parts.map((part) => part.digest);
    const [first, second] = parts.map((part) => part.bytes) as [Buffer, Buffer];
    const req = request(new URL(server.url + batchPath('p', digests)), {
      method: 'POST',
      headers: { authorization: `Bearer ${server.token}`, 'content-length': String(200_000) },
    });
    let answered = false;
    req.on('response', () => {
      answered = true;
    });
    req.on('error', () => {});
    // The first chunk whole, then a few bytes of the second, and nothing more.
    req.write(Buffer.concat([first, second.subarray(0, 10)]));
    await untilHeld(server, 'p', 1);

    const lacking = await missing(server, 'p', digests);

    expect(lacking).toEqual([digests[1]]);
    expect(answered).toBe(false);
    req.destroy();
  });
});

/** Resolves once the server has recorded `count` chunks of `project`. */
function untilHeld(server: TestServer, project: string, count: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const poll = (): void => {
      if (heldCount(server.dataDir, project) === count) resolve();
      else setImmediate(poll);
    };
    poll();
  });
}

function heldCount(dataDir: string, project: string): number {
  const db = new Database(join(dataDir, 'server.db'), { readonly: true });
  try {
    return db
      .prepare('SELECT count(*) FROM project_chunks WHERE project = ?')
      .pluck()
      .get(project) as number;
  } finally {
    db.close();
  }
}
