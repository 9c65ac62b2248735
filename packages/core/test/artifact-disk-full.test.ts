import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArtifactStore, collectGarbage, getRun, openReadOnly, Store } from '@tidemark/core';
import { describe, expect, it } from 'vitest';
import {
  damagedObjects,
  onCleanup,
  randomBytes,
  scratch,
  startRun,
  storedObjects,
  strayFiles,
} from './artifact-helpers.js';

/**
 * A real full disk: a tmpfs of a few MiB mounted for the test. Mounting needs root; where it is
 * refused the tests are skipped, which the run output shows.
 */
function mountTinyDisk(size: string): string | undefined {
  const mountPoint = scratch('tidemark-full-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mountPoint], {
      stdio: 'ignore',
    });
  } catch {
    return undefined;
  }
  onCleanup(() => {
    execFileSync('umount', [mountPoint], { stdio: 'ignore' });
  });
  return mountPoint;
}

const canMount = canMountTmpfs();

describe.skipIf(!canMount)('a full disk during ingest', () => {
  it('fails with disk_full and leaves no temp file and no partial object', async () => {
    const disk = mountTinyDisk('3m') as string;
    const objects = new ArtifactStore(join(disk, 'objects'));
    onCleanup(() => objects.close());
    const source = join(scratch(), 'checkpoint.bin');
    writeFileSync(source, randomBytes(8 * 1024 * 1024));

    const failure = await objects.snapshot(source).catch((error: unknown) => error);

    expect(failure).toMatchObject({ code: 'disk_full', retryable: false });
    expect((failure as Error).message).toContain('no space left');
    expect((failure as { hint: string }).hint).toMatch(/Free disk space/);
    expect(strayFiles(objects.dir)).toEqual([]);
    expect(await damagedObjects(objects.dir)).toEqual([]);
  });

  it('records nothing for an upload that ran out of space, and the run goes on', async () => {
    const disk = mountTinyDisk('6m') as string;
    const dir = join(disk, '.tidemark');
    const run = await startRun(dir);
    const work = scratch();
    writeFileSync(join(work, 'big.bin'), randomBytes(12 * 1024 * 1024));
    writeFileSync(join(work, 'small.bin'), randomBytes(1000));

    await expect(run.upload('model/big', join(work, 'big.bin'))).rejects.toMatchObject({
      code: 'disk_full',
    });
    const objectsDir = join(dir, 'objects');
    const leftBehind = storedObjects(objectsDir);
    const store = Store.open({ dir });
    onCleanup(() => store.close());
    const { removed } = await collectGarbage(store, { graceMs: 0 });
    await run.upload('model/small', join(work, 'small.bin'));

    expect(removed).toBe(leftBehind.size);
    expect(strayFiles(objectsDir)).toEqual([]);
    expect(readdirSync(join(objectsDir, '.pending'))).toEqual([]);
    expect(await damagedObjects(objectsDir)).toEqual([]);
    const db = openReadOnly(dir);
    expect(getRun(db, run.id).files.map((f) => f.path)).toEqual(['model/small']);
    db.close();
  });
});

/** Whether this process may mount a tmpfs (root, or a capable container). */
function canMountTmpfs(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmdirSync(dir);
  }
}
