import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { useFastCpuKernels, useStockCpuKernels } from '../src/fast-cpu-kernels.js';

type Attrs = Record<string, unknown>;

beforeAll(async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
});

afterAll(() => {
  useStockCpuKernels();
});

/** Runs one kernel with the stock and then the fast implementation and returns both results. */
function runBoth(kernel: string, inputs: Record<string, tf.Tensor>, attrs: Attrs) {
  const run = () => {
    const output = tf.engine().runKernel(kernel, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
    const result = { shape: output.shape, values: output.dataSync() };
    output.dispose();
    return result;
  };

  useStockCpuKernels();
  const stock = run();
  useFastCpuKernels();
  const fast = run();
  return { stock, fast };
}

/** Normal noise with about a third of the entries set to exactly 0, as ReLU and MNIST give. */
function sparseNoise(shape: number[], seed: number): tf.Tensor {
  return tf.tidy(() => {
    const noise = tf.randomNormal(shape, 0, 1, 'float32', seed);
    const keep = tf.randomUniform(shape, 0, 1, 'float32', seed + 100).greater(1 / 3);
    return noise.mul(keep.cast('float32'));
  });
}

describe('fast cpu kernels', () => {
  const convCases = [
    { x: [3, 9, 8, 2], filter: [3, 3, 2, 5], strides: 1, pad: 'valid' },
    { x: [2, 9, 8, 3], filter: [3, 2, 3, 4], strides: 2, pad: 'same' },
    { x: [2, 7, 7, 1], filter: [3, 3, 1, 32], strides: [1, 2], pad: 'valid' },
  ] as const;

  for (const [index, spec] of convCases.entries()) {
    it(`compute Conv2DBackpropFilter bit for bit as tfjs does (case ${index})`, () => {
      const x = sparseNoise([...spec.x], index);
      const outShape = tf.conv2d(
        x as tf.Tensor4D,
        tf.zeros([...spec.filter]) as tf.Tensor4D,
        spec.strides as [number, number],
        spec.pad,
      ).shape;
      const dy = tf.randomNormal(outShape, 0, 1, 'float32', index + 10);
      const attrs = {
        strides: spec.strides,
        pad: spec.pad,
        dataFormat: 'NHWC',
        filterShape: [...spec.filter],
      };

      const { stock, fast } = runBoth(tf.Conv2DBackpropFilter, { x, dy }, attrs);

      expect(fast.shape).toEqual([...spec.filter]);
      expect(fast.values).toEqual(stock.values);
    });
  }

  it('keep a NaN in the incoming gradient where the stock Conv2DBackpropFilter does', () => {
    const x = sparseNoise([1, 5, 5, 1], 1);
    const dy = tf.randomNormal([1, 3, 3, 2], 0, 1, 'float32', 2).mul(tf.tensor1d([1, Number.NaN]));
    const attrs = { strides: 1, pad: 'valid', dataFormat: 'NHWC', filterShape: [3, 3, 1, 2] };

    const { stock, fast } = runBoth(tf.Conv2DBackpropFilter, { x, dy }, attrs);

    expect(Number.isNaN(fast.values[1])).toBe(true);
    expect(fast.values).toEqual(stock.values);
  });

  const poolCases = [
    { x: [2, 8, 8, 3], filterSize: 2, strides: 2, pad: 'valid' },
    { x: [2, 9, 7, 2], filterSize: 3, strides: 2, pad: 'same' },
    { x: [1, 6, 6, 4], filterSize: [3, 2], strides: 1, pad: 'valid' },
  ] as const;

  for (const [index, spec] of poolCases.entries()) {
    it(`compute MaxPoolGrad bit for bit as tfjs does, ties included (case ${index})`, () => {
      const input = tf.relu(sparseNoise([...spec.x], index + 20));
      const output = tf.maxPool(
        input as tf.Tensor4D,
        spec.filterSize as [number, number],
        spec.strides,
        spec.pad,
      );
      const dy = tf.randomNormal(output.shape, 0, 1, 'float32', index + 30);
      const attrs = { filterSize: spec.filterSize, strides: spec.strides, pad: spec.pad };

      const { stock, fast } = runBoth(tf.MaxPoolGrad, { dy, input, output }, attrs);

      expect(fast.shape).toEqual([...spec.x]);
      expect(fast.values).toEqual(stock.values);
    });
  }

  const sumCases = [
    { shape: [4, 6, 6, 5], axis: [0, 1, 2], keepDims: false },
    { shape: [4, 6, 6, 5], axis: [0, 1, 2], keepDims: true },
    { shape: [3, 4, 5], axis: [1], keepDims: false },
    { shape: [3, 4, 5], axis: [0, 2], keepDims: true },
    { shape: [3, 4, 5], axis: -1, keepDims: false },
    { shape: [3, 4, 5], axis: [], keepDims: false },
    { shape: [1000], axis: 0, keepDims: false },
  ] as const;

  for (const [index, spec] of sumCases.entries()) {
    it(`compute Sum bit for bit as tfjs does (axis ${JSON.stringify(spec.axis)})`, () => {
      const x = tf.randomNormal([...spec.shape], 0, 100, 'float32', index + 40);
      const attrs = { axis: spec.axis, keepDims: spec.keepDims };

      const { stock, fast } = runBoth(tf.Sum, { x }, attrs);

      expect(fast.shape).toEqual(stock.shape);
      expect(fast.values).toEqual(stock.values);
    });
  }

  it('leave int32 sums to the stock kernel', () => {
    const x = tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32');

    const { stock, fast } = runBoth(tf.Sum, { x }, { axis: 0, keepDims: false });

    expect(fast.values).toBeInstanceOf(Int32Array);
    expect(fast.values).toEqual(stock.values);
  });

  it('can be installed twice and removed again', () => {
    useFastCpuKernels();
    const fast = tf.getKernel(tf.Sum, 'cpu');
    useFastCpuKernels();
    expect(tf.getKernel(tf.Sum, 'cpu')).toBe(fast);

    useStockCpuKernels();
    expect(tf.getKernel(tf.Sum, 'cpu')).not.toBe(fast);
  });
});
