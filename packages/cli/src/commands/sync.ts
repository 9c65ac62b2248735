import { isTidemarkError, Store } from '@tidemark/core';
import {
  opsRequestBytesFor,
  parseRate,
  RateLimiter,
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
}

/** How often a sync without a terminal logs a `sync_progress` line. */
const LOG_EVERY_MS = 5_000;

export function registerSync(program: Command): void {
  remoteOptions(withCommonOptions(program.command('sync')))
    .description('send every operation the server has not confirmed, then the chunks it lacks')
    .option('--only <project>', 'sync only this project')
    .option('--max-rate <rate>', "cap upload bandwidth, e.g. '2MB/s'")
    .addHelpText(
      'after',
      '\nExit code 7 means some runs were quarantined: the server refused them, or their local\n' +
        "data is damaged; every other run was synced. 'tidemark daemon status' lists them.",
    )
    .action(
      action('sync', async (output, options: SyncOptions) => {
        const rate = options.maxRate === undefined ? undefined : parseRate(options.maxRate);
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
            ...(rate === undefined
              ? {}
              : { limits: { maxRequestBytes: opsRequestBytesFor(rate) } }),
            onProgress: progress.update,
          });
          progress.stop();
          output.result(report, () => describeReport(report, remote.url));
          return report.quarantined.length > 0 ? ExitCode.partial : ExitCode.ok;
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

function describeReport(report: SyncReport, url: string): string {
  if (report.opsSent === 0 && report.chunksSent === 0 && report.quarantined.length === 0) {
    return `${url} is up to date: nothing to send`;
  }
  const lines = [
    `synced to ${url}: ${report.opsApplied} operations applied, ${report.opsDuplicate} already there, ` +
      `${report.chunksSent} chunks (${report.bytesSent} bytes) sent, ${report.chunksSkipped} chunks already there`,
  ];
  for (const q of report.quarantined) lines.push(`quarantined run ${q.runId}: ${q.reason}`);
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
    format: 'sync [{bar}] {value}/{total} ops | {bytes} | {rate} | ETA {eta_formatted}',
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

function mebibytes(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}
