import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('..', import.meta.url));
export const CLI = join(REPO, 'packages/cli/dist/bin.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `tidemark` command as a child process. */
export function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface RunningServer {
  url: string;
  token: string;
  dataDir: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `tidemark serve` on a free loopback port and waits for its listening envelope. */
export async function startServer(dataDir: string): Promise<RunningServer> {
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--data', dataDir, '--port', '0', '--json'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    child.stdout?.on('data', (d: Buffer) => {
      buffer += d.toString();
      const line = buffer.split('\n').find((l) => l.startsWith('{'));
      if (line !== undefined) resolve((JSON.parse(line) as { data: { url: string } }).data.url);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
  });
  const token = readFileSync(join(dataDir, 'initial-token'), 'utf8').trim();
  return {
    url,
    token,
    dataDir,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export function parseEnvelope<T>(stdout: string): {
  ok: boolean;
  command: string;
  data: T;
  error?: { code: string; message: string; hint?: string };
} {
  return JSON.parse(stdout.trim().split('\n').pop() ?? '') as never;
}
