import { randomFillSync } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Digest, getRun, initRun, isDigest, openReadOnly, Store } from '@tidemark/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  parseEnvelope,
  type RunningServer,
  runCli,
  startServer,
} from '../../../test/cli-harness.js';

const folders: string[] = [];
const servers: RunningServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function temp(prefix = 'tidemark-cli-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  folders.push(dir);
  return dir;
}

function random(size: number): Buffer {
  return randomFillSync(Buffer.allocUnsafe(size));
}

interface Recorded {
  dir: string;
  runId: string;
  model: Buffer;
  folder: Map<string, Buffer>;
  frame: Buffer;
}

/** A store with one run: a 5 MiB file, a folder of two files, and a file series point. */
async function recordArtifacts(): Promise<Recorded> {
  const dir = join(temp(), '.tidemark');
  const work = temp();
  const model = random(5 * 1024 * 1024);
  const folder = new Map([
    ['config.json', Buffer.from('{"layers": 3}')],
    ['weights/part-0.bin', random(700_000)],
  ]);
  const frame = random(40_000);
  writeFileSync(join(work, 'model.bin'), model);
  mkdirSync(join(work, 'saved', 'weights'), { recursive: true });
  for (const [name, bytes] of folder) writeFileSync(join(work, 'saved', name), bytes);
  writeFileSync(join(work, 'frame.png'), frame);

  const run = await initRun({ project: 'team/cli', dir, captureContext: false, handleExit: false });
  await run.upload('model/best', join(work, 'model.bin'));
  await run.upload('model/saved', join(work, 'saved'));
  await run.logFile('samples', join(work, 'frame.png'), { step: 2 });
  await run.stop();
  return { dir, runId: run.id, model, folder, frame };
}

describe('tidemark get', () => {
  it('restores a file, a directory and a file series point from the local store', async () => {
    const { dir, runId, model, folder, frame } = await recordArtifacts();
    const out = temp();

    const file = await runCli(['get', runId, 'model/best', '--out', out, '--dir', dir, '--json']);
    const tree = await runCli(['get', runId, 'model/saved', '--out', out, '--dir', dir]);
    const point = await runCli([
      'get',
      runId,
      'samples',
      '--step',
      '2',
      '--out',
      out,
      '--dir',
      dir,
    ]);

    expect(file.code, file.stderr).toBe(0);
    expect(parseEnvelope<{ kind: string; remoteObjects: number }>(file.stdout).data).toMatchObject({
      kind: 'file',
      remoteObjects: 0,
    });
    expect(readFileSync(join(out, 'best')).equals(model)).toBe(true);
    expect(tree.code, tree.stderr).toBe(0);
    for (const [name, bytes] of folder) {
      expect(readFileSync(join(out, 'saved', name)).equals(bytes)).toBe(true);
    }
    expect(point.code, point.stderr).toBe(0);
    expect(readFileSync(join(out, 'samples-2')).equals(frame)).toBe(true);
  });

  it('downloads from the server what is not local, checking every chunk', async () => {
    const { dir, runId, model, folder } = await recordArtifacts();
    const server = await startServer(temp('tidemark-server-'));
    servers.push(server);
    const env = { TIDEMARK_API_TOKEN: server.token };
    const synced = await runCli(['sync', '--dir', dir, '--remote', server.url], env);
    expect(synced.code, synced.stderr).toBe(0);

    const elsewhere = join(temp(), '.tidemark');
    const out = temp();
    const remoteOnly = await runCli(
      [
        'get',
        runId,
        'model/best',
        '--out',
        out,
        '--dir',
        elsewhere,
        '--remote',
        server.url,
        '--json',
      ],
      env,
    );
    const lost = firstChunkOf(dir, runId, 'model/saved');
    rmSync(lost.path);
    const mixed = await runCli(
      ['get', runId, 'model/saved', '--out', out, '--dir', dir, '--remote', server.url, '--json'],
      env,
    );

    expect(remoteOnly.code, remoteOnly.stderr).toBe(0);
    expect(parseEnvelope<{ localObjects: number }>(remoteOnly.stdout).data.localObjects).toBe(0);
    expect(readFileSync(join(out, 'best')).equals(model)).toBe(true);
    expect(existsSync(elsewhere)).toBe(false);
    expect(mixed.code, mixed.stderr).toBe(0);
    const report = parseEnvelope<{ localObjects: number; remoteObjects: number }>(
      mixed.stdout,
    ).data;
    expect(report.remoteObjects).toBe(1);
    expect(report.localObjects).toBeGreaterThan(1);
    for (const [name, bytes] of folder) {
      expect(readFileSync(join(out, 'saved', name)).equals(bytes)).toBe(true);
    }
  });

  it('puts the objects get --remote downloaded back into the store, so verify passes after', async () => {
    const { dir, runId, model } = await recordArtifacts();
    const server = await startServer(temp('tidemark-server-'));
    servers.push(server);
    const env = { TIDEMARK_API_TOKEN: server.token };
    await runCli(['sync', '--dir', dir, '--remote', server.url], env);
    const damaged = modelChunkPath(dir, runId);
    chmodSync(damaged, 0o644);
    writeFileSync(damaged, random(1000));
    const before = await runCli(['verify', '--dir', dir, '--json']);

    const out = temp();
    const fetched = await runCli(
      ['get', runId, 'model/best', '--out', out, '--dir', dir, '--remote', server.url],
      env,
    );
    const after = await runCli(['verify', '--dir', dir, '--json']);

    expect(before.code).toBe(6);
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(fetched.stdout).toMatch(/put 1 downloaded objects back into the local store/);
    expect(readFileSync(join(out, 'best')).equals(model)).toBe(true);
    expect(after.code, after.stdout).toBe(0);
  });

  it('refuses to replace an existing target without --force and exits 3 for an unknown path', async () => {
    const { dir, runId } = await recordArtifacts();
    const out = temp();
    writeFileSync(join(out, 'best'), 'keep me');

    const refused = await runCli(['get', runId, 'model/best', '--out', out, '--dir', dir]);
    const afterRefusal = readFileSync(join(out, 'best'), 'utf8');
    const unknown = await runCli([
      'get',
      runId,
      'model/nope',
      '--out',
      out,
      '--dir',
      dir,
      '--json',
    ]);
    const forced = await runCli([
      'get',
      runId,
      'model/best',
      '--out',
      out,
      '--dir',
      dir,
      '--force',
    ]);

    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/already exists/);
    expect(afterRefusal).toBe('keep me');
    expect(unknown.code).toBe(3);
    expect(parseEnvelope(unknown.stdout).error?.code).toBe('file_not_found');
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(join(out, 'best'), 'utf8')).not.toBe('keep me');
  });
});

