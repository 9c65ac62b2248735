import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  collectGarbage,
  type Digest,
  decodeManifest,
  type Manifest,
  verifyObjects,
} from '@tidemark/core';
import { describe, expect, it } from 'vitest';
import { tryLockGc } from '../src/ingest-lock.js';
import {
  chunksOf,
  onCleanup,
  openScratchStore,
  randomBytes,
  recordedManifest,
  scratch,
  startRun,
  storedObjects,
  strayFiles,
} from './artifact-helpers.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const HOUR = 60 * 60 * 1000;

describe('gc', () => {
  it('removes unreferenced objects once older than the grace period and keeps every referenced one', async () => {
    const { dir, store } = openScratchStore();
    const run = await startRun(dir);
    const work = scratch();
    writeFileSync(join(work, 'kept.bin'), randomBytes(2 * 1024 * 1024));
    writeFileSync(join(work, 'orphan.bin'), randomBytes(2 * 1024 * 1024));
    writeFileSync(join(work, 'frame.png'), randomBytes(5000));
    await run.upload('model', join(work, 'kept.bin'));
    await run.logFile('frames', join(work, 'frame.png'), { step: 1 });
    const orphan = await store.objects.snapshot(join(work, 'orphan.bin'));
    const before = storedObjects(store.objects.dir);
    const orphanObjects = 1 + chunksOf(readManifestFrom(before, orphan.manifest)).length;

    const young = await collectGarbage(store);
    const later = await collectGarbage(store, { clock: () => Date.now() + 2 * HOUR });

    expect(young).toMatchObject({ removed: 0, young: orphanObjects });
    expect(later).toMatchObject({ removed: orphanObjects, young: 0 });
    expect(later.removedBytes).toBeGreaterThan(2 * 1024 * 1024);
    expect(storedObjects(store.objects.dir).size).toBe(before.size - orphanObjects);
    expect((await verifyObjects(store)).problems).toEqual([]);
    await store.objects.restore(recordedManifest(store, run.id, 'model'), join(work, 'back.bin'));
  });

  it('never removes the objects of artifacts another process logs while gc runs again and again', async () => {
    const { dir, store } = openScratchStore();
    const orphans = scratch();
    for (let i = 0; i < 3; i++) writeFileSync(join(orphans, `${i}.bin`), randomBytes(600 * 1024));
    for (let i = 0; i < 3; i++) await store.objects.snapshot(join(orphans, `${i}.bin`));

    const writer = spawnWriter(dir, 40);
    let passes = 0;
    let removed = 0;
    while (writer.child.exitCode === null) {
      const report = await collectGarbage(store, { graceMs: 0, maxWaitMs: 60_000 });
      passes += 1;
      removed += report.removed;
      // A pass can finish without waiting on I/O; the child's exit is seen only once the event
      // loop turns.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const [code] = (await writer.closed) as [number | null];

    expect(code).toBe(0);
    expect(passes).toBeGreaterThan(1);
    expect(removed).toBeGreaterThanOrEqual(3);
    const report = await verifyObjects(store);
    expect(report.problems).toEqual([]);
    expect(report.referenced).toBeGreaterThan(40);
  });

  it('is not held up by the marker of a writer killed with -9, and removes what it left', async () => {
    const { dir, store } = openScratchStore();
    const writer = spawnWriter(dir, 1, 96 * 1024 * 1024);
    await waitForLine(writer.child, 'ingesting');
    await waitFor(() => storedObjects(store.objects.dir).size > 3);
    writer.child.kill('SIGKILL');
    await writer.closed;

    const report = await collectGarbage(store, { graceMs: 0, maxWaitMs: 5_000 });

    expect(report.removed).toBeGreaterThan(3);
    expect(readdirSync(join(store.objects.dir, '.pending'))).toEqual([]);
    expect(strayFiles(store.objects.dir)).toEqual([]);
    expect(storedObjects(store.objects.dir).size).toBe(0);
  });

  it('makes a writer wait while gc holds the lock', async () => {
    const { dir, store } = openScratchStore();
    const run = await startRun(dir);
    const source = join(scratch(), 'small.bin');
    writeFileSync(source, randomBytes(100_000));
    const lock = tryLockGc(store.objects.dir, Date.now());
    expect(lock).toBeDefined();

    let resolvedAt = Number.POSITIVE_INFINITY;
    const upload = run.upload('model', source).then(() => {
      resolvedAt = performance.now();
    });
    await waitFor(() => readdirSync(join(store.objects.dir, '.pending')).length === 1);
    // Long enough for an unguarded snapshot of 100 kB to finish many times over.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const releasedAt = performance.now();
    lock?.release();
    await upload;

    expect(resolvedAt).toBeGreaterThan(releasedAt);
    await store.objects.restore(recordedManifest(store, run.id, 'model'), join(scratch(), 'b'));
  });

  it('refuses to remove anything while a referenced manifest cannot be read', async () => {
    const { dir, store } = openScratchStore();
    const run = await startRun(dir);
    const source = join(scratch(), 'a.bin');
    writeFileSync(source, randomBytes(1_500_000));
    await run.upload('model', source);
    writeFileSync(source, randomBytes(700_000));
    await store.objects.snapshot(source);
    const manifest = recordedManifest(store, run.id, 'model');
    rmSync(storedObjects(store.objects.dir).get(manifest) as string);
    const before = storedObjects(store.objects.dir).size;

    await expect(collectGarbage(store, { graceMs: 0 })).rejects.toMatchObject({
      code: 'gc_unsafe',
    });
    expect(storedObjects(store.objects.dir).size).toBe(before);
  });
});

describe('verifyObjects', () => {
  it('reports objects that do not hash to their name and referenced objects that are gone', async () => {
    const { dir, store } = openScratchStore();
    const run = await startRun(dir);
    const source = join(scratch(), 'weights.bin');
    writeFileSync(source, randomBytes(3 * 1024 * 1024));
    await run.upload('model', source);
    expect(await verifyObjects(store)).toMatchObject({ problems: [] });

    const objects = storedObjects(store.objects.dir);
    const manifest = await store.objects.readManifest(recordedManifest(store, run.id, 'model'));
    const [first, second] = chunksOf(manifest) as [Digest, Digest];
    rmSync(objects.get(first) as string);
    writeFileSync(objects.get(second) as string, randomBytes(10));

    const report = await verifyObjects(store);

    expect(report.problems).toHaveLength(2);
    expect(report.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ digest: first, problem: 'missing' }),
        expect.objectContaining({ digest: second, problem: 'mismatch' }),
      ]),
    );
    expect(report.objects).toBe(objects.size - 1);
  });
});

