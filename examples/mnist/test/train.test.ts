import type * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { TrainOptionsError } from '../src/errors.js';
import { type TrainOptions, train } from '../src/train.js';

const TINY: TrainOptions = { trainSize: 320, testSize: 200, epochs: 2, batchSize: 32 };

describe('train', () => {
  it('passes every epoch to the given callbacks and returns the same logs', async () => {
    const seen: Array<[number, tf.Logs | undefined]> = [];

    const result = await train({
      ...TINY,
      callbacks: [{ onEpochEnd: (epoch, logs) => void seen.push([epoch, { ...logs }]) }],
    });

    expect(seen.map(([epoch]) => epoch)).toEqual([0, 1]);
    expect(result.history).toEqual(seen.map(([, logs]) => logs));
    expect(Object.keys(result.history[0] ?? {}).sort()).toEqual([
      'acc',
      'loss',
      'val_acc',
      'val_loss',
    ]);
    expect(result.testAccuracy).toBeGreaterThan(0.3);
    expect(result.testAccuracy).toBeLessThanOrEqual(1);
    expect(result.testLoss).toBeGreaterThan(0);
    result.model.dispose();
  }, 60_000);

  it('repeats a seeded run exactly', async () => {
    const first = await train({ ...TINY, epochs: 1, seed: 7 });
    const second = await train({ ...TINY, epochs: 1, seed: 7 });

    expect(second.history).toEqual(first.history);
    expect(second.testLoss).toBe(first.testLoss);
    first.model.dispose();
    second.model.dispose();
  }, 60_000);

  it('trains to the same numbers with stock and fast kernels', async () => {
    const small = { trainSize: 160, testSize: 100, epochs: 1, seed: 3 };
    const fast = await train(small);
    const stock = await train({ ...small, fastKernels: false });

    expect(stock.history).toEqual(fast.history);
    expect(stock.testAccuracy).toBe(fast.testAccuracy);
    fast.model.dispose();
    stock.model.dispose();
  }, 120_000);

  it('suggests the option name a misspelt one was meant to be', async () => {
    const failure = train({ ...TINY, batchsize: 32 } as TrainOptions);

    await expect(failure).rejects.toMatchObject({ hint: 'Did you mean batchSize?' });
  });

  it.each([
    [{ ...TINY, trainsize: 10 }, "unknown train option 'trainsize'"],
    [{ ...TINY, trainSize: 60_001 }, 'trainSize must be a whole number 1 to 60000'],
    [{ ...TINY, epochs: 1.5 }, 'epochs must be a whole number'],
    [{ testSize: 10, epochs: 1 }, 'trainSize must be a whole number'],
    [{ ...TINY, validationSplit: 1 }, 'validationSplit must be at least 0 and below 1'],
    [{ ...TINY, trainSize: 1 }, 'leaves no images to fit on'],
  ])('rejects bad options before loading anything: %j', async (options, message) => {
    const failure = train(options as TrainOptions);

    await expect(failure).rejects.toBeInstanceOf(TrainOptionsError);
    await expect(failure).rejects.toThrow(message);
  });
});
