import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The processes the artifact suite runs: servers, syncers and probes, each on its own. */

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SERVER_MAIN = join(REPO, 'packages/server/dist/main.js');

export interface BenchProcess {
  child: ChildProcess;
  /** JSON lines the process wrote to stdout and stderr so far. */
  lines: Array<Record<string, unknown>>;
  /** Resolves with the first line `match` accepts, written already or still to come. */
  line(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  exited: Promise<unknown>;
  kill9(): Promise<void>;
}

/** Runs an ES module given as text in a new node process, resolving packages from the repo. */
export function spawnModule(
  code: string,
  args: string[] = [],
  env: Record<string, string> = {},
): BenchProcess {
  return track(
    spawn(process.execPath, ['--input-type=module', '-e', code, ...args], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

/** `@tidemark/server` as a process on 127.0.0.1; with `debug` it logs every request. */
export async function startTidemarkServer(
  dataDir: string,
  options: { debug?: boolean } = {},
): Promise<{ url: string; token: string; process: BenchProcess }> {
  const child = track(
    spawn(process.execPath, [SERVER_MAIN, '--data', dataDir, '--port', '0'], {
      env: { ...process.env, DEBUG: options.debug === true ? 'tidemark:*' : '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const listening = await child.line((l) => l.event === 'listening' && 'url' in l);
  const token = readFileSync(join(dataDir, 'initial-token'), 'utf8').trim();
  return { url: String(listening.url), token, process: child };
}

/**
 * The reference upload: a plain node:http server in its own process that streams a request
 * body to a file, fsyncs it and answers 200. No hashing, no chunking, no database.
 */
export async function startPlainUploadServer(
  dir: string,
): Promise<{ url: string; process: BenchProcess }> {
  const code = `
    import { createServer } from 'node:http';
    import { openSync, writeSync, fsyncSync, closeSync } from 'node:fs';
    import { join } from 'node:path';
    let n = 0;
    const server = createServer((req, res) => {
      const fd = openSync(join(process.argv[1], 'upload-' + n++), 'w');
      req.on('data', (piece) => writeSync(fd, piece));
      req.on('end', () => { fsyncSync(fd); closeSync(fd); res.end('ok'); });
    });
    server.listen(0, '127.0.0.1', () => {
      process.stdout.write(JSON.stringify({ event: 'listening', port: server.address().port }) + '\\n');
    });`;
  const child = spawnModule(code, [dir]);
  const listening = await child.line((l) => l.event === 'listening');
  return { url: `http://127.0.0.1:${listening.port}`, process: child };
}

/** Seconds to stream a file to the plain upload server and have it answer. */
export async function plainUploadSeconds(url: string, source: string): Promise<number> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const req = request(`${url}/upload`, { method: 'PUT' }, (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    req.on('error', reject);
    createReadStream(source, { highWaterMark: 1024 * 1024 }).pipe(req);
  });
  return (performance.now() - started) / 1000;
}

function track(child: ChildProcess): BenchProcess {
  const lines: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  const exited = once(child, 'exit');
  // Lines still buffered when the process exits are read before 'close'.
  const closed = once(child, 'close');
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue;
    createInterface({ input: stream }).on('line', (text) => {
      if (!text.startsWith('{')) return;
      try {
        lines.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        return;
      }
      for (const wake of waiters) wake();
    });
  }
  return {
    child,
    lines,
    exited,
    line(match) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = lines.find(match);
          if (found !== undefined) {
            waiters.delete(check);
            resolve(found);
          }
        };
        waiters.add(check);
        void closed.then(() => {
          if (!waiters.has(check)) return;
          waiters.delete(check);
          reject(new Error('the process exited before writing the expected line'));
        });
        check();
      });
    },
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}
