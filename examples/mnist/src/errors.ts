import { TidemarkError } from '@tidemark/core';

/** The MNIST idx files could not be found, read or understood. Nothing was trained. */
export class MnistDataError extends TidemarkError {}

/** `train()` was called with options it cannot honour. Nothing was loaded or trained. */
export class TrainOptionsError extends TidemarkError {}

/** A model folder could not be written, or read back as a tfjs layers model. */
export class ModelFolderError extends TidemarkError {}
