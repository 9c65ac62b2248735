import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isTidemarkError, resolveStoreDir, Store, TidemarkError } from '@tidemark/core';
import {
  DaemonError,
  type DaemonSettings,
  HttpRemoteClient,
  isRemoteError,
  loadDaemonConfig,
  parseFaults,
  StoreLock,
  SyncDaemon,
} from '@tidemark/sync-daemon';
import type { Command } from 'commander';
import { action, type CommonOptions, withCommonOptions } from '../command-kit.js';
import { debugWanted, jsonLineLogger, LOG_FILE, rotateLog } from '../daemon-log.js';
import { registerDaemonStatus } from '../daemon-status.js';
import type { Output } from '../output.js';

interface DaemonFlags extends CommonOptions {
  remote?: string;
  schedule?: string;
  window?: string;
  watch?: boolean;
  maxRate?: string;
  only?: string;
  debounceMs?: string;
  pollMs?: string;
  batchOps?: string;
  verbose?: boolean;
}

interface StopFlags extends CommonOptions {
  timeout: string;
}

type ChildMessage = { type: 'ready'; pid: number } | { type: 'failed'; error: ErrorBody };
type ErrorBody = { code: string; message: string; hint?: string };

const BIN = fileURLToPath(new URL('../bin.js', import.meta.url));
const START_TIMEOUT_MS = 30_000;

export function registerDaemon(program: Command): void {
  const daemon = program
    .command('daemon')
    .description('sync in the background: start, stop, status, or run in the foreground')
    .addHelpText('after', DAEMON_HELP);

  syncFlags(withCommonOptions(daemon.command('run')))
    .description('run the sync daemon in the foreground (for systemd or a container)')
    .action(action('daemon run', runForeground));

  syncFlags(withCommonOptions(daemon.command('start')))
    .description('start the sync daemon detached; it logs to <store>/daemon.log')
    .action(action('daemon start', startDetached));

  withCommonOptions(daemon.command('stop'))
    .description('stop the sync daemon of the store (SIGTERM) and wait until it has let go')
    .option('--timeout <seconds>', 'how long to wait', '30')
    .action(action('daemon stop', stopDaemon));

  registerDaemonStatus(daemon);
}

function syncFlags(command: Command): Command {
  return command
    .option('--remote <url>', 'server URL (default: $TIDEMARK_REMOTE, else daemon.json)')
    .option('--schedule <cron>', "sync on a cron schedule, e.g. '*/5 * * * *'")
    .option('--window <range>', "sync only inside '22:00-06:00' (local) or a cron of minutes")
    .option('--watch', 'sync soon after new entries land (default without --schedule)')
    .option('--no-watch', 'do not watch the store; sync on the schedule only')
    .option('--max-rate <rate>', "cap upload bandwidth, e.g. '2MB/s'")
    .option('--only <project>', 'sync only this project')
    .option('--debounce-ms <n>', 'wait after the first new entry before syncing (default 2000)')
    .option(
      '--poll-ms <n>',
      'safety check of the journal when no change event came (default 30000)',
    )
    .option('--batch-ops <n>', 'journal entries per request, at most 10000 (default 2000)')
    .option('--verbose', 'log debug lines too');
}

async function runForeground(_output: Output, flags: DaemonFlags): Promise<number> {
  const storeDir = resolveStoreDir(flags.dir);
  const logger = jsonLineLogger((line) => process.stderr.write(line), {
    debug: debugWanted(flags.verbose),
  });

  let daemon: SyncDaemon;
  try {
    const config = loadDaemonConfig({ storeDir, flags: settingsOf(flags) });
    daemon = await SyncDaemon.start({
      config,
      logger,
      faults: parseFaults(process.env.TIDEMARK_FAULT),
    });
  } catch (error) {
    tellParent({ type: 'failed', error: errorBody(error) });
    throw error;
  }
  tellParent({ type: 'ready', pid: process.pid });

  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      logger.info('signal', { signal });
      daemon.stop().then(resolve, (error: unknown) => {
        logger.error('stop_failed', errorBody(error));
        resolve();
      });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    process.on('SIGUSR1', () => daemon.syncNow());
  });
  // A request abandoned at the grace deadline would keep the process alive; nothing is lost.
  process.exit(0);
}

async function startDetached(output: Output, flags: DaemonFlags): Promise<number> {
  const storeDir = resolveStoreDir(flags.dir);
  const settings = settingsOf(flags);

  // Refuse what the child would refuse, here, where the user sees it.
  const config = loadDaemonConfig({ storeDir, flags: settings });
  config.window?.dispose();
  const store = Store.open({ dir: storeDir, create: false });
  await store.close();
  await refuseRejectedToken(config.remote, config.token);
  if (StoreLock.isHeld(storeDir)) {
    throw new DaemonError('daemon_running', `a sync daemon already runs on ${storeDir}`, {
      hint: "Run 'tidemark daemon status' to see it, or 'tidemark daemon stop' first.",
    });
  }

  const logPath = join(storeDir, LOG_FILE);
  rotateLog(logPath);
  const log = openSync(logPath, 'a');
  writeSync(
    log,
    `${JSON.stringify({ ts: new Date().toISOString(), level: 'info', event: 'daemon_spawn' })}\n`,
  );
  const child = spawn(
    process.execPath,
    [BIN, 'daemon', 'run', '--dir', storeDir, ...argsOf(flags)],
    {
      detached: true,
      stdio: ['ignore', log, log, 'ipc'],
      env: process.env,
    },
  );
  closeSync(log);

  const message = await waitForChild(child);
  if (child.connected) child.disconnect();
  child.unref();
  if (message.type === 'failed') {
    throw new TidemarkError(message.error.code, message.error.message, {
      ...(message.error.hint === undefined ? {} : { hint: message.error.hint }),
    });
  }

  const data = { pid: message.pid, store: storeDir, remote: config.remote, log: logPath };
  output.result(data, () => `sync daemon started (pid ${message.pid}), logging to ${logPath}`);
  return 0;
}

