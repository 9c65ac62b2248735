import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  collectGarbage,
  decodeManifest,
  encodeManifest,
  type Manifest,
  verifyObjects,
} from '@tidemark/core';
import { describe, expect, it } from 'vitest';
import {
  onCleanup,
  openScratchStore,
  randomBytes,
  recordedManifest,
  scratch,
  startRun,
  storedObjects,
} from './artifact-helpers.js';

describe('symbolic links in an uploaded folder', () => {
  it('records a HuggingFace-style snapshot: the bytes of each blob under the name of its link', async () => {
    const { dir, store } = openScratchStore();
    const run = await startRun(dir);
    const hub = scratch();
    const weights = randomBytes(700 * 1024);
    const config = Buffer.from('{"layers":12}');
    const extra = randomBytes(3000);
    mkdirSync(join(hub, 'blobs'));
    mkdirSync(join(hub, 'shared'));
    mkdirSync(join(hub, 'snap'));
    writeFileSync(join(hub, 'blobs', 'abc'), weights);
    writeFileSync(join(hub, 'blobs', 'def'), config);
    writeFileSync(join(hub, 'shared', 'x.bin'), extra);
    symlinkSync('../blobs/abc', join(hub, 'snap', 'model.safetensors'));
    symlinkSync('../blobs/def', join(hub, 'snap', 'config.json'));
    symlinkSync('../shared', join(hub, 'snap', 'sub'));

    await run.upload('model', join(hub, 'snap'));

    const manifest = await store.objects.readManifest(recordedManifest(store, run.id, 'model'));
    expect(manifest.type === 'dir' && manifest.entries.map((e) => [e.path, e.size])).toEqual([
      ['config.json', config.length],
      ['model.safetensors', weights.length],
      ['sub/x.bin', extra.length],
    ]);
    const out = join(scratch(), 'restored');
    await store.objects.restore(recordedManifest(store, run.id, 'model'), out);
    expect(readFileSync(join(out, 'model.safetensors')).equals(weights)).toBe(true);
    expect(readFileSync(join(out, 'config.json')).equals(config)).toBe(true);
    expect(readFileSync(join(out, 'sub', 'x.bin')).equals(extra)).toBe(true);
  });

  it('follows a source path that is itself a link, to a file or to a folder', async () => {
    const { dir, store } = openScratchStore();
    const run = await startRun(dir);
    const work = scratch();
    const bytes = randomBytes(5000);
    mkdirSync(join(work, 'folder'));
    writeFileSync(join(work, 'folder', 'a.bin'), bytes);
    symlinkSync(join(work, 'folder', 'a.bin'), join(work, 'file-link'));
    symlinkSync(join(work, 'folder'), join(work, 'folder-link'));

    await run.upload('file', join(work, 'file-link'));
    await run.upload('dir', join(work, 'folder-link'));

    const file = await store.objects.readManifest(recordedManifest(store, run.id, 'file'));
    const folder = await store.objects.readManifest(recordedManifest(store, run.id, 'dir'));
    expect(file).toMatchObject({ type: 'file', size: bytes.length });
    expect(folder.type === 'dir' && folder.entries.map((e) => e.path)).toEqual(['a.bin']);
  });

  it('refuses a dangling link, a link cycle, a FIFO and a socket with a typed error, writing nothing', async () => {
    const { dir, store } = openScratchStore();
    const run = await startRun(dir);
    const work = scratch();
    const folderWith = (name: string, add: (path: string) => void): string => {
      const folder = join(work, name);
      mkdirSync(join(folder, 'inner'), { recursive: true });
      writeFileSync(join(folder, 'good.bin'), randomBytes(2000));
      add(join(folder, 'inner', 'bad'));
      return folder;
    };
    const dangling = folderWith('dangling', (path) => symlinkSync('../nowhere', path));
    const cycle = folderWith('cycle', (path) => symlinkSync('../..', path));
    const fifo = folderWith('fifo', (path) => execFileSync('mkfifo', [path]));
    const socket = folderWith('socket', () => undefined);
    const server = createServer().listen(join(socket, 'inner', 'bad'));
    onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
    await new Promise((resolve) => server.once('listening', resolve));

    await expect(run.upload('a', dangling)).rejects.toMatchObject({
      code: 'dangling_link',
      hint: expect.stringContaining('link'),
    });
    await expect(run.upload('b', cycle)).rejects.toMatchObject({ code: 'link_cycle' });
    await expect(run.upload('c', fifo)).rejects.toMatchObject({ code: 'not_a_file' });
    await expect(run.upload('d', socket)).rejects.toMatchObject({ code: 'not_a_file' });
    await expect(run.upload('e', join(fifo, 'inner', 'bad'))).rejects.toMatchObject({
      code: 'not_a_file',
    });
    await expect(run.upload('f', join(dangling, 'inner', 'bad'))).rejects.toMatchObject({
      code: 'dangling_link',
    });

    expect(storedObjects(store.objects.dir).size).toBe(0);
    expect(store.db.prepare('SELECT count(*) FROM files').pluck().get()).toBe(0);
    expect(readdirSync(join(store.objects.dir, '.pending'))).toEqual([]);
  });

  it('records no entry for an empty sub-folder, and an empty folder restores as an empty folder', async () => {
    const { dir, store } = openScratchStore();
    const run = await startRun(dir);
    const work = scratch();
    mkdirSync(join(work, 'tree', 'empty', 'deeper'), { recursive: true });
    writeFileSync(join(work, 'tree', 'a.txt'), 'a');
    mkdirSync(join(work, 'nothing'));

    await run.upload('tree', join(work, 'tree'));
    await run.upload('nothing', join(work, 'nothing'));

    const tree = await store.objects.readManifest(recordedManifest(store, run.id, 'tree'));
    expect(tree.type === 'dir' && tree.entries.map((e) => e.path)).toEqual(['a.txt']);
    const out = join(scratch(), 'nothing');
    await store.objects.restore(recordedManifest(store, run.id, 'nothing'), out);
    expect(readdirSync(out)).toEqual([]);
  });
});

