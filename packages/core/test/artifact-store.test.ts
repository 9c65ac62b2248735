import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ArtifactStore,
  CHUNK_AVG,
  CHUNK_MAX,
  CHUNK_MIN,
  type Digest,
  digestSize,
  getHasher,
} from '@tidemark/core';
import { describe, expect, it } from 'vitest';
import { nextCut } from '../src/chunker.js';
import { ingestFile } from '../src/ingest-file.js';
import {
  chunksOf,
  openScratchStore,
  randomBytes,
  recordedManifest,
  scratch,
  startRun,
  storedObjects,
  strayFiles,
} from './artifact-helpers.js';

describe('the content-addressed store', () => {
  it('stores identical content once across runs and projects', async () => {
    const { dir, store } = openScratchStore();
    const source = join(scratch(), 'weights.bin');
    writeFileSync(source, randomBytes(5 * 1024 * 1024));

    const first = await startRun(dir, 'team/a');
    await first.upload('model', source);
    const afterFirst = storedObjects(store.objects.dir).size;
    const second = await startRun(dir, 'team/b');
    await second.upload('model', source);
    await second.upload('copy', source);

    expect(storedObjects(store.objects.dir).size).toBe(afterFirst);
    expect(recordedManifest(store, second.id, 'model')).toBe(
      recordedManifest(store, first.id, 'model'),
    );
    const again = await store.objects.snapshot(source);
    expect(again.newBytes).toBe(0);
  });

  it('checks bytes against their digest on every read and restores nothing from a damaged object', async () => {
    const { dir, store } = openScratchStore();
    const run = await startRun(dir);
    const source = join(scratch(), 'weights.bin');
    writeFileSync(source, randomBytes(3 * 1024 * 1024));
    await run.upload('model', source);
    const manifest = await store.objects.readManifest(recordedManifest(store, run.id, 'model'));
    const victim = chunksOf(manifest)[1] as Digest;
    const path = storedObjects(store.objects.dir).get(victim) as string;
    const bytes = readFileSync(path);
    bytes[1000] = (bytes[1000] as number) ^ 0x40;
    chmodSync(path, 0o644);
    writeFileSync(path, bytes);

    await expect(store.objects.read(victim)).rejects.toMatchObject({ code: 'object_corrupt' });
    const out = join(scratch(), 'restored.bin');
    await expect(
      store.objects.restore(recordedManifest(store, run.id, 'model'), out),
    ).rejects.toMatchObject({ code: 'object_corrupt' });
    expect(existsSync(out)).toBe(false);
    expect(strayFiles(join(out, '..'))).toEqual([]);
  });

  it('names content by two seeded xxh64 passes and its size, a format that must never change', async () => {
    const hasher = await getHasher();
    const text = Buffer.from('tidemark artifact digest v1');

    const digest = hasher.digest(text);
    const streamed = hasher.stream();
    streamed.update(text.subarray(0, 5));
    streamed.update(text.subarray(5));

    expect(digest).toBe(GOLDEN_DIGEST);
    expect(streamed.digest()).toBe(digest);
    expect(digestSize(digest)).toBe(text.length);
    expect(hasher.digest(Buffer.alloc(0))).toMatch(/^[0-9a-f]{32}-0$/);
  });

  it('cuts chunks where the reference FastCDC definition cuts them, within the documented sizes', () => {
    const data = xorshiftBytes(24 * 1024 * 1024, 0x1234567);
    const reference = referenceCuts(data);
    const cuts: number[] = [];
    for (let start = 0; start < data.length; ) {
      const cut = nextCut(data, start, data.length, true);
      cuts.push(cut);
      start += cut;
    }

    expect(cuts).toEqual(reference);
    expect(cuts.slice(0, -1).every((c) => c > CHUNK_MIN && c <= CHUNK_MAX)).toBe(true);
    const mean = data.length / cuts.length;
    expect(mean).toBeGreaterThan(CHUNK_AVG * 0.6);
    expect(mean).toBeLessThan(CHUNK_AVG * 1.6);
  });

  it('cuts a large file in two workers at once into exactly the chunks of a single pass', async () => {
    const work = scratch();
    const bytes = randomBytes(96 * 1024 * 1024);
    // Zeros across the middle make the two halves' cut chains meet only where the content does.
    bytes.fill(0, 40 * 1024 * 1024, 56 * 1024 * 1024);
    writeFileSync(join(work, 'big.bin'), bytes);
    const store = new ArtifactStore(join(scratch(), 'objects'));

    const split = await store.snapshot(join(work, 'big.bin'));
    const single = await ingestFile({ source: join(work, 'big.bin'), objectsDir: scratch() });
    const manifest = await store.readManifest(split.manifest);
    await store.close();

    expect(chunksOf(manifest)).toEqual(single.chunks);
    expect(split.size).toBe(bytes.length);
  });

  it('costs a few new chunks for 1 MiB appended to a 200 MiB file or bytes inserted in its middle', async () => {
    const store = new ArtifactStore(join(scratch(), 'objects'));
    const work = scratch();
    const base = randomBytes(200 * 1024 * 1024);
    writeFileSync(join(work, 'v1.bin'), base);
    const v1 = await store.snapshot(join(work, 'v1.bin'));
    const count = (): number => storedObjects(store.dir).size;
    const before = count();

    writeFileSync(join(work, 'v2.bin'), Buffer.concat([base, randomBytes(1024 * 1024)]));
    const v2 = await store.snapshot(join(work, 'v2.bin'));
    const afterAppend = count();

    const middle = base.length / 2 + 12_345;
    const inserted = Buffer.concat([
      base.subarray(0, middle),
      randomBytes(100),
      base.subarray(middle),
    ]);
    writeFileSync(join(work, 'v3.bin'), inserted);
    const v3 = await store.snapshot(join(work, 'v3.bin'));
    const afterInsert = count();
    await store.close();

    // Each version adds its manifest plus the chunks around the change.
    expect(afterAppend - before - 1).toBeLessThanOrEqual(3);
    expect(v2.newBytes).toBeLessThanOrEqual(1024 * 1024 + 2 * CHUNK_MAX);
    expect(v2.guidedBytes).toBeGreaterThan(190 * 1024 * 1024);
    expect(afterInsert - afterAppend - 1).toBeLessThanOrEqual(3);
    expect(v3.newBytes).toBeLessThanOrEqual(3 * CHUNK_MAX);
    expect(v1.size + 1024 * 1024).toBe(v2.size);

    const hasher = await getHasher();
    for (const [snapshot, bytes] of [
      [v2, Buffer.concat([base, readFileSync(join(work, 'v2.bin')).subarray(base.length)])],
      [v3, inserted],
    ] as const) {
      const out = join(scratch(), 'restored.bin');
      const restore = new ArtifactStore(store.dir);
      await restore.restore(snapshot.manifest, out);
      expect(hasher.digest(readFileSync(out))).toBe(hasher.digest(bytes));
    }
  });
});

