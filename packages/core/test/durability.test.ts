import { getRun, openReadOnly, readSeries, Store } from '@tidemark/core';
import { describe, expect, it } from 'vitest';
import { killHard, runScript } from './child.js';
import { tempDir } from './helpers.js';

/** A script that starts a run in `dir` with `options`, prints its id, then runs `body`. */
function writer(dir: string, options: string, body: string): string {
  return `
    import { initRun } from '@tidemark/core';
    const run = await initRun({ project: 'p', dir: ${JSON.stringify(dir)}, captureContext: false, ${options} });
    process.stdout.write('id ' + run.id + '\\n');
    ${body}
  `;
}

const idOf = (line: string): string => line.slice(3);

describe('durability', () => {
  it('loses no point, field or tag a durable call returned from when the writer is killed -9', async () => {
    const dir = tempDir();
    const script = runScript(
      writer(
        dir,
        '',
        `for (let i = 0; ; i++) {
           run.log('m', i / 3, { step: i });
           if (i % 50 === 0) { run.set('progress/' + i, i); run.addTags('t' + i); }
           process.stdout.write('ok ' + i + '\\n');
         }`,
      ),
    );
    const runId = idOf(await script.waitFor((l) => l.startsWith('id ')));
    await script.waitFor((l) => l === 'ok 400');
    await killHard(script);
    const confirmed = Math.max(
      ...script.lines.filter((l) => l.startsWith('ok ')).map((l) => Number(l.slice(3))),
    );

    await Store.open({ dir }).close();
    const db = openReadOnly(dir);
    const points = readSeries(db, runId, 'm');
    expect(points.length).toBeGreaterThanOrEqual(confirmed + 1);
    for (const [i, p] of points.entries()) expect([p.step, p.value]).toEqual([i, i / 3]);
    const run = getRun(db, runId);
    expect(run.state).toBe('crashed');
    for (let i = 0; i <= confirmed; i += 50) {
      expect(run.tags).toContain(`t${i}`);
      expect(run.fields.find((f) => f.path === `progress/${i}`)?.value).toBe(i);
    }
    db.close();
  });

  it('loses at most the points still buffered in batched mode when killed -9', async () => {
    const dir = tempDir();
    const script = runScript(
      writer(
        dir,
        "logMode: 'batched', maxBufferedPoints: 100, flushIntervalMs: 3_600_000",
        `for (let i = 0; i < 1050; i++) run.log('m', i, { step: i });
         process.stdout.write('logged\\n');
         setInterval(() => {}, 1000);`,
      ),
    );
    const runId = idOf(await script.waitFor((l) => l.startsWith('id ')));
    await script.waitFor((l) => l === 'logged');
    await killHard(script);

    const db = openReadOnly(dir);
    const steps = readSeries(db, runId, 'm').map((p) => p.step);
    // Ten full buffers were committed as they filled; the last 50 points were the window.
    expect(steps).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    db.close();
  });

  it('commits a batched buffer once flushIntervalMs passes, with no further call', async () => {
    const dir = tempDir();
    const script = runScript(
      writer(
        dir,
        "logMode: 'batched', maxBufferedPoints: 100000, flushIntervalMs: 100",
        `for (let i = 0; i < 5; i++) run.log('m', i, { step: i });
         process.stdout.write('logged\\n');
         setInterval(() => {}, 1000);`,
      ),
    );
    const runId = idOf(await script.waitFor((l) => l.startsWith('id ')));
    await script.waitFor((l) => l === 'logged');

    const count = (): number => {
      const db = openReadOnly(dir);
      try {
        return readSeries(db, runId, 'm').length;
      } catch {
        return 0;
      } finally {
        db.close();
      }
    };
    const deadline = Date.now() + 10_000;
    while (count() < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await killHard(script);
    expect(count()).toBe(5);
  });

  const endings = [
    {
      how: 'stop()',
      body: 'await run.stop();',
      state: 'finished',
      failure: null,
      signal: undefined,
    },
    {
      how: 'a normal exit without stop()',
      body: '',
      state: 'finished',
      failure: null,
      signal: undefined,
    },
    {
      how: 'an exit with code 3',
      body: 'process.exitCode = 3;',
      state: 'failed',
      failure: 'process exited with code 3',
      signal: undefined,
    },
    {
      how: 'SIGINT',
      body: 'setInterval(() => {}, 1000);',
      state: 'failed',
      failure: 'interrupted by SIGINT',
      signal: 'SIGINT' as const,
    },
    {
      how: 'SIGTERM',
      body: 'setInterval(() => {}, 1000);',
      state: 'failed',
      failure: 'interrupted by SIGTERM',
      signal: 'SIGTERM' as const,
    },
  ];

  for (const ending of endings) {
    it(`writes every buffered point and the final state on ${ending.how}`, async () => {
      const dir = tempDir();
      const script = runScript(
        writer(
          dir,
          "logMode: 'batched', maxBufferedPoints: 100000, flushIntervalMs: 3_600_000",
          `for (let i = 0; i < 500; i++) run.log('m', i * 0.25, { step: i });
           run.log('logs', 'last line ✓');
           process.stdout.write('logged\\n');
           ${ending.body}`,
        ),
      );
      const runId = idOf(await script.waitFor((l) => l.startsWith('id ')));
      await script.waitFor((l) => l === 'logged');
      if (ending.signal !== undefined) script.child.kill(ending.signal);
      const exit = await script.exited;
      expect(exit.signal).toBe(ending.signal ?? null);

      const db = openReadOnly(dir);
      const points = readSeries(db, runId, 'm');
      expect(points.map((p) => p.value)).toEqual(Array.from({ length: 500 }, (_, i) => i * 0.25));
      expect(readSeries(db, runId, 'logs').map((p) => p.value)).toEqual(['last line ✓']);
      const run = getRun(db, runId);
      expect([run.state, run.failure]).toEqual([ending.state, ending.failure]);
      db.close();
    });
  }

  it('leaves a SIGTERM the program handles itself to the program, buffered points committed', async () => {
    const dir = tempDir();
    const script = runScript(
      writer(
        dir,
        "logMode: 'batched', maxBufferedPoints: 100000, flushIntervalMs: 3_600_000",
        `process.on('SIGTERM', async () => {
           run.log('m', -1, { step: 100 });
           await run.stop();
           process.exit(0);
         });
         for (let i = 0; i < 100; i++) run.log('m', i, { step: i });
         process.stdout.write('logged\\n');
         setInterval(() => {}, 1000);`,
      ),
    );
    const runId = idOf(await script.waitFor((l) => l.startsWith('id ')));
    await script.waitFor((l) => l === 'logged');
    script.child.kill('SIGTERM');
    expect((await script.exited).code).toBe(0);

    const db = openReadOnly(dir);
    expect(readSeries(db, runId, 'm')).toHaveLength(101);
    expect(getRun(db, runId).state).toBe('finished');
    db.close();
  });
});
