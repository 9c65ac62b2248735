export { MnistDataError, ModelFolderError, TrainOptionsError } from './errors.js';
export { useFastCpuKernels, useStockCpuKernels } from './fast-cpu-kernels.js';
export {
  CLASS_COUNT,
  type IdxArray,
  IMAGE_PIXELS,
  IMAGE_SIDE,
  type LoadMnistOptions,
  loadMnist,
  locateMnistDataDir,
  MNIST_TEST_COUNT,
  MNIST_TRAIN_COUNT,
  type MnistData,
  type MnistSplit,
  parseIdx,
  toSplit,
} from './mnist-data.js';
export { type BuildModelOptions, buildModel } from './model.js';
export { loadModel, MODEL_FILE, saveModel, WEIGHTS_FILE } from './model-folder.js';
export { PRESETS, type TrainPreset } from './presets.js';
export { type TrainOptions, type TrainResult, train } from './train.js';