async function stopDaemon(output: Output, flags: StopFlags): Promise<number> {
  const storeDir = resolveStoreDir(flags.dir);
  const seconds = Number(flags.timeout);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new DaemonError('invalid_config', `--timeout must be a positive number of seconds`, {
      hint: 'Pass e.g. --timeout 30.',
    });
  }

  const pid = StoreLock.readPid(storeDir);
  if (!StoreLock.isHeld(storeDir) || pid === undefined) {
    output.result({ stopped: false, running: false }, () => `no sync daemon runs on ${storeDir}`);
    return 0;
  }

  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + seconds * 1000;
  while (StoreLock.isHeld(storeDir)) {
    if (Date.now() > deadline) {
      throw new DaemonError(
        'daemon_stop_failed',
        `the daemon (pid ${pid}) did not stop within ${seconds} s`,
        {
          hint: `kill -9 ${pid} is safe: the cursor only moves after the server confirms, so nothing is lost or doubled.`,
        },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  output.result({ stopped: true, pid }, () => `sync daemon (pid ${pid}) stopped`);
  return 0;
}

function settingsOf(flags: DaemonFlags): DaemonSettings {
  const settings: DaemonSettings = {};
  if (flags.remote !== undefined) settings.remote = flags.remote;
  if (flags.schedule !== undefined) settings.schedule = flags.schedule;
  if (flags.window !== undefined) settings.window = flags.window;
  if (flags.watch !== undefined) settings.watch = flags.watch;
  if (flags.maxRate !== undefined) settings.maxRate = flags.maxRate;
  if (flags.only !== undefined) settings.only = flags.only;
  const numbers = settings as Record<string, unknown>;
  if (flags.debounceMs !== undefined) numbers.debounceMs = flags.debounceMs;
  if (flags.pollMs !== undefined) numbers.pollMs = flags.pollMs;
  if (flags.batchOps !== undefined) numbers.batchOps = flags.batchOps;
  return settings;
}

/** The flags of `start`, for the `run` it spawns. */
function argsOf(flags: DaemonFlags): string[] {
  const args: string[] = [];
  const pairs: Array<[string, string | undefined]> = [
    ['--remote', flags.remote],
    ['--schedule', flags.schedule],
    ['--window', flags.window],
    ['--max-rate', flags.maxRate],
    ['--only', flags.only],
    ['--debounce-ms', flags.debounceMs],
    ['--poll-ms', flags.pollMs],
    ['--batch-ops', flags.batchOps],
  ];
  for (const [name, value] of pairs) if (value !== undefined) args.push(name, value);
  if (flags.watch === true) args.push('--watch');
  if (flags.watch === false) args.push('--no-watch');
  if (flags.verbose === true) args.push('--verbose');
  return args;
}

function waitForChild(child: ReturnType<typeof spawn>): Promise<ChildMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(
        new DaemonError(
          'daemon_start_failed',
          `the daemon did not report ready within ${START_TIMEOUT_MS / 1000} s`,
          {
            hint: 'See daemon.log in the store folder.',
          },
        ),
      );
    }, START_TIMEOUT_MS);
    child.once('message', (message: ChildMessage) => {
      clearTimeout(timer);
      resolve(message);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      // A 'failed' message sent just before exiting is still on its way: let it land first.
      setImmediate(() =>
        reject(
          new DaemonError('daemon_start_failed', `the daemon exited at start (code ${code})`, {
            hint: 'See daemon.log in the store folder.',
          }),
        ),
      );
    });
  });
}

/** Tells a `daemon start` waiting on the other end of the IPC channel how the start went. */
function tellParent(message: ChildMessage): void {
  if (process.send === undefined || !process.connected) return;
  process.send(message, () => {
    if (process.connected) process.disconnect();
  });
}

function errorBody(error: unknown): ErrorBody {
  if (isTidemarkError(error)) {
    return {
      code: error.code,
      message: error.message,
      ...(error.hint ? { hint: error.hint } : {}),
    };
  }
  return { code: 'internal', message: error instanceof Error ? error.message : String(error) };
}

const DAEMON_HELP = `
Settings come from <store>/daemon.json, then TIDEMARK_REMOTE and TIDEMARK_API_TOKEN, then
flags (flags win). A wrong setting stops 'start' and 'run' with exit code 2.

  kill -USR1 <pid>    sync now, ending any backoff wait
  docs/daemon.md      guarantees, failure outcomes, a systemd unit`;

/**
 * A token the server refuses is a wrong setting, so `start` reports it now rather than in the
 * log half an hour later. An unreachable server is not: the daemon exists to wait for it.
 */
async function refuseRejectedToken(url: string, token: string): Promise<void> {
  try {
    await new HttpRemoteClient({ url, token }).whoami();
  } catch (error) {
    if (isRemoteError(error) && error.code === 'auth_failed') throw error;
  }
}
