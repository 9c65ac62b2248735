import { collectGarbage, type GcReport, Store } from '@tidemark/core';
import type { Command } from 'commander';
import { action, type CommonOptions, withCommonOptions } from '../command-kit.js';
import { usageError } from '../output.js';

interface GcCommandOptions extends CommonOptions {
  grace: string;
  dryRun?: boolean;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function registerGc(program: Command): void {
  withCommonOptions(program.command('gc'))
    .description('remove local objects that no run, file series or pending sync refers to')
    .option(
      '--grace <duration>',
      'keep unreferenced objects younger than this (30s, 15m, 2h, 1d)',
      '1h',
    )
    .option('--dry-run', 'report what would be removed, remove nothing')
    .addHelpText(
      'after',
      `
gc never removes an object a concurrent 'upload' or 'logFile' is adding: writers announce
themselves with a pending marker, gc waits for them, and objects younger than --grace are
kept whatever refers to them. If a referenced manifest cannot be read, gc removes nothing.
See docs/artifacts.md, "Garbage collection".`,
    )
    .action(
      action('gc', async (output, options: GcCommandOptions) => {
        const graceMs = parseDuration(options.grace);
        const store = Store.open({ dir: options.dir, create: false });
        try {
          const report = await collectGarbage(store, {
            graceMs,
            dryRun: options.dryRun === true,
          });
          output.result(report, () => describe(report));
          return 0;
        } finally {
          await store.close();
        }
      }),
    );
}

function describe(report: GcReport): string {
  const verb = report.dryRun ? 'would remove' : 'removed';
  return [
    `${verb} ${report.removed} of ${report.objects} objects (${formatBytes(report.removedBytes)})`,
    `kept ${report.referenced} referenced and ${report.young} younger than the grace period`,
    `${verb} ${report.tempFiles} temp files of interrupted writes`,
  ].join('\n');
}

function parseDuration(text: string): number {
  const match = /^([0-9]+)([smhd]?)$/.exec(text.trim());
  if (match === null) {
    throw usageError(
      `--grace must be a duration such as 30s, 15m, 2h or 1d, not '${text}'`,
      'Pass --grace 0 to remove every unreferenced object now.',
    );
  }
  return Number(match[1]) * (UNITS[match[2] || 's'] as number);
}

function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${bytes} bytes`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
