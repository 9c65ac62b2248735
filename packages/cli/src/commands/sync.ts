import { isTidemarkError, Store, TidemarkError } from '@tidemark/core';
import {
  opsRequestBytesFor,
  parseRate,
  RateLimiter,
  type ReleaseRequest,
  requestTimeoutFor,
  type SyncProgress,
  type SyncReport,
  syncOnce,
} from '@tidemark/sync-daemon';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { action, type CommonOptions, withCommonOptions } from '../command-kit.js';
import { ExitCode } from '../exit-codes.js';
import type { Output } from '../output.js';
import { type RemoteOptions, remoteOptions, resolveRemote } from '../remote-options.js';

interface SyncOptions extends CommonOptions, RemoteOptions {
  only?: string;
  maxRate?: string;
  retryQuarantined?: boolean;
  retryRun?: string[];
  resend?: string[];
}

/** How often a sync without a terminal logs a `sync_progress` line. */
const LOG_EVERY_MS = 5_000;

export function registerSync(program: Command): void {
  remoteOptions(withCommonOptions(program.command('sync')))
    .description('send every operation the server has not confirmed, then the chunks it lacks')
    .option('--only <project>', 'sync only this project')
    .option('--max-rate <rate>', "cap upload bandwidth, e.g. '2MB/s'")
    .option('--retry-quarantined', 'release every quarantined run of this remote and send it again')
    .option(
      '--retry-run <run>',
      'release this quarantined run and send it again from its start (repeatable)',
      (run: string, runs: string[] = []) => [...runs, run],
    )
    .option(
      '--resend <run>',
      'send this synced run again from its start, with every chunk the server lacks,\n' +
        'such as one it found damaged (repeatable)',
      (run: string, runs: string[] = []) => [...runs, run],
    )
    .addHelpText(
      'after',
      '\nExit code 7 means some runs are quarantined: the server refused them, or their local\n' +
        'data is damaged; every other run was synced. Every sync lists them and exits 7 until\n' +
        'they are released: fix the cause, then --retry-run <run> or --retry-quarantined.\n' +
        'A token without access to a project ends the sync with exit code 5 and quarantines\n' +
        'nothing.',
    )
    .action(
      action('sync', async (output, options: SyncOptions) => {
        const rate = options.maxRate === undefined ? undefined : parseRate(options.maxRate);
        const release = releaseOf(options);
        const remote = resolveRemote(
          options,
          rate === undefined
            ? {}
            : {
                rateLimiter: new RateLimiter({ bytesPerSecond: rate }),
                timeouts: { requestMs: requestTimeoutFor(rate, 300_000) },
              },
        );
        const store = Store.open({ dir: options.dir, create: false });
        const progress = createProgress(output);
        try {
          const report = await syncOnce(store, remote.client, {
            ...(options.only === undefined ? {} : { only: options.only }),
            ...(release === undefined ? {} : { release }),
            ...(options.resend === undefined ? {} : { resend: options.resend }),
            ...(rate === undefined
              ? {}
              : { limits: { maxRequestBytes: opsRequestBytesFor(rate) } }),
            onProgress: progress.update,
          });
          progress.stop();
          const view = {
            ...report,
            quarantined: report.quarantined.map((q) => ({
              ...q,
              hint: releaseHint(q.runId, q.reason),
            })),
          };
          const human = () => describeReport(report, remote.url);
          if (report.quarantined.length === 0) {
            output.result(view, human);
            return ExitCode.ok;
          }
          return output.failure(view, quarantinedError(report), human);
        } catch (error) {
          progress.stop();
          if (isTidemarkError(error) && error.retryable) {
            output.log('sync_failed', {
              code: error.code,
              pending: store.journal.countAfter(store.journal.getCursor(remote.url)),
            });
          }
          throw error;
        } finally {
          await store.close();
        }
      }),
    );
}

/** Both flags may be given; releasing all covers the named runs. */
function releaseOf(options: SyncOptions): ReleaseRequest | undefined {
  if (options.retryQuarantined === true) return 'all';
  return options.retryRun === undefined ? undefined : options.retryRun;
}

/** Exit 7: everything else was synced, the listed runs were not. */
function quarantinedError(report: SyncReport): TidemarkError {
  const runs = report.quarantined.map((q) => q.runId);
  const named = runs.length === 1 ? `run ${runs[0]} is` : `${runs.length} runs are`;
  return new TidemarkError('quarantined', `${named} quarantined; every other run was synced`, {
    hint:
      runs.length === 1
        ? `Fix the cause, then release it with 'tidemark sync --retry-run ${runs[0]}'.`
        : "Fix the causes listed, then release them with 'tidemark sync --retry-quarantined' " +
          "(or '--retry-run <run>' one by one).",
  });
}

