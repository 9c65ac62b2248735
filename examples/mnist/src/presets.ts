import type { TrainOptions } from './train.js';

export type TrainPreset = Pick<TrainOptions, 'trainSize' | 'testSize' | 'epochs'>;

/**
 * Sizes for `train`. `quick` is what the demo runs: on a 2-core machine with the fast cpu
 * kernels it trains in under a minute and scores above 0.9 on the whole test set. `full` is
 * every MNIST image for 5 epochs, about 16 minutes there.
 */
export const PRESETS = {
  quick: { trainSize: 7_000, testSize: 10_000, epochs: 2 },
  full: { trainSize: 60_000, testSize: 10_000, epochs: 5 },
} as const satisfies Record<string, TrainPreset>;
