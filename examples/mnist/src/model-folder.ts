import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';

import { ModelFolderError } from './errors.js';

export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';

/**
 * Writes `model` into `dir` (created if needed) in the tfjs layers-model format: `model.json`
 * holds the topology and a weights manifest naming `weights.bin`, which holds every weight as
 * little-endian bytes in manifest order. Optimizer state is left out, as tfjs does by default.
 * tfjs has a `file://` handler only in its native Node package; this is the pure-JS stand-in,
 * given to `model.save`.
 *
 * Each file is replaced whole: temp file in `dir`, fsync, rename, fsync `dir`. `weights.bin`
 * goes first so a new `model.json` never names weights that are not on disk yet; a failure
 * between the two leaves the new `weights.bin` beside the previous `model.json`.
 *
 * @throws ModelFolderError `disk_full`, `permission_denied` or (retryable) `write_failed`.
 */
export async function saveModel(model: tf.LayersModel, dir: string): Promise<tf.io.SaveResult> {
  return model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new ModelFolderError('unsupported_model', 'only layers models can be saved here');
      }

      const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology ?? {},
        weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: artifacts.convertedBy ?? null,
        ...(artifacts.trainingConfig === undefined
          ? {}
          : { trainingConfig: artifacts.trainingConfig }),
      };

      await mkdir(dir, { recursive: true }).catch((error: unknown) => {
        throw toSaveError(error, dir);
      });
      await replaceFile(join(dir, WEIGHTS_FILE), weights);
      await replaceFile(join(dir, MODEL_FILE), new TextEncoder().encode(JSON.stringify(modelJson)));
      await syncFolder(dir);

      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
}

/**
 * Reads back a folder written by `saveModel`. No optimizer state is saved, so the model comes
 * back uncompiled: it can `predict`, and needs `compile` before `fit` or `evaluate`.
 *
 * @throws ModelFolderError `model_missing` when a file is absent, `model_unreadable` otherwise.
 */
export async function loadModel(dir: string): Promise<tf.LayersModel> {
  const modelJson = parseModelJson(await readModelFile(dir, MODEL_FILE, 'utf8'), dir);
  const weights = await readModelFile(dir, WEIGHTS_FILE);

  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: modelJson.modelTopology,
      weightSpecs: modelJson.weightsManifest.flatMap((group) => group.weights),
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
      ...(modelJson.trainingConfig === undefined
        ? {}
        : { trainingConfig: modelJson.trainingConfig }),
    }),
  );
}

async function readModelFile(dir: string, name: string): Promise<Buffer>;
async function readModelFile(dir: string, name: string, encoding: 'utf8'): Promise<string>;
async function readModelFile(
  dir: string,
  name: string,
  encoding?: 'utf8',
): Promise<Buffer | string> {
  const path = join(dir, name);
  try {
    return await readFile(path, encoding);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new ModelFolderError(
      missing ? 'model_missing' : 'model_unreadable',
      `cannot read ${path}`,
      missing ? { hint: 'Pass the folder that saveModel wrote.', cause: error } : { cause: error },
    );
  }
}

function parseModelJson(text: string, dir: string): tf.io.ModelJSON {
  try {
    return JSON.parse(text) as tf.io.ModelJSON;
  } catch (error) {
    throw new ModelFolderError('model_unreadable', `${join(dir, MODEL_FILE)} is not JSON`, {
      cause: error,
    });
  }
}

async function replaceFile(target: string, bytes: Uint8Array): Promise<void> {
  const temp = `${target}.${randomBytes(6).toString('hex')}.tmp`;

  try {
    const handle = await open(temp, 'wx');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw toSaveError(error, target);
  }
}

async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function toSaveError(error: unknown, path: string): ModelFolderError {
  const code = (error as NodeJS.ErrnoException).code;

  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new ModelFolderError('disk_full', `no space left to write ${path}`, {
      hint: 'Free disk space and save again.',
      cause: error,
    });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new ModelFolderError('permission_denied', `cannot write ${path}`, {
      hint: 'Choose a folder this user can write to.',
      cause: error,
    });
  }
  return new ModelFolderError('write_failed', `writing ${path} failed (${code ?? 'unknown'})`, {
    retryable: true,
    cause: error,
  });
}
