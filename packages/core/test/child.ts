import { type ChildProcess, spawn } from 'node:child_process';

/** A node process running an ES module script, read line by line from its stdout. */
export interface ScriptProcess {
  child: ChildProcess;
  /** Every stdout line so far. */
  lines: string[];
  /** Resolves with the first stdout line (past or future) that `match` accepts. */
  waitFor(match: (line: string) => boolean): Promise<string>;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  send(line: string): void;
}

/**
 * Runs `script` in a fresh node process with the repository as working directory, so it can
 * import '@tidemark/core' like a user's training script does.
 */
export function runScript(script: string, env: Record<string, string> = {}): ScriptProcess {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: process.cwd(),
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: Array<{ match: (line: string) => boolean; resolve: (line: string) => void }> = [];
  let partial = '';
  let errors = '';

  child.stdout?.on('data', (data: Buffer) => {
    partial += data.toString();
    const complete = partial.split('\n');
    partial = complete.pop() ?? '';
    for (const line of complete) {
      lines.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.match(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  });
  child.stderr?.on('data', (data: Buffer) => {
    errors += data.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );

  return {
    child,
    lines,
    exited,
    stderr: () => errors,
    send: (line) => child.stdin?.write(`${line}\n`),
    waitFor(match) {
      const seen = lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ match, resolve });
        void exited.then(({ code, signal }) =>
          reject(
            new Error(
              `script exited (${code ?? signal}) before the line came: ${errors.slice(-2000)}`,
            ),
          ),
        );
      });
    },
  };
}

/** Kills a process with SIGKILL and waits until it is gone. */
export async function killHard(script: ScriptProcess): Promise<void> {
  script.child.kill('SIGKILL');
  await script.exited;
}
