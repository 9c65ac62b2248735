import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { MnistDataError } from '../src/errors.js';
import {
  IMAGE_PIXELS,
  loadMnist,
  MNIST_TEST_COUNT,
  MNIST_TRAIN_COUNT,
  parseIdx,
  toSplit,
} from '../src/mnist-data.js';

/** An idx file: 0, 0, type code, rank, one big-endian uint32 per dim, then the elements. */
function idxFile(dims: number[], data: Uint8Array, typeCode = 0x08): Uint8Array {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = typeCode;
  header[3] = dims.length;
  for (const [axis, size] of dims.entries()) {
    header.writeUInt32BE(size, 4 + 4 * axis);
  }
  return Buffer.concat([header, data]);
}

function imagesFile(count: number, fill: (index: number) => number): Uint8Array {
  const pixels = Uint8Array.from({ length: count * IMAGE_PIXELS }, (_, index) => fill(index));
  return idxFile([count, 28, 28], pixels);
}

function labelsFile(labels: number[]): Uint8Array {
  return idxFile([labels.length], Uint8Array.from(labels));
}

function expectMnistError(run: () => unknown, code: string, messagePart: string): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(MnistDataError);
  expect((caught as MnistDataError).code).toBe(code);
  expect((caught as MnistDataError).message).toContain(messagePart);
  expect((caught as MnistDataError).hint).toBeTruthy();
}

describe('parseIdx', () => {
  it('reads big-endian dims and the bytes after the header', () => {
    const data = Uint8Array.from({ length: 2 * 3 * 300 }, (_, index) => index % 256);

    const parsed = parseIdx(idxFile([2, 3, 300], data), 'synthetic');

    expect(parsed.dims).toEqual([2, 3, 300]);
    expect(Array.from(parsed.data)).toEqual(Array.from(data));
  });

  it('reads a gzipped file the same as a plain one', () => {
    const plain = idxFile([4], Uint8Array.from([9, 8, 7, 6]));

    expect(parseIdx(gzipSync(plain), 'synthetic.gz')).toEqual(parseIdx(plain, 'synthetic'));
  });

  it('rejects a header whose first bytes are not the idx magic', () => {
    const file = idxFile([4], Uint8Array.from([1, 2, 3, 4]));
    file[0] = 0x50;

    expectMnistError(() => parseIdx(file, 'bad-magic'), 'mnist_malformed', 'bad-magic');
  });

  it('rejects element types other than unsigned bytes, naming the type', () => {
    const file = idxFile([1], Uint8Array.from([0, 0, 0, 0]), 0x0d);

    expectMnistError(() => parseIdx(file, 'floats'), 'mnist_malformed', '0x0d');
  });

  it('rejects a file cut off inside its header', () => {
    const file = idxFile([60000, 28, 28], new Uint8Array()).subarray(0, 9);

    expectMnistError(() => parseIdx(file, 'short'), 'mnist_malformed', 'too short');
  });

  it('rejects data that is shorter than the dims promise, giving both sizes', () => {
    const file = idxFile([3, 28, 28], new Uint8Array(2 * IMAGE_PIXELS));

    expectMnistError(() => parseIdx(file, 'truncated'), 'mnist_malformed', '1568');
    expectMnistError(() => parseIdx(file, 'truncated'), 'mnist_malformed', '2352');
  });

  it('rejects bytes that look gzipped but do not inflate', () => {
    const file = Uint8Array.from([0x1f, 0x8b, 1, 2, 3, 4, 5]);

    expectMnistError(() => parseIdx(file, 'broken.gz'), 'mnist_malformed', 'inflate');
  });
});

