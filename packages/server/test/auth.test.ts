import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createToken, ensureInitialToken, listTokens, revokeToken } from '@tidemark/server';
import { afterEach, describe, expect, it } from 'vitest';
import { client, fileObjects, opsFor, startServer, type TestServer, tempDir } from './harness.js';

const servers: TestServer[] = [];
const folders: string[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

async function fresh(): Promise<TestServer> {
  const server = await startServer();
  servers.push(server);
  return server;
}

describe('authentication', () => {
  it('answers health without a token', async () => {
    const server = await fresh();
    const health = await client(server.url, undefined).get('/api/v1/health');
    expect(health).toEqual({ status: 200, body: { ok: true, protocol: 1 } });
  });

  it('answers 401 to a missing, malformed, unknown or wrong-secret token', async () => {
    const server = await fresh();
    const [, id] = server.token.split('_');
    const wrongSecret = `tdm_${id}_${'0'.repeat(64)}`;
    const unknownId = `tdm_000000000000_${server.token.split('_')[2]}`;

    for (const token of [undefined, 'hello', wrongSecret, unknownId]) {
      const answer = await client(server.url, token).get('/api/v1/runs');
      expect(answer.status).toBe(401);
      expect(answer.body.error.code).toBe('unauthorized');
      expect(JSON.stringify(answer.body)).not.toContain(server.token.split('_')[2]);
    }
    const basic = await fetch(`${server.url}/api/v1/runs`, {
      headers: { authorization: `Basic ${server.token}` },
    });
    expect(basic.status).toBe(401);
  });

  it('stops accepting a token as soon as it is revoked', async () => {
    const server = await fresh();
    const created = createToken(server.dataDir, { projects: ['team/a'], label: 'ci' });
    const api = client(server.url, created.token);
    expect((await api.get('/api/v1/whoami')).body).toEqual({
      token: created.id,
      projects: ['team/a'],
    });

    revokeToken(server.dataDir, created.id);

    expect((await api.get('/api/v1/whoami')).status).toBe(401);
  });
});

describe('per-project authorization', () => {
  it('rejects ops for a project the token does not hold and applies its own', async () => {
    const server = await fresh();
    const scoped = createToken(server.dataDir, { projects: ['team/a'] });
    const mine = opsFor('team/a');
    const theirs = opsFor('team/b');

    const answer = await client(server.url, scoped.token).ops([mine.create(1), theirs.create(2)]);

    expect(answer.body.results.map((r) => [r.status, r.code])).toEqual([
      ['applied', undefined],
      ['rejected', 'forbidden'],
    ]);
  });

  it("cannot write into another project's run by naming its own project", async () => {
    const server = await fresh();
    const admin = client(server.url, server.token);
    const victim = opsFor('team/b');
    await admin.ops([victim.create(1)]);
    const scoped = createToken(server.dataDir, { projects: ['team/a'] });
    const intruder = { ...victim.field(2, 'x', 'string', 'pwned'), project: 'team/a' };
    const probe = opsFor('team/a').field(3, 'x', 'string', 'y');
    const unknownRun = { ...probe, runId: opsFor('team/a').runId };

    const answer = await client(server.url, scoped.token).ops([intruder, unknownRun]);

    expect(answer.body.results[0]).toMatchObject({ status: 'rejected', code: 'forbidden' });
    expect(answer.body.results[1]).toMatchObject({ status: 'applied' });
    const detail = await admin.get(`/api/v1/runs/${victim.runId}`);
    expect(detail.body.fields).toEqual([]);
  });

  it('answers 404 for a run of another project, exactly as for a run that does not exist', async () => {
    const server = await fresh();
    const admin = client(server.url, server.token);
    const other = opsFor('team/b');
    await admin.ops([
      other.create(1),
      other.points(2, [{ path: 'm', type: 'float', points: [[0, 2, 1]] }]),
    ]);
    const scoped = client(server.url, createToken(server.dataDir, { projects: ['team/a'] }).token);

    const hidden = await scoped.get(`/api/v1/runs/${other.runId}`);
    const absent = await scoped.get(`/api/v1/runs/${opsFor('team/b').runId}`);
    const series = await scoped.get(`/api/v1/runs/${other.runId}/series?path=m`);

    expect(hidden.status).toBe(404);
    expect(series.status).toBe(404);
    expect(hidden.body.error.code).toBe(absent.body.error.code);
  });

  it('lists only the runs of the projects a token holds, and 403s a project it names', async () => {
    const server = await fresh();
    const admin = client(server.url, server.token);
    const a = opsFor('team/a');
    const b = opsFor('team/b');
    await admin.ops([a.create(1), b.create(2)]);
    const scoped = client(server.url, createToken(server.dataDir, { projects: ['team/a'] }).token);

    const all = await scoped.get('/api/v1/runs');
    const named = await scoped.get('/api/v1/runs?project=team/b');

    expect(all.body.runs.map((r: { id: string }) => r.id)).toEqual([a.runId]);
    expect(named.status).toBe(403);
    expect((await admin.get('/api/v1/runs')).body.runs).toHaveLength(2);
  });

  it("answers 403 to chunk requests for another project's content", async () => {
    const server = await fresh();
    const scoped = client(server.url, createToken(server.dataDir, { projects: ['team/a'] }).token);
    const { chunks } = await fileObjects(Buffer.from('weights'));
    const [chunk] = chunks;

    const missing = await scoped.post('/api/v1/chunks/missing', {
      project: 'team/b',
      digests: [chunk?.digest],
    });
    const put = await scoped.put(
      `/api/v1/chunks/${chunk?.digest}?project=team/b`,
      chunk?.bytes as Uint8Array,
    );
    const get = await scoped.get(`/api/v1/chunks/${chunk?.digest}?project=team/b`);

    expect([missing.status, put.status, get.status]).toEqual([403, 403, 403]);
  });
});

describe('token administration', () => {
  it('creates an all-projects initial token once, readable by its owner only', () => {
    const dataDir = tempDir();
    folders.push(dataDir);

    const first = ensureInitialToken(dataDir);
    const second = ensureInitialToken(dataDir);

    expect(first).toEqual({ created: true, path: join(dataDir, 'initial-token') });
    expect(second.created).toBe(false);
    expect(statSync(first.path).mode & 0o777).toBe(0o600);
    expect(readFileSync(first.path, 'utf8')).toMatch(/^tdm_[0-9a-f]{12}_[0-9a-f]{64}\n$/);
    expect(listTokens(dataDir)).toEqual([
      expect.objectContaining({ projects: '*', label: 'initial', revokedAt: null }),
    ]);
  });

  it('stores a hash of the secret, never the secret', () => {
    const dataDir = tempDir();
    folders.push(dataDir);
    const created = createToken(dataDir, { projects: ['team/b', 'team/a', 'team/a'] });

    const secret = created.token.split('_')[2] as string;
    const db = readFileSync(join(dataDir, 'server.db'));
    const wal = readFileSync(join(dataDir, 'server.db-wal'), { flag: 'a+' });

    expect(created.projects).toEqual(['team/a', 'team/b']);
    expect(db.includes(secret)).toBe(false);
    expect(wal.includes(secret)).toBe(false);
  });

  it('refuses a token for a malformed project or an empty list, and revoking an unknown id', () => {
    const dataDir = tempDir();
    folders.push(dataDir);

    expect(() => createToken(dataDir, { projects: [] })).toThrow(
      expect.objectContaining({ code: 'invalid_option' }),
    );
    expect(() => createToken(dataDir, { projects: ['../etc'] })).toThrow(
      expect.objectContaining({ code: 'invalid_option' }),
    );
    expect(() => revokeToken(dataDir, 'nope')).toThrow(
      expect.objectContaining({ code: 'token_not_found' }),
    );
  });
});
