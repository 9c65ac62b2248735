import { parseArgs } from 'node:util';

import { isTidemarkError } from '@tidemark/core';

import { TrainOptionsError } from './errors.js';
import { saveModel } from './model-folder.js';
import { PRESETS } from './presets.js';
import { type TrainOptions, train } from './train.js';

const USAGE = `Usage: node examples/mnist/dist/train-cli.js [options]

Trains the example MNIST model on tfjs's cpu backend and prints the test accuracy.
Epoch logs go to stderr as they come; the result goes to stdout as one JSON line.

Options:
  --full               every image: 60000 training, 10000 test, 5 epochs (about 16 minutes)
  --train-size N       training images, validation share included (quick: ${PRESETS.quick.trainSize})
  --test-size N        test images (quick: ${PRESETS.quick.testSize})
  --epochs N           (quick: ${PRESETS.quick.epochs})
  --batch-size N       (default 64)
  --seed N             repeatable run: seeds the initial weights and the image order
  --save DIR           write model.json and weights.bin into DIR after training
  --stock-kernels      use tfjs's own cpu kernels (epochs about 10x slower)
  -h, --help           show this help

Exit codes: 0 trained, 1 data, training or save error, 2 bad arguments.`;

async function main(argv: string[]): Promise<number> {
  let command: CommandLine;
  try {
    command = parseCommandLine(argv);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}\n`);
    return 2;
  }

  if (command.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { options, saveDir } = command;

  const started = performance.now();
  const onEpochEnd = (epoch: number, logs: Record<string, number> = {}): void => {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const fields = Object.entries(logs).map(([name, value]) => `${name}=${value.toFixed(4)}`);
    process.stderr.write(`epoch epoch=${epoch} ${fields.join(' ')} seconds=${seconds}\n`);
  };

  try {
    const result = await train({ ...options, callbacks: [{ onEpochEnd }] });
    const seconds = (performance.now() - started) / 1000;
    if (saveDir !== undefined) await saveModel(result.model, saveDir);
    result.model.dispose();

    const summary = {
      train_size: options.trainSize,
      test_size: options.testSize,
      epochs: options.epochs,
      test_loss: result.testLoss,
      test_accuracy: result.testAccuracy,
      seconds: Number(seconds.toFixed(1)),
      ...(saveDir === undefined ? {} : { saved_to: saveDir }),
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`${describe(error)}\n`);
    return error instanceof TrainOptionsError ? 2 : 1;
  }
}

interface CommandLine {
  help: boolean;
  options: TrainOptions;
  saveDir: string | undefined;
}

function parseCommandLine(argv: string[]): CommandLine {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      full: { type: 'boolean' },
      'train-size': { type: 'string' },
      'test-size': { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      seed: { type: 'string' },
      save: { type: 'string' },
      'stock-kernels': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });

  const preset = values.full === true ? PRESETS.full : PRESETS.quick;
  const options: TrainOptions = {
    trainSize: numberFlag('--train-size', values['train-size']) ?? preset.trainSize,
    testSize: numberFlag('--test-size', values['test-size']) ?? preset.testSize,
    epochs: numberFlag('--epochs', values.epochs) ?? preset.epochs,
    fastKernels: values['stock-kernels'] !== true,
  };

  const batchSize = numberFlag('--batch-size', values['batch-size']);
  if (batchSize !== undefined) options.batchSize = batchSize;
  const seed = numberFlag('--seed', values.seed);
  if (seed !== undefined) options.seed = seed;

  return { help: values.help === true, options, saveDir: values.save };
}

function numberFlag(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) {
    throw new Error(`${flag} needs a number, got '${text}'`);
  }
  return value;
}

function describe(error: unknown): string {
  if (isTidemarkError(error)) {
    const hint = error.hint === undefined ? '' : `\nhint: ${error.hint}`;
    return `error ${error.code}: ${error.message}${hint}`;
  }
  return error instanceof Error
    ? `error: ${error.stack ?? error.message}`
    : `error: ${String(error)}`;
}

process.exitCode = await main(process.argv.slice(2));
