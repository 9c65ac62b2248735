import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initRun, isTidemarkError, openReadOnly, readSeries, tfjsCallback } from '@tidemark/core';
import { saveModel } from './model-folder.js';
import { PRESETS } from './presets.js';
import { train } from './train.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(REPO, 'packages/cli/dist/bin.js');
const PROJECT = 'team/mnist';

/**
 * The main job end to end: train the example CNN on real MNIST while tidemark records the run
 * offline, start a team server on loopback, sync the run to it, then read it back locally
 * (plain SQL) and from the server.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { full: { type: 'boolean', default: false } } });
  const preset = values.full ? PRESETS.full : PRESETS.quick;
  const work = join(REPO, '.demo');
  rmSync(work, { recursive: true, force: true });
  const storeDir = join(work, 'store');
  const serverDir = join(work, 'server');
  mkdirSync(work, { recursive: true });

  section(
    `1. train on MNIST (${preset.trainSize} images, ${preset.epochs} epochs), recorded offline`,
  );
  const run = await initRun({
    project: PROJECT,
    name: values.full ? 'cnn-full' : 'cnn-quick',
    description: 'Conv2D(32,3x3,relu) > MaxPool > Flatten > Dense(10,softmax) on MNIST',
    tags: ['demo', 'cnn'],
    dir: storeDir,
  });
  run.set('parameters', {
    train_size: preset.trainSize,
    test_size: preset.testSize,
    epochs: preset.epochs,
    batch_size: 64,
    validation_split: 0.1,
    optimizer: { name: 'adam', learning_rate: 0.001 },
    loss: 'sparseCategoricalCrossentropy',
    seed: 42,
  });

  const started = performance.now();
  const result = await train({
    ...preset,
    seed: 42,
    callbacks: [
      tfjsCallback(run),
      {
        onEpochEnd: async (epoch, logs) =>
          say(`   epoch ${epoch + 1}/${preset.epochs}  ${formatLogs(logs)}`),
      },
    ],
  });
  const seconds = (performance.now() - started) / 1000;
  run.set('results', {
    test_accuracy: result.testAccuracy,
    test_loss: result.testLoss,
    train_seconds: seconds,
  });
  run.log('metrics/test_acc', result.testAccuracy, { step: preset.epochs - 1 });

  const modelDir = mkdtempSync(join(tmpdir(), 'tidemark-demo-model-'));
  await saveModel(result.model, modelDir);
  await run.upload('model', modelDir);
  result.model.dispose();
  await run.stop();
  rmSync(modelDir, { recursive: true, force: true });

  say(
    `   test accuracy ${result.testAccuracy.toFixed(4)} on ${preset.testSize} test images (${seconds.toFixed(1)} s)`,
  );
  say(`   run id ${run.id}  store ${storeDir}`);
  checkStoreMatchesHistory(storeDir, run.id, result.history);

  section('2. plain SQL on the local store');
  await cli([
    'query',
    '--dir',
    storeDir,
    `SELECT s.path, s.count AS points, s.last, s.max FROM series_stats s WHERE s.run_id = '${run.id}' ORDER BY s.path`,
  ]);

  section('3. start a team server on 127.0.0.1 and sync');
  const server = await startServer(serverDir);
  try {
    const env = { TIDEMARK_API_TOKEN: server.token };
    await cli(['sync', '--dir', storeDir, '--remote', server.url], env);
    await cli(['sync', '--dir', storeDir, '--remote', server.url], env);

    section('4. the same run, read back from the server');
    await cli(['show', run.id, '--remote', server.url], env);
    say(
      `\nThe local store is ${storeDir}; try: npm run -s tidemark -- query --dir ${storeDir} "SELECT * FROM runs_view"`,
    );
  } finally {
    await server.stop();
  }
}

/** The numbers in the store must be exactly the ones tfjs reported, epoch by epoch. */
function checkStoreMatchesHistory(
  storeDir: string,
  runId: string,
  history: Array<Record<string, unknown>>,
): void {
  const db = openReadOnly(storeDir);
  try {
    for (const name of Object.keys(history[0] ?? {})) {
      const stored = readSeries(db, runId, `metrics/${name}`).map((p) => p.value);
      const reported = history.map((logs) => logs[name]);
      if (stored.length !== reported.length || stored.some((v, i) => !Object.is(v, reported[i]))) {
        throw new Error(`metrics/${name} in the store differs from what tfjs reported`);
      }
    }
  } finally {
    db.close();
  }
  say(`   the store holds exactly the ${history.length} epochs of logs tfjs reported`);
}

interface DemoServer {
  url: string;
  token: string;
  stop(): Promise<void>;
}

async function startServer(dataDir: string): Promise<DemoServer> {
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--data', dataDir, '--port', '0', '--json'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    child.stdout?.on('data', (data: Buffer) => {
      buffer += data.toString();
      const line = buffer.split('\n').find((l) => l.startsWith('{'));
      if (line !== undefined) resolve((JSON.parse(line) as { data: { url: string } }).data.url);
    });
    child.once('exit', (code) => reject(new Error(`tidemark serve exited with code ${code}`)));
  });
  say(`   server listening on ${url}`);
  const token = readFileSync(join(dataDir, 'initial-token'), 'utf8').trim();
  return { url, token, stop: () => stopChild(child) };
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Runs the real `tidemark` command, showing it and its output as a user would see them. */
function cli(args: string[], env: Record<string, string> = {}): Promise<void> {
  say(`$ tidemark ${args.map((a) => (/[\s"'*]/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: 'inherit',
      env: { ...process.env, ...env },
    });
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`tidemark ${args[0]} exited with code ${code}`)),
    );
  });
}

function formatLogs(logs: Record<string, unknown> | undefined): string {
  return Object.entries(logs ?? {})
    .map(([k, v]) => `${k}=${typeof v === 'number' ? v.toFixed(4) : String(v)}`)
    .join('  ');
}

function section(title: string): void {
  say(`\n== ${title}`);
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  if (isTidemarkError(error) && error.hint !== undefined)
    process.stderr.write(`hint: ${error.hint}\n`);
  process.exitCode = 1;
});
