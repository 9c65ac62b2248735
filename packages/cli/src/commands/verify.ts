import {
  OBJECT_CHECK,
  type RepairReport,
  repairStore,
  STORE_CHECKS,
  type VerifyCheck,
  type VerifyReport,
  verifyStore,
} from '@tidemark/core';
import type { Command } from 'commander';
import { action, type CommonOptions, withCommonOptions } from '../command-kit.js';
import { ExitCode } from '../exit-codes.js';
import { renderTable } from '../output.js';

interface VerifyOptions extends CommonOptions {
  repair?: boolean;
}

/**
 * The checks `tidemark verify` runs. A check of another part of the store joins by being
 * appended here; the object check re-hashes every artifact object (core's `verifyObjects`).
 */
const CHECKS: readonly VerifyCheck[] = [...STORE_CHECKS, OBJECT_CHECK];

/** Findings `--repair` fixes by rebuilding: damage, and derived data that disagrees. */
const REPAIRABLE = new Set(['summary_mismatch', 'blocks_mismatch', 'orphan_rows']);

export function registerVerify(program: Command): void {
  withCommonOptions(program.command('verify'))
    .description('check the local store and say what is wrong; --repair rebuilds a damaged one')
    .option(
      '--repair',
      'rebuild the store from every row that can still be read (stop writers first; the damaged file is kept)',
    )
    .addHelpText(
      'after',
      '\nExit code 0: no error found (or repaired); 6: errors remain. Verify never changes the\n' +
        'store; --repair moves the damaged database aside as store.db.damaged-<time>.',
    )
    .action(
      action('verify', async (output, options: VerifyOptions) => {
        const before = await verifyStore({ dir: options.dir, checks: CHECKS });
        if (options.repair !== true || !needsRepair(before)) {
          output.result({ ...before, repaired: null }, () =>
            renderFindings(before, options.repair === true),
          );
          return before.ok ? ExitCode.ok : ExitCode.store;
        }

        const repair = repairStore({ dir: options.dir });
        const after = await verifyStore({ dir: options.dir, checks: CHECKS });
        output.result({ ...after, before: before.findings, repaired: repair }, () =>
          [renderFindings(before, false), renderRepair(repair), renderFindings(after, false)].join(
            '\n\n',
          ),
        );
        return after.ok ? ExitCode.ok : ExitCode.store;
      }),
    );
}

function needsRepair(report: VerifyReport): boolean {
  return report.findings.some(
    (f) => (f.severity === 'error' && f.code !== 'store_missing') || REPAIRABLE.has(f.code),
  );
}

function renderFindings(report: VerifyReport, repairAsked: boolean): string {
  const errors = report.findings.filter((f) => f.severity === 'error').length;
  const warnings = report.findings.filter((f) => f.severity === 'warning').length;
  const lines = [`store ${report.dir}`];
  if (report.findings.length > 0) {
    lines.push(
      renderTable(
        ['severity', 'check', 'code', 'what'],
        report.findings.map((f) => [
          f.severity,
          f.check,
          f.code,
          f.hint === undefined ? f.message : `${f.message}\n→ ${f.hint}`,
        ]),
      ),
    );
  }
  const skipped = report.checks.filter((c) => c.skipped).map((c) => c.name);
  if (skipped.length > 0)
    lines.push(`not checked (the database cannot be read): ${skipped.join(', ')}`);
  if (errors === 0 && warnings === 0) lines.push('ok: no problem found');
  else lines.push(`${errors} error(s), ${warnings} warning(s)`);
  if (repairAsked && errors === 0) lines.push('nothing to repair');
  return lines.join('\n');
}

function renderRepair(repair: RepairReport): string {
  const rows = repair.tables.map((t) => [
    t.table,
    t.unreadable ? 'unreadable' : t.recovered,
    t.lost.map((range) => `rows ${range.from}..${range.to ?? 'end'}`).join(', '),
  ]);
  const lines = [
    `repaired: the damaged database is kept as ${repair.keptAs}`,
    renderTable(['table', 'rows kept', 'lost'], rows),
    `points lost: at least ${repair.lostPoints}`,
  ];
  for (const s of repair.series.slice(0, 20)) {
    lines.push(`  run ${s.runId} ${s.path}: ${s.after} of ${s.before} points kept`);
  }
  const orphans = Object.entries(repair.orphansRemoved);
  if (orphans.length > 0) {
    lines.push(
      `removed rows whose parent was lost: ${orphans.map(([t, n]) => `${n} ${t}`).join(', ')}`,
    );
  }
  return lines.join('\n');
}