/** Reads a manifest straight from its object file. */
function readManifestFrom(objects: Map<Digest, string>, digest: Digest): Manifest {
  return decodeManifest(readFileSync(objects.get(digest) as string), digest);
}

/**
 * A child process that records `count` uploads of fresh random files into the store at `dir`,
 * deleting each source right after; with `size`, one file that large.
 */
function spawnWriter(
  dir: string,
  count: number,
  size = 0,
): { child: ChildProcess; closed: Promise<unknown[]> } {
  const script = `
    import { randomFillSync } from 'node:crypto';
    import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
    import { tmpdir } from 'node:os';
    import { join } from 'node:path';
    import { initRun } from '@tidemark/core';
    const [dir, count, size] = process.argv.slice(1).map((v, i) => (i === 0 ? v : Number(v)));
    const work = mkdtempSync(join(tmpdir(), 'tidemark-writer-'));
    const run = await initRun({ project: 'team/w', dir, captureContext: false, handleExit: false });
    for (let i = 0; i < count; i++) {
      const source = join(work, 'f' + i);
      writeFileSync(source, randomFillSync(Buffer.alloc(size || 200000 + (i % 7) * 150000)));
      process.stdout.write('ingesting\\n');
      if (i % 5 === 4) await run.logFile('frames', source, { step: i });
      else await run.upload('model/' + i, source);
      rmSync(source);
    }
    await run.stop();
    rmSync(work, { recursive: true, force: true });`;
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', script, dir, String(count), String(size)],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const closed = once(child, 'close');
  onCleanup(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, closed };
}

async function waitForLine(child: ChildProcess, text: string): Promise<void> {
  const { createInterface } = await import('node:readline');
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) if (line === text) break;
}

/** Polls a condition about files another process writes until it holds. */
async function waitFor(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