describe('tidemark gc', () => {
  it('removes unreferenced objects past the grace period and keeps what runs refer to', async () => {
    const { dir, runId, model } = await recordArtifacts();
    const orphan = join(temp(), 'orphan.bin');
    writeFileSync(orphan, random(2 * 1024 * 1024));
    const store = Store.open({ dir });
    await store.objects.snapshot(orphan);
    await store.close();
    const before = objectCount(dir);

    const young = await runCli(['gc', '--dir', dir, '--json']);
    const dry = await runCli(['gc', '--dir', dir, '--grace', '0', '--dry-run', '--json']);
    const afterDry = objectCount(dir);
    const real = await runCli(['gc', '--dir', dir, '--grace', '0']);
    const out = temp();
    const restored = await runCli(['get', runId, 'model/best', '--out', out, '--dir', dir]);

    expect(young.code, young.stderr).toBe(0);
    expect(parseEnvelope<{ removed: number; young: number }>(young.stdout).data).toMatchObject({
      removed: 0,
    });
    const wouldRemove = parseEnvelope<{ removed: number }>(dry.stdout).data.removed;
    expect(wouldRemove).toBeGreaterThanOrEqual(3);
    expect(afterDry).toBe(before);
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout).toMatch(/^removed \d+ of \d+ objects/);
    expect(objectCount(dir)).toBe(before - wouldRemove);
    expect(restored.code, restored.stderr).toBe(0);
    expect(readFileSync(join(out, 'best')).equals(model)).toBe(true);
  });

  it('exits 2 with a hint on a malformed --grace', async () => {
    const { dir } = await recordArtifacts();
    const result = await runCli(['gc', '--dir', dir, '--grace', 'soon']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--grace/);
  });
});

describe('tidemark verify, object check', () => {
  it('re-hashes every object and reports the damaged and the missing ones', async () => {
    const { dir, runId } = await recordArtifacts();
    const healthy = await runCli(['verify', '--dir', dir, '--json']);
    const lost = firstChunkOf(dir, runId, 'model/saved');
    rmSync(lost.path);
    const damaged = modelChunkPath(dir, runId);
    writeFileSync(damaged, random(1000));

    const result = await runCli(['verify', '--dir', dir, '--json']);

    expect(healthy.code, healthy.stdout).toBe(0);
    expect(result.code).toBe(6);
    const codes = parseEnvelope<{ findings: Array<{ check: string; code: string }> }>(result.stdout)
      .data.findings.filter((f) => f.check === 'objects')
      .map((f) => f.code);
    expect(codes.sort()).toEqual(['object_corrupt', 'object_missing', 'objects_checked']);
  });
});

/** Where the first chunk of the 'model/best' file is stored. */
function modelChunkPath(dir: string, runId: string): string {
  const db = openReadOnly(dir);
  const manifestDigest = getRun(db, runId).files.find((f) => f.path === 'model/best')
    ?.manifest as Digest;
  db.close();
  const objects = join(dir, 'objects');
  const manifest = JSON.parse(
    readFileSync(join(objects, manifestDigest.slice(0, 2), manifestDigest), 'utf8'),
  ) as { chunks: string[] };
  const digest = manifest.chunks[0] as string;
  return join(objects, digest.slice(0, 2), digest);
}

function objectCount(dir: string): number {
  return (readdirSync(join(dir, 'objects'), { recursive: true }) as string[]).filter((name) =>
    /^[0-9a-f]{2}\/[0-9a-f]{32}-\d+$/.test(name),
  ).length;
}

/** The first chunk of the first file of a logged directory, and where it is stored. */
function firstChunkOf(dir: string, runId: string, path: string): { digest: Digest; path: string } {
  const db = openReadOnly(dir);
  const manifestDigest = getRun(db, runId).files.find((f) => f.path === path)?.manifest as Digest;
  db.close();
  const objects = join(dir, 'objects');
  const manifest = JSON.parse(
    readFileSync(join(objects, manifestDigest.slice(0, 2), manifestDigest), 'utf8'),
  ) as { entries: Array<{ chunks: string[] }> };
  const digest = manifest.entries[0]?.chunks[0] as Digest;
  if (!isDigest(digest)) throw new Error('no chunk');
  return { digest, path: join(objects, digest.slice(0, 2), digest) };
}