const GOLDEN_DIGEST = 'cd54c4bf89c4d830b1e7d5bdc4184be4-27';

/** The cut-point definition written out plainly, in unsigned arithmetic. */
function referenceCuts(data: Uint8Array): number[] {
  const gear: number[] = [];
  let state = 0x9e3779b9;
  for (let i = 0; i < 256; i++) {
    state = (state ^ (state << 13)) >>> 0;
    state = (state ^ (state >>> 17)) >>> 0;
    state = (state ^ (state << 5)) >>> 0;
    gear.push(state);
  }
  const mask = (bits: number): number => {
    let m = 0;
    for (let i = 0; i < bits; i++) m = (m | (1 << (31 - Math.floor(i * (32 / bits))))) >>> 0;
    return m;
  };
  const strict = mask(22);
  const loose = mask(18);

  const cuts: number[] = [];
  let start = 0;
  while (start < data.length) {
    const left = data.length - start;
    let cut = Math.min(left, CHUNK_MAX);
    if (left > CHUNK_MIN) {
      let hash = 0;
      for (let i = CHUNK_MIN; i < Math.min(left, CHUNK_MAX); i++) {
        hash = (((hash * 2) % 2 ** 32) + (gear[data[start + i] as number] as number)) % 2 ** 32;
        const m = i < CHUNK_AVG ? strict : loose;
        if ((hash & m) >>> 0 === 0) {
          cut = i + 1;
          break;
        }
      }
    }
    cuts.push(cut);
    start += cut;
  }
  return cuts;
}

function xorshiftBytes(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
