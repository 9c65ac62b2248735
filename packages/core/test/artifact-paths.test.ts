import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getRun, listRuns, openReadOnly, ValidationError } from '@tidemark/core';
import { describe, expect, it } from 'vitest';
import { openScratchStore, scratch, startRun } from './artifact-helpers.js';

const BAD_PATHS = [
  `long/${'a'.repeat(256)}`,
  '..',
  '.',
  '../evil',
  'a/./b',
  'a/..',
  'a\\b',
  'a//b',
  '',
  '/abs',
];

describe('artifact paths', () => {
  it("refuses '.', '..', empty segments, names over 255 bytes and backslashes in upload and logFile with a hint, recording nothing", async () => {
    const { dir, store } = openScratchStore();
    const run = await startRun(dir);
    const source = join(scratch(), 'a.bin');
    writeFileSync(source, 'bytes');

    for (const path of BAD_PATHS) {
      for (const call of [() => run.upload(path, source), () => run.logFile(path, source)]) {
        const error = await call().then(
          () => undefined,
          (caught: unknown) => caught,
        );
        expect(error, path).toBeInstanceOf(ValidationError);
        expect(error, path).toMatchObject({ code: 'invalid_path', hint: expect.any(String) });
      }
    }
    await run.upload('model/v1', source);
    await run.logFile('images/v1', source, { step: 0 });

    const db = store.db;
    expect(db.prepare('SELECT path FROM files').pluck().all()).toEqual(['model/v1']);
    expect(db.prepare('SELECT path FROM series').pluck().all()).toEqual(['images/v1']);
    const journaled = db
      .prepare("SELECT json_extract(payload, '$.path') FROM journal WHERE kind = 'file.add'")
      .pluck()
      .all();
    expect(journaled).toEqual(['model/v1']);
  });

  it("reads a store that already holds a '..' artifact path without failing", async () => {
    const { dir, store } = openScratchStore();
    const run = await startRun(dir);
    const source = join(scratch(), 'a.bin');
    writeFileSync(source, 'bytes');
    await run.upload('model', source);
    await run.logFile('frames', source, { step: 0 });
    // As an earlier tidemark recorded them, before such paths were refused.
    store.db.prepare("UPDATE files SET path = '..' WHERE path = 'model'").run();
    store.db.prepare("UPDATE series SET path = 'a/./..' WHERE path = 'frames'").run();
    await run.stop();

    const db = openReadOnly(dir);
    const detail = getRun(db, run.id);
    expect(detail.files.map((file) => file.path)).toEqual(['..']);
    expect(detail.series.map((series) => series.path)).toEqual(['a/./..']);
    expect(listRuns(db).map((summary) => summary.id)).toEqual([run.id]);
    db.close();
  });
});
