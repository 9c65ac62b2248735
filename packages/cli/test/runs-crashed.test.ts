import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEnvelope, runCli } from '../../../test/cli-harness.js';

describe('tidemark runs', () => {
  it('shows a run whose writer was killed -9 as crashed, not running', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tidemark-cli-crash-')), '.tidemark');
    const script = `
      import { initRun } from '@tidemark/core';
      const run = await initRun({ project: 'p', dir: ${JSON.stringify(dir)}, captureContext: false });
      run.log('m', 1);
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise((resolve) => child.stdout.once('data', resolve));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;

    const result = await runCli(['runs', '--dir', dir, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const runs = parseEnvelope<{ runs: Array<{ state: string }> }>(result.stdout).data.runs;
    expect(runs.map((r) => r.state)).toEqual(['crashed']);
  });
});