function releaseHint(runId: string, reason: string): string {
  const release = `release it with 'tidemark sync --retry-run ${runId}' (or --retry-quarantined)`;
  // A damaged or missing local object does not heal: say where to look and what can mend it.
  if (/^object_(corrupt|missing)/.test(reason)) {
    return (
      "a file it logged is damaged or gone in this store; 'tidemark verify' lists what. Put the " +
      "object back (from a copy of the store, or 'tidemark get --remote' when another run " +
      `synced the same file), then ${release}`
    );
  }
  return `fix the cause, then ${release}`;
}

function describeReport(report: SyncReport, url: string): string {
  const lines: string[] = [];
  if (report.opsSent === 0 && report.chunksSent === 0) {
    // Quarantined runs are not up to date, however little there was to send.
    const held = report.quarantined.length > 0;
    lines.push(held ? `nothing sent to ${url}` : `${url} is up to date: nothing to send`);
  } else {
    lines.push(
      `synced to ${url}: ${report.opsApplied} operations applied, ${report.opsDuplicate} already there, ` +
        `${report.chunksSent} chunks (${report.bytesSent} bytes) sent, ${report.chunksSkipped} chunks already there`,
    );
  }
  for (const runId of report.released) lines.push(`released run ${runId} and sent it again`);
  for (const runId of report.resent) lines.push(`sent run ${runId} again`);
  for (const q of report.quarantined) {
    const since = q.isNew ? 'quarantined' : 'still quarantined';
    lines.push(`${since} run ${q.runId}: ${q.reason}`);
    lines.push(`  hint: ${releaseHint(q.runId, q.reason)}`);
  }
  if (report.pending > 0) lines.push(`${report.pending} operations still pending`);
  return lines.join('\n');
}

interface ProgressView {
  update: (progress: SyncProgress) => void;
  stop: () => void;
}

/**
 * A bar on stderr when it is a terminal: operations, bytes, rate and ETA. Otherwise (a pipe, a
 * log file, CI) a `sync_progress` line every few seconds, so a long sync still shows it moves.
 */
function createProgress(output: Output): ProgressView {
  const started = performance.now();
  const rates = (p: SyncProgress) => {
    const seconds = Math.max((performance.now() - started) / 1000, 0.001);
    return { opsPerSecond: p.opsDone / seconds, bytesPerSecond: p.bytesDone / seconds };
  };

  if (process.stderr.isTTY !== true) {
    let last = started;
    return {
      update(p) {
        const now = performance.now();
        if (now - last < LOG_EVERY_MS) return;
        last = now;
        const { opsPerSecond, bytesPerSecond } = rates(p);
        const left = p.opsTotal - p.opsDone;
        output.log('sync_progress', {
          ops_done: p.opsDone,
          ops_total: p.opsTotal,
          bytes_done: p.bytesDone,
          bytes_total: p.bytesTotal,
          ops_per_s: Math.round(opsPerSecond),
          bytes_per_s: Math.round(bytesPerSecond),
          eta_s: opsPerSecond > 0 ? Math.round(left / opsPerSecond) : null,
        });
      },
      stop() {},
    };
  }

  const bar = new SingleBar({
    stream: process.stderr,
    format: 'sync [{bar}] {value}/{total} ops | {bytes} | {rate} | ETA {eta_text}',
    hideCursor: true,
    etaBuffer: 50,
  });
  let shown = false;
  return {
    update(p) {
      const { opsPerSecond, bytesPerSecond } = rates(p);
      const payload = {
        bytes: `objects ${mebibytes(p.bytesDone)}/${mebibytes(p.bytesTotal)} MiB`,
        rate: `${Math.round(opsPerSecond)} ops/s, ${mebibytes(bytesPerSecond)} MiB/s`,
        eta_text: etaText(p.opsTotal - p.opsDone, opsPerSecond),
      };
      if (!shown) {
        bar.start(p.opsTotal, 0, payload);
        shown = true;
      }
      bar.setTotal(p.opsTotal);
      bar.update(p.opsDone, payload);
    },
    stop() {
      if (shown) bar.stop();
    },
  };
}

/**
 * The time left as `1m05s`, or `--` until a rate exists: cli-progress's own ETA divides by a
 * zero rate at the start and shows `NFs`.
 */
export function etaText(left: number, perSecond: number): string {
  if (!(perSecond > 0) || !Number.isFinite(perSecond) || left < 0) return '--';
  const seconds = Math.round(left / perSecond);
  if (!Number.isFinite(seconds)) return '--';
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

function mebibytes(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}
