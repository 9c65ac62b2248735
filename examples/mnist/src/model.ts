import * as tf from '@tensorflow/tfjs';

import { CLASS_COUNT, IMAGE_SIDE } from './mnist-data.js';

export interface BuildModelOptions {
  /** Seeds the weight initialisers; without it every model starts from fresh random weights. */
  seed?: number;
}

/**
 * The example's small convolutional classifier, compiled and ready for `fit`:
 * Conv2D(32 filters, 3x3, relu) on 28x28x1 input, 2x2 max pooling, flatten, Dense(10, softmax),
 * trained with Adam on sparse categorical cross-entropy (labels are class indices, not
 * one-hot rows). Its epoch logs carry `loss` and `acc`, plus `val_loss` and `val_acc` when
 * fit with validation data.
 */
export function buildModel(options: BuildModelOptions = {}): tf.Sequential {
  const model = tf.sequential();

  model.add(
    tf.layers.conv2d({
      inputShape: [IMAGE_SIDE, IMAGE_SIDE, 1],
      filters: 32,
      kernelSize: 3,
      activation: 'relu',
      kernelInitializer: glorotUniform(options.seed, 0),
    }),
  );
  model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  model.add(tf.layers.flatten());
  model.add(
    tf.layers.dense({
      units: CLASS_COUNT,
      activation: 'softmax',
      kernelInitializer: glorotUniform(options.seed, 1),
    }),
  );

  model.compile({
    optimizer: 'adam',
    loss: 'sparseCategoricalCrossentropy',
    metrics: ['accuracy'],
  });
  return model;
}

/** The layers' default initialiser, seeded per layer so two layers never draw the same stream. */
function glorotUniform(seed: number | undefined, layerIndex: number) {
  return tf.initializers.glorotUniform(seed === undefined ? {} : { seed: seed + layerIndex });
}
