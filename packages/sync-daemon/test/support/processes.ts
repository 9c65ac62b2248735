import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';

export const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
export const CLI = join(REPO, 'packages/cli/dist/bin.js');
export const SERVER_MAIN = join(REPO, 'packages/server/dist/main.js');

const children = new Set<ChildProcess>();

// Every process a test started is ended by its pid, whatever the test's outcome.
afterEach(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
  }
  children.clear();
});

/**
 * A child process whose stderr and stdout are read as JSON lines where they are JSON. Tests
 * wait on the lines it writes, never on the clock.
 */
export class Child {
  readonly process: ChildProcess;
  readonly lines: Array<Record<string, unknown>> = [];
  text = '';
  readonly #waiters = new Set<() => void>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(child: ChildProcess) {
    this.process = child;
    children.add(child);
    const read = (stream: NodeJS.ReadableStream | null): void => {
      let buffer = '';
      stream?.on('data', (piece: Buffer) => {
        this.text += piece.toString();
        buffer += piece.toString();
        let end = buffer.indexOf('\n');
        while (end >= 0) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 1);
          if (line.startsWith('{')) {
            try {
              this.lines.push(JSON.parse(line) as Record<string, unknown>);
            } catch {
              // Not a log line; kept in `text` only.
            }
          }
          end = buffer.indexOf('\n');
        }
        for (const wake of this.#waiters) wake();
      });
    };
    read(child.stdout);
    read(child.stderr);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        resolve({ code, signal });
        for (const wake of this.#waiters) wake();
      });
    });
  }

  get pid(): number {
    return this.process.pid as number;
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** Resolves with the first line (already written or to come) that `match` accepts. */
  waitForLine(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs = 60_000,
    from = 0,
  ): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.lines.slice(from).find(match);
        if (found === undefined) {
          if (!this.running) {
            finish();
            reject(
              new Error(`process exited before the line came; output:\n${this.text.slice(-3000)}`),
            );
            return true;
          }
          return false;
        }
        finish();
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new Error(`no such line within ${timeoutMs} ms; output:\n${this.text.slice(-3000)}`),
        );
      }, timeoutMs);
      const wake = (): void => {
        check();
      };
      const finish = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
      };
      this.#waiters.add(wake);
      check();
    });
  }

  /** Sends SIGKILL and resolves once the process is gone. */
  async kill9(): Promise<void> {
    if (!this.running) return;
    this.process.kill('SIGKILL');
    await this.exited;
  }
}

/** Runs `code` as an ES module in a new node process, resolving packages from this one. */
export function spawnModule(code: string, env: Record<string, string> = {}): Child {
  return new Child(
    spawn(process.execPath, ['--input-type=module', '-e', code], {
      cwd: join(REPO, 'packages/sync-daemon'),
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

/** `tidemark <args>` as a child process. */
export function spawnCli(args: string[], env: Record<string, string | undefined> = {}): Child {
  return new Child(
    spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, DEBUG: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

export interface ServerProcess {
  child: Child;
  url: string;
  port: number;
  token: string;
  dataDir: string;
}

/** The server's own `main.js` on a free loopback port over `dataDir`. */
export async function startServerProcess(dataDir: string): Promise<ServerProcess> {
  const child = new Child(
    spawn(
      process.execPath,
      [SERVER_MAIN, '--data', dataDir, '--port', '0', '--host', '127.0.0.1'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    ),
  );
  const line = await child.waitForLine(
    (l) => l.event === 'listening' && 'url' in l && !('level' in l),
  );
  const url = line.url as string;
  const token = readFileSync(join(dataDir, 'initial-token'), 'utf8').trim();
  return { child, url, port: Number(new URL(url).port), token, dataDir };
}

/** Polls `condition` until it holds; for state that announces itself nowhere else. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
