import * as tf from '@tensorflow/tfjs';

/**
 * Replaces three kernels of tfjs's pure-JS `cpu` backend with versions that walk the flat
 * value arrays directly. In tfjs 4.22 Conv2DBackpropFilter and MaxPoolGrad read every element
 * through `TensorBuffer.get`, which checks bounds and allocates per call, and Sum over outer
 * axes first transposes its input one index conversion at a time. Profiling this example showed
 * them taking most of the training time; swapped, an epoch runs about 10x faster.
 *
 * The replacements add the same terms in the same order, in doubles, as the stock kernels, so
 * results are bit-identical (test/fast-cpu-kernels.test.ts compares them). Inputs they do not
 * cover (NCHW layout, values other than float32, another backend class) go to the stock kernel.
 *
 * Kernels are registered process-wide, so this affects every tfjs model in the process.
 * Calling it again does nothing; `useStockCpuKernels` undoes it.
 */
export function useFastCpuKernels(): void {
  for (const [kernelName, kernelFunc] of FAST_KERNELS) {
    if (stockKernels.has(kernelName)) continue;

    const stock = tf.getKernel(kernelName, BACKEND);
    if (stock === undefined) continue;

    stockKernels.set(kernelName, stock);
    tf.unregisterKernel(kernelName, BACKEND);
    tf.registerKernel({ ...stock, kernelFunc: (args) => kernelFunc(args, stock.kernelFunc) });
  }
}

/** Puts back the kernels that `useFastCpuKernels` replaced. */
export function useStockCpuKernels(): void {
  for (const [kernelName, stock] of stockKernels) {
    tf.unregisterKernel(kernelName, BACKEND);
    tf.registerKernel(stock);
  }
  stockKernels.clear();
}

type KernelArgs = Parameters<tf.KernelFunc>[0];
type FastKernel = (args: KernelArgs, stock: tf.KernelFunc) => tf.TensorInfo | tf.TensorInfo[];

const BACKEND = 'cpu';
const stockKernels = new Map<string, tf.KernelConfig>();

/**
 * dW[wR, wC, d1, d2] = sum over batch b and output cell (yR, yC) of
 * x[b, yR * strideH + wR - padTop, yC * strideW + wC - padLeft, d1] * dy[b, yR, yC, d2].
 * Sums run over b, then yR, then yC, in doubles, like the stock kernel.
 */
const conv2dBackpropFilter: FastKernel = (args, stock) => {
  const { x, dy } = args.inputs;
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const backend = args.backend;
  if (x === undefined || dy === undefined || attrs.dataFormat === 'NCHW') return stock(args);
  if (!(backend instanceof tf.MathBackendCPU)) return stock(args);

  const xValues = backend.readSync(x.dataId);
  const dyValues = backend.readSync(dy.dataId);
  if (!(xValues instanceof Float32Array) || !(dyValues instanceof Float32Array)) {
    return stock(args);
  }

  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  const sums = new Float64Array(filterHeight * filterWidth * inChannels * outChannels);

  // Most MNIST pixels are 0. Skipping them changes no sum unless dy holds NaN or Infinity,
  // where 0 * dy would have made the stock result NaN.
  const skipZeros = allFinite(dyValues);

  for (let b = 0; b < batchSize; b++) {
    for (let yR = 0; yR < outHeight; yR++) {
      for (let yC = 0; yC < outWidth; yC++) {
        const dyBase = ((b * outHeight + yR) * outWidth + yC) * outChannels;

        for (let wR = 0; wR < filterHeight; wR++) {
          const xR = yR * strideHeight + wR - top;
          if (xR < 0 || xR >= inHeight) continue;

          for (let wC = 0; wC < filterWidth; wC++) {
            const xC = yC * strideWidth + wC - left;
            if (xC < 0 || xC >= inWidth) continue;
            const xBase = ((b * inHeight + xR) * inWidth + xC) * inChannels;

            for (let d1 = 0; d1 < inChannels; d1++) {
              const pixel = xValues[xBase + d1] as number;
              if (pixel === 0 && skipZeros) continue;
              const sumBase = ((wR * filterWidth + wC) * inChannels + d1) * outChannels;
              for (let d2 = 0; d2 < outChannels; d2++) {
                const at = sumBase + d2;
                sums[at] = (sums[at] as number) + pixel * (dyValues[dyBase + d2] as number);
              }
            }
          }
        }
      }
    }
  }

  return backend.makeTensorInfo(info.filterShape, 'float32', Float32Array.from(sums));
};

/**
 * Routes each pooling window's incoming gradient to the first (row-major) largest input in
 * that window, as the stock kernel does; a window of only NaN passes no gradient. Windows
 * that overlap add their gradients in row-major window order, in doubles.
 */
