import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { ModelFolderError } from '../src/errors.js';
import { buildModel } from '../src/model.js';
import { loadModel, MODEL_FILE, saveModel, WEIGHTS_FILE } from '../src/model-folder.js';

describe('model folder', () => {
  let dir: string;

  beforeAll(async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tidemark-mnist-model-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('saves a model that loads back and predicts the same', async () => {
    const model = buildModel({ seed: 5 });
    const images = tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 6);

    await saveModel(model, join(dir, 'model'));
    const loaded = await loadModel(join(dir, 'model'));

    const manifest = JSON.parse(await readFile(join(dir, 'model', MODEL_FILE), 'utf8'));
    expect(manifest.weightsManifest[0].paths).toEqual([WEIGHTS_FILE]);
    const weights = await readFile(join(dir, 'model', WEIGHTS_FILE));
    expect(weights.length).toBe(4 * model.countParams());
    const expected = (model.predict(images) as tf.Tensor).dataSync();
    expect((loaded.predict(images) as tf.Tensor).dataSync()).toEqual(expected);
  });

  it('replaces an earlier save in the same folder and leaves no temp files', async () => {
    await saveModel(buildModel({ seed: 1 }), dir);
    const second = buildModel({ seed: 2 });

    await saveModel(second, dir);

    expect((await readdir(dir)).sort()).toEqual([MODEL_FILE, WEIGHTS_FILE]);
    const loaded = await loadModel(dir);
    const kernel = (model: tf.LayersModel) => model.getWeights()[0]?.dataSync();
    expect(kernel(loaded)).toEqual(kernel(second));
  });

  it('names the file when there is no saved model in a folder', async () => {
    const failure = loadModel(join(dir, 'nothing-here'));

    await expect(failure).rejects.toBeInstanceOf(ModelFolderError);
    await expect(failure).rejects.toMatchObject({ code: 'model_missing' });
    await expect(failure).rejects.toThrow(join(dir, 'nothing-here', MODEL_FILE));
  });

  it('reports a model.json that is not JSON as unreadable', async () => {
    await writeFile(join(dir, MODEL_FILE), '{"modelTopology": ');
    await writeFile(join(dir, WEIGHTS_FILE), new Uint8Array(8));

    await expect(loadModel(dir)).rejects.toMatchObject({ code: 'model_unreadable' });
  });
});