describe('names inside an uploaded folder', () => {
  it('records a name holding a backslash, and get, gc and verify all accept the store', async () => {
    const { dir, store } = openScratchStore();
    const run = await startRun(dir);
    const folder = join(scratch(), 'folder');
    mkdirSync(join(folder, 't'), { recursive: true });
    const bytes = randomBytes(4000);
    writeFileSync(join(folder, 't', 'back\\slash'), bytes);
    writeFileSync(join(folder, 'trailing\\'), 'x');

    await run.upload('weird', folder);

    const digest = recordedManifest(store, run.id, 'weird');
    const manifest = await store.objects.readManifest(digest);
    expect(manifest.type === 'dir' && manifest.entries.map((e) => e.path)).toEqual([
      't/back\\slash',
      'trailing\\',
    ]);
    const out = join(scratch(), 'out');
    await store.objects.restore(digest, out);
    expect(readFileSync(join(out, 't', 'back\\slash')).equals(bytes)).toBe(true);
    await expect(collectGarbage(store)).resolves.toMatchObject({ removed: 0 });
    expect((await verifyObjects(store)).problems).toEqual([]);
  });

  it("refuses a '..' between backslashes and a name that is not UTF-8 before writing anything", async () => {
    const { dir, store } = openScratchStore();
    const run = await startRun(dir);
    const climbing = join(scratch(), 'climbing');
    mkdirSync(climbing);
    writeFileSync(join(climbing, 'ok.bin'), randomBytes(1000));
    writeFileSync(join(climbing, '..\\evil'), 'x');
    const latin1 = join(scratch(), 'latin1');
    mkdirSync(latin1);
    writeFileSync(join(latin1, 'ok.bin'), randomBytes(1000));
    writeFileSync(Buffer.concat([Buffer.from(`${latin1}/caf`), Buffer.from([0xe9])]), 'x');

    await expect(run.upload('a', climbing)).rejects.toMatchObject({
      code: 'unsupported_name',
      hint: expect.stringContaining('Rename'),
    });
    await expect(run.upload('b', latin1)).rejects.toMatchObject({ code: 'unsupported_name' });

    expect(storedObjects(store.objects.dir).size).toBe(0);
    expect(store.db.prepare('SELECT count(*) FROM files').pluck().get()).toBe(0);
  });
});

describe('manifest names', () => {
  const dirWith = (path: string): Manifest => ({
    v: 1,
    type: 'dir',
    size: 0,
    entries: [{ path, size: 0, chunks: [] }],
  });
  const decodes = (manifest: Manifest): boolean => {
    try {
      decodeManifest(Buffer.from(JSON.stringify(manifest)), 'test');
      return true;
    } catch {
      return false;
    }
  };

  it('decodes every name earlier manifests hold, and backslashes, and refuses names that climb out', () => {
    const accepted = ['a/b.bin', '.hidden', '...', 'a b/ü ✓', 'back\\slash', 'a\\b\\c', 'x\\'];
    const refused = ['', '/a', 'a//b', 'a/', './a', 'a/./b', 'a/..', '..', '..\\x', 'a\\..\\b'];

    for (const path of accepted) expect(decodes(dirWith(path)), path).toBe(true);
    for (const path of [...refused, 'nul\0']) expect(decodes(dirWith(path)), path).toBe(false);
  });

  it('is never written when a reader would refuse it', () => {
    for (const path of ['', 'a/../b', '..\\x']) {
      expect(() => encodeManifest(dirWith(path)), path).toThrow(
        expect.objectContaining({ code: 'bad_manifest' }),
      );
    }
    expect(decodes(dirWith('ok\\name'))).toBe(true);
    expect(encodeManifest(dirWith('ok\\name')).length).toBeGreaterThan(0);
  });
});
