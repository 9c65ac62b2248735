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
import { afterEach, describe, expect, it } from 'vitest';
import { getHasher } from '../src/hash.js';
import type { Digest } from '../src/ids.js';
import type { Manifest } from '../src/manifest.js';
import { restoreManifest, restoreWriteError } from '../src/restore-files.js';

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-restore-'));
  folders.push(dir);
  return dir;
}

/** Chunks held in memory; `lose` makes one unreadable, as a missing object would be. */
async function chunkSource(texts: string[]) {
  const hasher = await getHasher();
  const chunks = new Map<Digest, Buffer>();
  const digests = texts.map((text) => {
    const bytes = Buffer.from(text);
    const digest = hasher.digest(bytes);
    chunks.set(digest, bytes);
    return digest;
  });
  const lost = new Set<Digest>();
  const read = async (digest: Digest) => {
    const bytes = chunks.get(digest);
    if (bytes === undefined || lost.has(digest)) throw new Error(`no chunk ${digest}`);
    return bytes;
  };
  return { digests, read, lose: (digest: Digest) => lost.add(digest) };
}

function dir(entries: Array<[string, Digest]>): Manifest {
  return {
    v: 1,
    type: 'dir',
    size: 0,
    entries: entries.map(([path, chunk]) => ({ path, size: 0, chunks: [chunk] })),
  };
}

describe('restoreManifest', () => {
  it('restores a file whose name is as long as the file system allows', async () => {
    const { digests, read } = await chunkSource(['long name']);
    const out = join(scratch(), 'n'.repeat(255));

    await restoreManifest({ v: 1, type: 'file', size: 9, chunks: digests }, out, read);

    expect(readFileSync(out, 'utf8')).toBe('long name');
  });

  it('leaves nothing behind when a chunk is missing, so a retry can succeed', async () => {
    const { digests, read, lose } = await chunkSource(['a', 'b']);
    const [a, b] = digests as [Digest, Digest];
    const parent = scratch();
    const out = join(parent, 'model');
    lose(b);

    const failed = restoreManifest(
      dir([
        ['a', a],
        ['deep/b', b],
      ]),
      out,
      read,
    );

    await expect(failed).rejects.toThrow(/no chunk/);
    expect(readdirSync(parent)).toEqual([]);
    const { read: again } = await chunkSource(['a', 'b']);
    await restoreManifest(
      dir([
        ['a', a],
        ['deep/b', b],
      ]),
      out,
      again,
    );
    expect(readFileSync(join(out, 'deep', 'b'), 'utf8')).toBe('b');
  });

  it('replaces a target with exactly the artifact and never writes through a link in it', async () => {
    const { digests, read } = await chunkSource(['new', 'inner']);
    const [top, inner] = digests as [Digest, Digest];
    const parent = scratch();
    const victim = join(parent, 'victim');
    mkdirSync(victim);
    const out = join(parent, 'm');
    mkdirSync(out);
    writeFileSync(join(out, 'stale.txt'), 'old');
    symlinkSync(victim, join(out, 'sub'));

    await restoreManifest(
      dir([
        ['top', top],
        ['sub/inner', inner],
      ]),
      out,
      read,
      {
        replace: true,
      },
    );

    expect(readdirSync(out).sort()).toEqual(['sub', 'top']);
    expect(readFileSync(join(out, 'sub', 'inner'), 'utf8')).toBe('inner');
    expect(readdirSync(victim)).toEqual([]);
    expect(readdirSync(parent).sort()).toEqual(['m', 'victim']);
  });

  it('replaces a folder with a file and refuses any existing target unless asked to replace', async () => {
    const { digests, read } = await chunkSource(['bytes']);
    const out = join(scratch(), 'model');
    mkdirSync(join(out, 'old'), { recursive: true });
    const file: Manifest = { v: 1, type: 'file', size: 5, chunks: digests };

    await expect(restoreManifest(file, out, read)).rejects.toMatchObject({
      code: 'target_exists',
    });
    await restoreManifest(file, out, read, { replace: true });

    expect(readFileSync(out, 'utf8')).toBe('bytes');
  });

  it('refuses entry paths that would climb out of the target before writing anything', async () => {
    const { digests, read } = await chunkSource(['x']);
    const chunk = digests[0] as Digest;
    const parent = scratch();

    for (const path of ['../escape', 'a/../../escape', './a', 'a//b', '/abs']) {
      const restore = restoreManifest(
        dir([
          ['ok', chunk],
          [path, chunk],
        ]),
        join(parent, 'm'),
        read,
      );
      await expect(restore, path).rejects.toMatchObject({ code: 'unsafe_path' });
    }
    expect(readdirSync(parent)).toEqual([]);
  });

  it('names the target and what to do when a file is in the way or the disk is full', async () => {
    const { digests, read } = await chunkSource(['x']);
    const parent = scratch();
    writeFileSync(join(parent, 'file'), '');
    const below = join(parent, 'file', 'model');
    const full = Object.assign(new Error('write failed'), { code: 'ENOSPC' });

    const blocked = restoreManifest({ v: 1, type: 'file', size: 1, chunks: digests }, below, read);

    await expect(blocked).rejects.toMatchObject({ code: 'target_blocked' });
    expect(existsSync(below)).toBe(false);
    await expect(restoreWriteError(full, below)).resolves.toMatchObject({
      code: 'disk_full',
      message: expect.stringContaining(below),
      hint: expect.stringMatching(/^Free disk space, then restore again/),
    });
  });
});
