import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getRun, listRuns, openReadOnly, readSeries, Store, type StoreError } from '@tidemark/core';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

describe('the store', () => {
  it('refuses a file that is not SQLite, and leaves it unchanged', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'store.db'), 'definitely not a database, just text');
    expect(() => Store.open({ dir })).toThrow(/not a SQLite database/);
  });

  it('refuses a SQLite database that is not a tidemark store', () => {
    const dir = tempDir();
    const db = new Database(join(dir, 'store.db'));
    db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY)');
    db.close();
    const error = (() => {
      try {
        Store.open({ dir });
      } catch (e) {
        return e as StoreError;
      }
    })();
    expect(error?.code).toBe('foreign_database');
    expect(error?.hint).toMatch(/not changed/);
  });

  it('refuses a store migrated by a newer version', () => {
    const dir = tempDir();
    Store.open({ dir }).close();
    const db = new Database(join(dir, 'store.db'));
    db.prepare('INSERT INTO __drizzle_migrations (hash, created_at) VALUES (?, ?)').run(
      'future',
      99_999_999_999_999,
    );
    db.close();
    expect(() => Store.open({ dir })).toThrow(/newer tidemark/);
  });

  it('does not create a store where create is false', () => {
    expect(() => Store.open({ dir: join(tempDir(), 'absent'), create: false })).toThrow(
      /no tidemark store/,
    );
  });

  it('marks a run whose writer was killed as crashed on the next open', async () => {
    const dir = tempDir();
    const script = `
      import { initRun } from '@tidemark/core';
      const run = await initRun({ project: 'p', dir: ${JSON.stringify(dir)}, captureContext: false });
      run.log('m', 1);
      process.stdout.write(run.id + '\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const runId = await new Promise<string>((resolve) =>
      child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())),
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;

    Store.open({ dir }).close();
    const db = openReadOnly(dir);
    const run = getRun(db, runId);
    expect(run.state).toBe('crashed');
    expect(readSeries(db, runId, 'm')).toHaveLength(1);
    expect(listRuns(db)).toHaveLength(1);
    db.close();
  });

  it('loses no point a durable log call returned from when the writer is killed -9', async () => {
    const dir = tempDir();
    const script = `
      import { initRun } from '@tidemark/core';
      const run = await initRun({ project: 'p', dir: ${JSON.stringify(dir)}, captureContext: false });
      process.stdout.write('id ' + run.id + '\\n');
      for (let i = 0; ; i++) { run.log('m', i * 0.5, { step: i }); process.stdout.write('ok ' + i + '\\n'); }
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let runId = '';
    let confirmed = -1;
    let buffer = '';
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (data: Buffer) => {
        buffer += data.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop() ?? '';
        for (const line of lines) {
          if (line.startsWith('id ')) runId = line.slice(3);
          if (line.startsWith('ok ')) confirmed = Number(line.slice(3));
        }
        if (confirmed >= 300) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((resolve) => child.once('exit', resolve));

    const db = openReadOnly(dir);
    const points = readSeries(db, runId, 'm');
    expect(points.length).toBeGreaterThanOrEqual(confirmed + 1);
    for (const [i, p] of points.entries()) expect(p.value).toBe(i * 0.5);
    db.close();
  });
});
