import type { Run } from './run.js';

export interface TfjsCallbackOptions {
  /** Series path prefix for epoch logs (default `metrics`). */
  prefix?: string;
  /** Also log every batch's logs under `<prefix>/batch/` (default false). */
  logBatches?: boolean;
}

/**
 * A Keras-style callback for TensorFlow.js `model.fit`: every epoch's logs (loss, acc,
 * val_loss, val_acc, ...) become float series at `<prefix>/<name>` with the epoch as step.
 * It is a plain callback object, so tidemark does not depend on tfjs.
 *
 * @example
 * await model.fit(xs, ys, { epochs: 5, callbacks: [tfjsCallback(run)] });
 */
export function tfjsCallback(run: Run, options: TfjsCallbackOptions = {}) {
  const prefix = options.prefix ?? 'metrics';
  let batchStep = 0;
  return {
    onEpochEnd: async (epoch: number, logs?: Record<string, number>): Promise<void> => {
      for (const [name, value] of Object.entries(logs ?? {})) {
        if (typeof value === 'number') run.log(`${prefix}/${name}`, value, { step: epoch });
      }
    },
    onBatchEnd: async (_batch: number, logs?: Record<string, number>): Promise<void> => {
      if (options.logBatches !== true) return;
      for (const [name, value] of Object.entries(logs ?? {})) {
        if (typeof value === 'number' && name !== 'batch' && name !== 'size') {
          run.log(`${prefix}/batch/${name}`, value, { step: batchStep });
        }
      }
      batchStep += 1;
    },
  };
}
