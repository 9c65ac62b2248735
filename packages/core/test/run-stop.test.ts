import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getRun, openReadOnly, readSeries, ValidationError } from '@tidemark/core';
import { describe, expect, it } from 'vitest';
import { randomBytes, scratch, startRun } from './artifact-helpers.js';
import { runScript } from './child.js';

function folderOf(count: number, size: number): string {
  const folder = join(scratch(), 'folder');
  mkdirSync(folder);
  for (let i = 0; i < count; i++) writeFileSync(join(folder, `f${i}.bin`), randomBytes(size));
  return folder;
}

describe('run.stop with artifacts in flight', () => {
  it('waits for an upload and a logFile the caller did not await, and records both', async () => {
    const dir = join(scratch(), '.tidemark');
    const run = await startRun(dir);
    const folder = folderOf(30, 300 * 1024);
    const frame = join(scratch(), 'frame.png');
    writeFileSync(frame, randomBytes(2000));

    const upload = run.upload('checkpoint', folder);
    const point = run.logFile('frames', frame, { step: 3 });
    await run.stop();

    await expect(upload).resolves.toBeUndefined();
    await expect(point).resolves.toBeUndefined();
    const db = openReadOnly(dir);
    const detail = getRun(db, run.id);
    expect(detail.state).toBe('finished');
    expect(detail.files).toMatchObject([{ path: 'checkpoint', kind: 'dir', fileCount: 30 }]);
    expect(readSeries(db, run.id, 'frames').map((p) => p.step)).toEqual([3]);
    db.close();
  });

  it('refuses calls made once stop() was called, while it waits and after, with run_ended and a hint', async () => {
    const dir = join(scratch(), '.tidemark');
    const run = await startRun(dir);
    const folder = folderOf(10, 300 * 1024);
    const pending = run.upload('early', folder);

    const stopping = run.stop();
    const whileStopping = run.upload('late', folder).catch((error: unknown) => error);
    expect(() => run.log('m', 1)).toThrow(ValidationError);
    await stopping;
    const afterStop = run.upload('later', folder).catch((error: unknown) => error);

    for (const error of [await whileStopping, await afterStop]) {
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ code: 'run_ended', hint: expect.stringContaining('run') });
    }
    await pending;
    const db = openReadOnly(dir);
    expect(getRun(db, run.id).files.map((file) => file.path)).toEqual(['early']);
    db.close();
  });

  it('does not crash the process when stop() follows a folder upload that failed midway', async () => {
    const root = scratch();
    // Once a first object exists the folder has been listed; half of it then disappears.
    const script = runScript(
      `import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
       import { randomBytes } from 'node:crypto';
       import { join } from 'node:path';
       import { setImmediate as tick } from 'node:timers/promises';
       import { initRun } from '@tidemark/core';
       const root = ${JSON.stringify(root)};
       for (let round = 0; round < 3; round++) {
         const folder = join(root, 'folder-' + round);
         const dir = join(root, 'store-' + round);
         mkdirSync(folder);
         const names = Array.from({ length: 200 }, (_, i) => 'f' + String(i).padStart(3, '0'));
         for (const name of names) writeFileSync(join(folder, name), randomBytes(64 * 1024));
         const run = await initRun({ project: 'p', dir, captureContext: false, handleExit: false });
         const upload = run.upload('m', folder);
         const objects = join(dir, 'objects');
         while (!readdirSync(objects).some((name) => /^[0-9a-f]{2}$/.test(name))) await tick();
         for (const name of names.slice(100)) rmSync(join(folder, name));
         await upload.then(() => console.log('uploaded'), (error) => console.log('rejected ' + error.code));
         await run.stop();
         console.log('stopped ' + round);
       }`,
    );

    const exit = await script.exited;

    expect(script.stderr()).not.toMatch(/Unexpected message/);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(script.lines.filter((line) => line.startsWith('rejected '))).toHaveLength(3);
    expect(script.lines.filter((line) => line.startsWith('stopped '))).toHaveLength(3);
  });
});
