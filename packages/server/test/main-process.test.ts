import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from './harness.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.resolve('@tidemark/server')));

const children: ChildProcess[] = [];
const folders: string[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function serve(args: string[]): { child: ChildProcess; stderr: string[] } {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const stderr: string[] = [];
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) =>
    stderr.push(line),
  );
  return { child, stderr };
}

async function firstLine(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const [line] = (await once(lines, 'line')) as [string];
  lines.close();
  return line;
}

describe('dist/main.js as a process', () => {
  it('prints its URL once bound on 127.0.0.1, serves with the initial token and stops on SIGTERM', async () => {
    const dataDir = tempDir();
    folders.push(dataDir);
    const { child, stderr } = serve(['--data', dataDir, '--port', '0', '--host', '127.0.0.1']);

    const listening = JSON.parse(await firstLine(child)) as { event: string; url: string };
    expect(listening.event).toBe('listening');
    expect(listening.url).toMatch(/^http:\/\/127\.0\.0\.1:[0-9]+$/);

    const token = readFileSync(join(dataDir, 'initial-token'), 'utf8').trim();
    const health = await fetch(`${listening.url}/api/v1/health`);
    const whoami = await fetch(`${listening.url}/api/v1/whoami`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(health.status).toBe(200);
    expect(((await whoami.json()) as { projects: string[] }).projects).toEqual(['*']);

    const exited = once(child, 'close');
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];

    expect(code).toBe(0);
    const events = stderr.map((line) => JSON.parse(line) as { event: string });
    expect(events.map((e) => e.event)).toEqual([
      'initial_token',
      'listening',
      'stopping',
      'stopped',
    ]);
    expect(stderr.join('\n')).not.toContain(token);
  });

  it('exits 2 with a usage line on stderr when --data is missing', async () => {
    const { child, stderr } = serve(['--port', '0']);

    const [code] = (await once(child, 'close')) as [number | null];

    expect(code).toBe(2);
    expect(JSON.parse(stderr[0] as string)).toMatchObject({ level: 'error', event: 'usage' });
  });
});