describe('toSplit', () => {
  it('scales pixels to [0, 1] and keeps only the first images asked for', () => {
    const images = parseIdx(
      imagesFile(3, (index) => (index < IMAGE_PIXELS ? 255 : 51)),
      'i',
    );
    const labels = parseIdx(labelsFile([4, 0, 9]), 'l');

    const split = toSplit(images, labels, 2, 'synthetic');

    expect(split.count).toBe(2);
    expect(split.images.length).toBe(2 * IMAGE_PIXELS);
    expect(split.images[0]).toBe(1);
    expect(split.images[IMAGE_PIXELS]).toBeCloseTo(0.2, 6);
    expect(Array.from(split.labels)).toEqual([4, 0]);
  });

  it('rejects a label outside 0 to 9, naming its index', () => {
    const images = parseIdx(
      imagesFile(2, () => 0),
      'i',
    );
    const labels = parseIdx(labelsFile([3, 10]), 'l');

    expectMnistError(() => toSplit(images, labels, undefined, 'src'), 'mnist_malformed', 'index 1');
  });

  it('rejects label and image counts that disagree', () => {
    const images = parseIdx(
      imagesFile(2, () => 0),
      'i',
    );
    const labels = parseIdx(labelsFile([3, 1, 2]), 'l');

    expectMnistError(
      () => toSplit(images, labels, undefined, 'src'),
      'mnist_malformed',
      '2 images',
    );
  });

  it('rejects images that are not 28x28', () => {
    const images = parseIdx(idxFile([1, 27, 27], new Uint8Array(27 * 27)), 'i');
    const labels = parseIdx(labelsFile([1]), 'l');

    expectMnistError(() => toSplit(images, labels, undefined, 'src'), 'mnist_malformed', '1x27x27');
  });

  it('refuses to keep more images than the file holds', () => {
    const images = parseIdx(
      imagesFile(2, () => 0),
      'i',
    );
    const labels = parseIdx(labelsFile([1, 2]), 'l');

    expectMnistError(() => toSplit(images, labels, 3, 'src'), 'mnist_too_few', '3 asked for');
  });
});

describe('loadMnist', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tidemark-mnist-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads gzipped files from a given folder', async () => {
    await writeFile(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(imagesFile(3, () => 255)));
    await writeFile(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(labelsFile([1, 2, 3])));
    await writeFile(
      join(dir, 't10k-images-idx3-ubyte'),
      imagesFile(2, () => 0),
    );
    await writeFile(join(dir, 't10k-labels-idx1-ubyte'), labelsFile([7, 8]));

    const data = await loadMnist({ dataDir: dir, trainSize: 2 });

    expect(data.train.count).toBe(2);
    expect(Array.from(data.train.labels)).toEqual([1, 2]);
    expect(data.test.count).toBe(2);
    expect(Array.from(data.test.labels)).toEqual([7, 8]);
  });

  it('names the missing file and the folder searched', async () => {
    await writeFile(
      join(dir, 'train-images-idx3-ubyte'),
      imagesFile(1, () => 0),
    );

    const failure = loadMnist({ dataDir: dir });

    await expect(failure).rejects.toBeInstanceOf(MnistDataError);
    await expect(failure).rejects.toMatchObject({ code: 'mnist_file_missing' });
    await expect(failure).rejects.toThrow(dir);
  });

  it('parses the real files shipped by mnist-data into 60000 and 10000 labelled images', async () => {
    const data = await loadMnist();

    expect(data.train.count).toBe(MNIST_TRAIN_COUNT);
    expect(data.train.images.length).toBe(MNIST_TRAIN_COUNT * IMAGE_PIXELS);
    expect(data.test.count).toBe(MNIST_TEST_COUNT);
    expect(data.test.images.length).toBe(MNIST_TEST_COUNT * IMAGE_PIXELS);

    for (const split of [data.train, data.test]) {
      expect(new Set(split.labels)).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
      expect(Math.min(...split.images.subarray(0, 50 * IMAGE_PIXELS))).toBe(0);
      expect(Math.max(...split.images.subarray(0, 50 * IMAGE_PIXELS))).toBe(1);
    }

    // The well-known first labels of each set: a 5 opens training, a 7 opens the test set.
    expect(Array.from(data.train.labels.subarray(0, 4))).toEqual([5, 0, 4, 1]);
    expect(Array.from(data.test.labels.subarray(0, 4))).toEqual([7, 2, 1, 0]);
  });
});
