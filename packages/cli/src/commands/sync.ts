import { isTidemarkError, Store } from '@tidemark/core';
import { type SyncProgress, type SyncReport, syncOnce } from '@tidemark/sync-daemon';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { action, type CommonOptions, withCommonOptions } from '../command-kit.js';
import { ExitCode } from '../exit-codes.js';
import type { Output } from '../output.js';
import { type RemoteOptions, remoteOptions, resolveRemote } from '../remote-options.js';

interface SyncOptions extends CommonOptions, RemoteOptions {
  only?: string;
}

export function registerSync(program: Command): void {
  remoteOptions(withCommonOptions(program.command('sync')))
    .description('send every operation the server has not confirmed, then the chunks it lacks')
    .option('--only <project>', 'sync only this project')
    .action(
      action('sync', async (output, options: SyncOptions) => {
        const remote = resolveRemote(options);
        const store = Store.open({ dir: options.dir, create: false });
        const progress = createProgress(output);
        try {
          const report = await syncOnce(store, remote.client, {
            ...(options.only === undefined ? {} : { only: options.only }),
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

/** A bar on stderr when it is a terminal; otherwise nothing (logs carry progress). */
function createProgress(output: Output): { update: (p: SyncProgress) => void; stop: () => void } {
  if (output.json || process.stderr.isTTY !== true) return { update: () => {}, stop: () => {} };
  const bar = new SingleBar({
    stream: process.stderr,
    format: 'sync [{bar}] {value}/{total} ops | {bytes} | {eta_formatted}',
    hideCursor: true,
  });
  let started = false;
  return {
    update(p) {
      if (!started) {
        bar.start(p.opsTotal, 0, { bytes: '0 B' });
        started = true;
      }
      bar.setTotal(p.opsTotal);
      bar.update(p.opsDone, { bytes: `${(p.bytesDone / 1048576).toFixed(1)} MiB` });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
