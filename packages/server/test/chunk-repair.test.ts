import { randomBytes } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Digest, getHasher } from '@tidemark/core';
import { CHUNKS_DIR, createToken } from '@tidemark/server';
import { afterEach, describe, expect, it } from 'vitest';
import { chunkPath } from '../src/chunk-layout.js';
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

/** Overwrites a project's stored copy in place, as a failing disk would. */
function damage(server: TestServer, project: string, digest: Digest): string {
  const path = chunkPath(join(server.dataDir, CHUNKS_DIR), project, digest);
  chmodSync(path, 0o644);
  writeFileSync(path, randomBytes(readFileSync(path).length));
  return path;
}

function setAside(server: TestServer): string[] {
  try {
    return readdirSync(join(server.dataDir, 'corrupt-chunks'), { recursive: true }) as string[];
  } catch {
    return [];
  }
}

async function postBatch(server: TestServer, project: string, parts: Buffer[]) {
  const hasher = await getHasher();
  const digests = parts.map((part) => hasher.digest(part)).join(',');
  const response = await fetch(
    `${server.url}/api/v1/chunks/batch?project=${project}&digests=${digests}`,
    {
      method: 'POST',
      headers: {
        authorization: `Bearer ${server.token}`,
        'content-type': 'application/octet-stream',
      },
      body: Buffer.concat(parts),
    },
  );
  return { status: response.status, body: await response.json() };
}

describe('repairing a damaged chunk', () => {
  it('replaces a damaged copy when the project uploads the intact bytes again with PUT', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const bytes = randomBytes(4000);
    const digest = (await getHasher()).digest(bytes);
    await api.put(`/api/v1/chunks/${digest}?project=team/a`, bytes);
    const path = damage(server, 'team/a', digest);

    const again = await api.put(`/api/v1/chunks/${digest}?project=team/a`, bytes);

    expect(again).toEqual({ status: 201, body: { stored: true } });
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(setAside(server)).toHaveLength(2);
    const back = await api.getBytes(`/api/v1/chunks/${digest}?project=team/a`);
    expect(back.bytes.equals(bytes)).toBe(true);
  });

  it('replaces a damaged copy when the project uploads the intact bytes again in a batch', async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const hasher = await getHasher();
    const [intact, damaged] = [randomBytes(3000), randomBytes(5000)];
    await postBatch(server, 'team/a', [intact, damaged]);
    const path = damage(server, 'team/a', hasher.digest(damaged));

    const again = await postBatch(server, 'team/a', [intact, damaged]);

    expect(again).toEqual({ status: 200, body: { stored: 1, refused: [] } });
    expect(readFileSync(path).equals(damaged)).toBe(true);
    expect(setAside(server)).toHaveLength(2);
    const back = await api.getBytes(`/api/v1/chunks/${hasher.digest(damaged)}?project=team/a`);
    expect(back.bytes.equals(damaged)).toBe(true);
  });

  it("leaves project A's damaged copy to A when B uploads the same bytes", async () => {
    const server = await fresh();
    const a = client(server.url, createToken(server.dataDir, { projects: ['team/a'] }).token);
    const b = client(server.url, createToken(server.dataDir, { projects: ['team/b'] }).token);
    const bytes = randomBytes(2500);
    const digest = (await getHasher()).digest(bytes);
    await a.put(`/api/v1/chunks/${digest}?project=team/a`, bytes);
    damage(server, 'team/a', digest);

    const uploadB = await b.put(`/api/v1/chunks/${digest}?project=team/b`, bytes);
    const readA = await a.get(`/api/v1/chunks/${digest}?project=team/a`);
    const readAgainA = await a.get(`/api/v1/chunks/${digest}?project=team/a`);
    const askA = await a.post('/api/v1/chunks/missing', { project: 'team/a', digests: [digest] });
    const repairA = await a.put(`/api/v1/chunks/${digest}?project=team/a`, bytes);

    expect(uploadB).toEqual({ status: 201, body: { stored: true } });
    expect(readA).toMatchObject({ status: 404, body: { error: { code: 'chunk_corrupt' } } });
    // Set aside by that read, the chunk is now one A does not hold, and the answer says how
    // to send it again.
    expect(readAgainA).toMatchObject({ status: 404, body: { error: { code: 'chunk_not_found' } } });
    expect(readAgainA.body.error.hint).toContain("'tidemark sync --resend <run>' (project team/a)");
    expect(askA.body).toEqual({ missing: [digest] });
    expect(repairA).toEqual({ status: 201, body: { stored: true } });
    const backA = await a.getBytes(`/api/v1/chunks/${digest}?project=team/a`);
    expect(backA.bytes.equals(bytes)).toBe(true);
  });

  it("serves each project's run files from that project's own copies", async () => {
    const server = await fresh();
    const api = client(server.url, server.token);
    const content = randomBytes(3000);
    const objects = await fileObjects(content);
    const runs = { 'team/a': opsFor('team/a'), 'team/b': opsFor('team/b') };
    for (const [project, run] of Object.entries(runs)) {
      for (const chunk of objects.chunks) {
        await api.put(`/api/v1/chunks/${chunk.digest}?project=${project}`, chunk.bytes);
      }
      await api.put(
        `/api/v1/chunks/${objects.manifestDigest}?project=${project}`,
        objects.manifestBytes,
      );
      await api.ops([run.create(0), run.file(1, 'weights', objects.manifestDigest, 3000)]);
    }
    const [first] = objects.chunks;
    damage(server, 'team/a', first?.digest as Digest);

    const fileB = await api.getBytes(`/api/v1/runs/${runs['team/b'].runId}/files/weights`);
    const fileA = await fetch(`${server.url}/api/v1/runs/${runs['team/a'].runId}/files/weights`, {
      headers: { authorization: `Bearer ${server.token}` },
    })
      .then((response) => response.arrayBuffer())
      .then(
        () => 'whole',
        () => 'cut',
      );

    expect(fileB.status).toBe(200);
    expect(fileB.bytes.equals(content)).toBe(true);
    // A's first chunk is found damaged as it streams: the answer is cut, never wrong bytes.
    expect(fileA).toBe('cut');
    expect(setAside(server)).toHaveLength(2);
  });
});