const maxPoolGrad: FastKernel = (args, stock) => {
  const { dy, input } = args.inputs;
  const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
  const backend = args.backend;
  if (dy === undefined || input === undefined) return stock(args);
  if (!(backend instanceof tf.MathBackendCPU)) return stock(args);

  const xValues = backend.readSync(input.dataId);
  const dyValues = backend.readSync(dy.dataId);
  if (!(xValues instanceof Float32Array) || !(dyValues instanceof Float32Array)) {
    return stock(args);
  }

  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  const sums = new Float64Array(xValues.length);

  for (let b = 0; b < batchSize; b++) {
    for (let yR = 0; yR < outHeight; yR++) {
      for (let yC = 0; yC < outWidth; yC++) {
        for (let d = 0; d < inChannels; d++) {
          let largest = Number.NEGATIVE_INFINITY;
          let largestAt = -1;

          for (let wR = 0; wR < filterHeight; wR++) {
            const xR = yR * strideHeight + wR - top;
            if (xR < 0 || xR >= inHeight) continue;

            for (let wC = 0; wC < filterWidth; wC++) {
              const xC = yC * strideWidth + wC - left;
              if (xC < 0 || xC >= inWidth) continue;

              const at = ((b * inHeight + xR) * inWidth + xC) * inChannels + d;
              const value = xValues[at] as number;
              if (value > largest) {
                largest = value;
                largestAt = at;
              }
            }
          }

          if (largestAt !== -1) {
            const dyAt = ((b * outHeight + yR) * outWidth + yC) * inChannels + d;
            sums[largestAt] = (sums[largestAt] as number) + (dyValues[dyAt] as number);
          }
        }
      }
    }
  }

  return backend.makeTensorInfo(input.shape, 'float32', Float32Array.from(sums));
};

/**
 * Adds up float32 values over `axis`. The stock kernel first transposes the reduced axes to the
 * inside, one index conversion per element, which for a conv layer's bias gradient costs more
 * than the sum itself. This walks the input once in memory order instead: each output still
 * gets its terms in row-major order of the reduced axes, summed in doubles from 0, as the stock
 * kernel adds them.
 */
const sum: FastKernel = (args, stock) => {
  const { x } = args.inputs;
  const attrs = args.attrs as unknown as tf.SumAttrs;
  const backend = args.backend;
  if (x === undefined || x.dtype !== 'float32' || x.shape.length === 0) return stock(args);
  if (!(backend instanceof tf.MathBackendCPU)) return stock(args);

  const values = backend.readSync(x.dataId);
  if (!(values instanceof Float32Array) || values.length === 0) return stock(args);

  const shape = x.shape;
  const rank = shape.length;
  const reduced = new Set(tf.util.parseAxisParam(attrs.axis, shape));
  const outShape = shape.filter((_, axis) => !reduced.has(axis));

  // Where one step along each axis moves in the output: 0 along reduced axes.
  const outSteps = new Array<number>(rank).fill(0);
  let step = 1;
  for (let axis = rank - 1; axis >= 0; axis--) {
    if (reduced.has(axis)) continue;
    outSteps[axis] = step;
    step *= shape[axis] as number;
  }

  const sums = new Float64Array(tf.util.sizeFromShape(outShape));
  const rowLength = shape[rank - 1] as number;
  const rowStep = outSteps[rank - 1] as number;
  const position = new Array<number>(rank).fill(0);
  let outAt = 0;

  for (let rowStart = 0; rowStart < values.length; rowStart += rowLength) {
    for (let i = 0; i < rowLength; i++) {
      const at = outAt + i * rowStep;
      sums[at] = (sums[at] as number) + (values[rowStart + i] as number);
    }

    for (let axis = rank - 2; axis >= 0; axis--) {
      const size = shape[axis] as number;
      const outStep = outSteps[axis] as number;
      position[axis] = (position[axis] as number) + 1;
      outAt += outStep;
      if ((position[axis] as number) < size) break;
      position[axis] = 0;
      outAt -= outStep * size;
    }
  }

  const resultShape = attrs.keepDims
    ? shape.map((size, axis) => (reduced.has(axis) ? 1 : size))
    : outShape;
  return backend.makeTensorInfo(resultShape, 'float32', Float32Array.from(sums));
};

function allFinite(values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) return false;
  }
  return true;
}

const FAST_KERNELS: ReadonlyArray<[string, FastKernel]> = [
  [tf.Conv2DBackpropFilter, conv2dBackpropFilter],
  [tf.MaxPoolGrad, maxPoolGrad],
  [tf.Sum, sum],
];
