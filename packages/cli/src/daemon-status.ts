import { openReadOnly, resolveStoreDir } from '@tidemark/core';
import {
  type DaemonState,
  loadDaemonConfig,
  type PendingReport,
  readDaemonState,
  readPending,
  StoreLock,
} from '@tidemark/sync-daemon';
import type { Command } from 'commander';
import { action, type CommonOptions, withCommonOptions } from './command-kit.js';
import { formatTime, type Output, renderTable } from './output.js';

interface StatusFlags extends CommonOptions {
  remote?: string;
}

/** What `tidemark daemon status` answers, in `--json` as `data`. */
export interface DaemonStatusView {
  running: boolean;
  pid: number | null;
  store: string;
  remote: string | null;
  only: string | null;
  /** The daemon's last written state; kept when it is not running, to show how it ended. */
  state: DaemonState | null;
  pending: PendingReport | null;
  /** Why the settings could not be read, when no running daemon names the remote. */
  configError: string | null;
  /** The command that releases the quarantined runs, when there are any; the daemon never does. */
  releaseCommand: string | null;
}

export function registerDaemonStatus(daemon: Command): void {
  withCommonOptions(daemon.command('status'))
    .description('is the daemon running; what is pending per run; last success, error, next try')
    .option('--remote <url>', 'the remote to count pending work for (default: the daemon’s)')
    .action(
      action('daemon status', async (output: Output, flags: StatusFlags) => {
        const view = readStatus(flags);
        output.result(view, () => describe(view));
        return 0;
      }),
    );
}

function readStatus(flags: StatusFlags): DaemonStatusView {
  const store = resolveStoreDir(flags.dir);
  const running = StoreLock.isHeld(store);
  const state = readDaemonState(store) ?? null;

  // The running daemon's remote first: that is the one whose pending work matters.
  let remote = flags.remote ?? state?.remote ?? null;
  let only = state?.only ?? null;
  let configError: string | null = null;
  if (remote === null) {
    try {
      const config = loadDaemonConfig({
        storeDir: store,
        ...(flags.remote === undefined ? {} : { flags: { remote: flags.remote } }),
        requireToken: false,
      });
      config.window?.dispose();
      remote = config.remote;
      only = config.only;
    } catch (error) {
      configError = error instanceof Error ? error.message : String(error);
    }
  }

  let pending: PendingReport | null = null;
  if (remote !== null) {
    const db = openReadOnly(store);
    try {
      pending = readPending(db, remote, only);
    } finally {
      db.close();
    }
  }

  return {
    running,
    pid: running ? (StoreLock.readPid(store) ?? null) : null,
    store,
    remote,
    only,
    state,
    pending,
    configError,
    releaseCommand:
      remote !== null && (pending?.quarantined.length ?? 0) > 0
        ? `tidemark sync --remote ${remote} --retry-quarantined`
        : null,
  };
}

function describe(view: DaemonStatusView): string {
  const { state, pending } = view;
  const lines: string[] = [];
  if (view.running) {
    const since = state === null ? '' : `, since ${formatTime(state.startedAt)}`;
    lines.push(
      `daemon:      running (pid ${view.pid ?? '?'}${since}), ${state?.phase ?? 'starting'}`,
    );
  } else {
    lines.push(`daemon:      not running on ${view.store}`);
  }
  lines.push(
    `remote:      ${view.remote ?? `not configured${view.configError ? ` (${view.configError})` : ''}`}${view.only ? ` (only ${view.only})` : ''}`,
  );

  if (state !== null) {
    const pass = state.lastPass;
    const figures =
      pass === null
        ? ''
        : ` (${pass.opsApplied} ops applied, ${pass.chunksSent} chunks, ${pass.bytesSent} bytes)`;
    lines.push(
      `last success: ${state.lastSuccessAt === null ? 'never' : formatTime(state.lastSuccessAt)}${figures}`,
    );
    const failure = state.lastError;
    lines.push(
      failure === null
        ? 'last error:  none'
        : `last error:  ${failure.code}: ${failure.message} (${failure.failures} failed passes since ${formatTime(failure.since)})`,
    );
    if (failure?.hint) lines.push(`hint:        ${failure.hint}`);
    if (view.running && state.nextAttemptAt !== null) {
      lines.push(`next try:    ${formatTime(state.nextAttemptAt)}`);
    }
  }

  if (pending !== null) {
    lines.push(
      `pending:     ${pending.ops} ops, ${pending.points} points, ~${mebibytes(pending.bytes)} in ${pending.runCount} runs`,
    );
    if (pending.runs.length > 0) {
      lines.push(
        renderTable(
          ['run', 'project', 'ops', 'points', 'bytes (at most)'],
          pending.runs.map((run) => [
            run.runId,
            run.project,
            run.ops,
            run.points,
            mebibytes(run.bytes),
          ]),
        ),
      );
    }
    for (const held of pending.quarantined) {
      lines.push(`quarantined: run ${held.runId} since ${formatTime(held.at)}: ${held.reason}`);
    }
    if (view.releaseCommand !== null) {
      lines.push(
        `release:     fix the cause, then '${view.releaseCommand}' (or --retry-run <run>); ` +
          'the daemon does not release runs by itself',
      );
    }
  }
  return lines.join('\n');
}

function mebibytes(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
