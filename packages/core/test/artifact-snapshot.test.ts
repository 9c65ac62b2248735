import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import {
  onCleanup,
  openScratchStore,
  randomBytes,
  recordedManifest,
  scratch,
  startRun,
  storedObjects,
  strayFiles,
} from './artifact-helpers.js';

describe('snapshot at log time', () => {
  it('records the bytes as they were when upload returned, 100 times in a row, whatever happens to the source next', async () => {
    const { dir, store } = openScratchStore();
    const run = await startRun(dir);
    const work = scratch();
    const expected = new Map<string, Map<string, Buffer>>();

    for (let i = 0; i < 100; i++) {
      const path = `model/v${i}`;
      if (i % 10 === 9) {
        const folder = join(work, `folder-${i}`);
        const files = new Map([
          ['a.bin', randomBytes(1000 + i)],
          ['nested/b.bin', randomBytes(300 * 1024 + i)],
        ]);
        mkdirSync(join(folder, 'nested'), { recursive: true });
        for (const [name, bytes] of files) writeFileSync(join(folder, name), bytes);
        await run.upload(path, folder);
        rmSync(folder, { recursive: true });
        expected.set(path, files);
        continue;
      }

      const source = join(work, 'checkpoint.bin');
      const bytes = randomBytes(1 + ((i * 7919) % (1536 * 1024)));
      writeFileSync(source, bytes);
      await run.upload(path, source);
      expected.set(path, new Map([['', bytes]]));

      // Right after the call returns: delete, rewrite in place, truncate, or replace by rename.
      if (i % 4 === 0) rmSync(source);
      else if (i % 4 === 1) writeFileSync(source, randomBytes(bytes.length));
      else if (i % 4 === 2) truncateSync(source, 0);
      else {
        writeFileSync(`${source}.new`, randomBytes(bytes.length + 1));
        renameSync(`${source}.new`, source);
      }
    }

    for (const [path, files] of expected) {
      const out = join(scratch(), 'restored');
      await store.objects.restore(recordedManifest(store, run.id, path), out);
      for (const [name, bytes] of files) {
        const restored = readFileSync(name === '' ? out : join(out, name));
        expect(restored.equals(bytes), `${path} ${name}`).toBe(true);
      }
    }
    expect(strayFiles(store.objects.dir)).toEqual([]);
  });

  it('never records a torn object while another process appends to the file being logged', async () => {
    const { dir, store } = openScratchStore();
    const run = await startRun(dir);
    const source = join(scratch(), 'growing.log');
    writeFileSync(source, pattern(0, 3 * 1024 * 1024));
    const appender = await startAppender(source);

    const sizes: number[] = [];
    for (let i = 0; i < 12; i++) {
      await run.upload(`log/v${i}`, source);
      const manifest = await store.objects.readManifest(
        recordedManifest(store, run.id, `log/v${i}`),
      );
      sizes.push(manifest.size);
    }
    appender.kill('SIGKILL');

    expect(sizes.at(-1)).toBeGreaterThan(sizes[0] as number);
    for (let i = 0; i < sizes.length; i++) {
      const out = join(scratch(), 'restored.log');
      // restore() reads every chunk through the digest check, so a torn object would throw here.
      await store.objects.restore(recordedManifest(store, run.id, `log/v${i}`), out);
      const restored = readFileSync(out);
      expect(restored.length).toBe(sizes[i]);
      expect(restored.equals(pattern(0, restored.length)), `version ${i}`).toBe(true);
    }
    expect(storedObjects(store.objects.dir).size).toBeGreaterThan(sizes.length);
  });

  it('keeps the event loop turning while a large file is snapshotted in the worker pool', async () => {
    const { dir } = openScratchStore();
    const run = await startRun(dir);
    const source = join(scratch(), 'checkpoint.bin');
    writeFileSync(source, randomBytes(192 * 1024 * 1024));

    const period = 5;
    let ticks = 0;
    let worstLag = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worstLag = Math.max(worstLag, now - last - period);
      last = now;
      ticks += 1;
    }, period);
    const started = performance.now();
    try {
      await run.upload('model', source);
    } finally {
      clearInterval(timer);
    }
    const elapsed = performance.now() - started;

    // On the main thread the snapshot would stall the timer for about its whole duration; off
    // it, what remains is scheduling noise of a busy machine (about 25 ms when it is quiet).
    expect(elapsed).toBeGreaterThan(200);
    expect(worstLag).toBeLessThan(Math.min(250, elapsed / 4));
    expect(ticks).toBeGreaterThan(elapsed / (period * 10));
  });
});

/** The byte at offset i of the appended stream is a function of i, so any prefix is checkable. */
function pattern(from: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) {
    const at = from + i;
    out[i] = (at ^ (at >>> 8) ^ (at >>> 16) ^ (at >>> 24)) & 0xff;
  }
  return out;
}

/** A child process that appends the pattern to `path`, 64 KiB a millisecond, until killed. */
async function startAppender(path: string): Promise<ChildProcess> {
  const script = `
    const fs = require('node:fs');
    const path = process.argv[1];
    const fd = fs.openSync(path, 'a');
    let at = fs.fstatSync(fd).size;
    const block = Buffer.allocUnsafe(64 * 1024);
    const pause = new Int32Array(new SharedArrayBuffer(4));
    process.stdout.write('started\\n');
    for (;;) {
      for (let i = 0; i < block.length; i++) {
        const o = at + i;
        block[i] = (o ^ (o >>> 8) ^ (o >>> 16) ^ (o >>> 24)) & 0xff;
      }
      fs.writeSync(fd, block);
      at += block.length;
      if (at > 128 * 1024 * 1024) process.exit(0);
      Atomics.wait(pause, 0, 0, 1);
    }`;
  const child = spawn(process.execPath, ['-e', script, path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  onCleanup(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  await once(lines, 'line');
  lines.close();
  return child;
}
