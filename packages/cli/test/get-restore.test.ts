import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Digest, getRun, initRun, objectPath, openReadOnly } from '@tidemark/core';
import { afterEach, describe, expect, it } from 'vitest';
import { parseEnvelope, runCli } from '../../../test/cli-harness.js';

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-get-'));
  folders.push(dir);
  return dir;
}

const LONG = 'w'.repeat(250);

/** A store with a file logged under a 250-character name and a folder `m` of two files. */
async function recordStore(): Promise<{ dir: string; runId: string }> {
  const dir = join(temp(), '.tidemark');
  const work = temp();
  writeFileSync(join(work, LONG), 'long');
  mkdirSync(join(work, 'm', 'sub'), { recursive: true });
  writeFileSync(join(work, 'm', 'a.txt'), 'a');
  writeFileSync(join(work, 'm', 'sub', 'b.txt'), 'b');
  const run = await initRun({ project: 'team/get', dir, captureContext: false, handleExit: false });
  await run.upload(`x/${LONG}`, join(work, LONG));
  await run.upload('m', join(work, 'm'));
  await run.stop();
  return { dir, runId: run.id };
}

/** Where the chunk of `sub/b.txt` inside the folder `m` is stored. */
function chunkOfB(dir: string, runId: string): string {
  const db = openReadOnly(dir);
  const manifest = getRun(db, runId).files.find((f) => f.path === 'm')?.manifest as Digest;
  db.close();
  const objects = join(dir, 'objects');
  const entries = (
    JSON.parse(readFileSync(objectPath(objects, manifest), 'utf8')) as {
      entries: Array<{ path: string; chunks: Digest[] }>;
    }
  ).entries;
  return objectPath(objects, entries.find((e) => e.path === 'sub/b.txt')?.chunks[0] as Digest);
}

describe('tidemark get, restoring', () => {
  it('restores a 250-character file name, and a failed get leaves nothing so a retry works', async () => {
    const { dir, runId } = await recordStore();
    const out = temp();
    const chunk = chunkOfB(dir, runId);
    const saved = readFileSync(chunk);
    rmSync(chunk);

    const long = await runCli(['get', runId, `x/${LONG}`, '--out', out, '--dir', dir]);
    const failed = await runCli(['get', runId, 'm', '--out', out, '--dir', dir]);
    const left = readdirSync(out);
    writeFileSync(chunk, saved);
    const retried = await runCli(['get', runId, 'm', '--out', out, '--dir', dir]);

    expect(long.code, long.stderr).toBe(0);
    expect(readFileSync(join(out, LONG), 'utf8')).toBe('long');
    expect(failed.code).toBe(3);
    expect(left).toEqual([LONG]);
    expect(retried.code, retried.stderr).toBe(0);
    expect(readFileSync(join(out, 'm', 'sub', 'b.txt'), 'utf8')).toBe('b');
  });

  it('with --force swaps in exactly the artifact, never writing through a link in the old one', async () => {
    const { dir, runId } = await recordStore();
    const root = temp();
    const out = join(root, 'out');
    const victim = join(root, 'victim');
    mkdirSync(join(out, 'm'), { recursive: true });
    mkdirSync(victim);
    writeFileSync(join(out, 'm', 'stale.txt'), 'old');
    symlinkSync('../../victim', join(out, 'm', 'sub'));

    const forced = await runCli(['get', runId, 'm', '--out', out, '--dir', dir, '--force']);

    expect(forced.code, forced.stderr).toBe(0);
    expect(readdirSync(join(out, 'm')).sort()).toEqual(['a.txt', 'sub']);
    expect(readFileSync(join(out, 'm', 'sub', 'b.txt'), 'utf8')).toBe('b');
    expect(readdirSync(victim)).toEqual([]);
    expect(readdirSync(out)).toEqual(['m']);
  });

  it('exits 2 naming --out when a file is in the way, and refuses a path naming no file', async () => {
    const { dir, runId } = await recordStore();
    const root = temp();
    writeFileSync(join(root, 'file'), 'keep');

    const isFile = await runCli(['get', runId, 'm', '--out', join(root, 'file'), '--dir', dir]);
    const deeper = join(root, 'file', 'deeper');
    const below = await runCli(['get', runId, 'm', '--out', deeper, '--dir', dir, '--json']);
    const climbing = await runCli(['get', runId, 'm/..', '--out', root, '--dir', dir, '--force']);

    expect(isFile.code).toBe(2);
    expect(isFile.stderr).toMatch(/--out .*file/);
    expect(isFile.stderr).toMatch(/hint: Pass --out a folder/);
    expect(below.code).toBe(2);
    expect(parseEnvelope(below.stdout).error).toMatchObject({
      code: 'invalid_out',
      hint: expect.stringContaining('--out'),
    });
    expect(climbing.code).toBe(6);
    expect(climbing.stderr).toMatch(/does not end in a name/);
    expect(readFileSync(join(root, 'file'), 'utf8')).toBe('keep');
    expect(existsSync(root)).toBe(true);
  });

  it('fails at once where the parent of --out refuses new folders, leaving nothing behind', async () => {
    const { dir, runId } = await recordStore();

    const refused = await runCli(['get', runId, 'm', '--out', '/proc/tidemark-x', '--dir', dir]);

    expect(refused.code).toBe(6);
    expect(refused.stderr).toMatch(/hint:/);
    expect(existsSync('/proc/tidemark-x')).toBe(false);
  });
});
