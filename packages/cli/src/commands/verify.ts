import {
  OBJECT_CHECK,
  type RepairReport,
  repairStore,
  STORE_CHECKS,
  StoreError,
  type VerifyCheck,
  type VerifyFinding,
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

/** Warnings `--repair` fixes by rebuilding: derived data that disagrees with the points. */
const REPAIRABLE_WARNINGS = new Set(['summary_mismatch', 'blocks_mismatch']);

/**
 * Errors a rebuild of the database cannot fix: there is nothing to rebuild from, the file is
 * not ours or newer than us, or nothing is damaged and the store only cannot be opened here.
 */
const NOT_REPAIRABLE = new Set([
  'store_missing',
  'not_sqlite',
  'foreign_database',
  'store_too_new',
  'migration_mismatch',
  'store_unopenable',
]);

/** Artifact objects: --repair rebuilds the database only; they need a fresh copy. */
const OBJECTS = 'objects';

export function registerVerify(program: Command): void {
  withCommonOptions(program.command('verify'))
    .description('check the local store and say what is wrong; --repair rebuilds a damaged one')
    .option(
      '--repair',
      'rebuild the database from every row that can still be read ' +
        '(stop writers first; the damaged file is kept)',
    )
    .addHelpText(
      'after',
      '\nExit code 0: no error found (or all repaired); 6: errors remain. Verify never changes\n' +
        'the store. --repair rebuilds the database only when it is damaged, moving the damaged\n' +
        'file aside as store.db.damaged-<time>; it cannot mend artifact objects: a damaged or\n' +
        "missing object needs 'tidemark get RUN PATH --remote URL' (a synced run; it puts the\n" +
        'objects back) or the artifact logged again.',
    )
    .action(
      action('verify', async (output, options: VerifyOptions) => {
        const before = await verifyStore({ dir: options.dir, checks: CHECKS });
        const repairAsked = options.repair === true;
        const databaseDamaged = before.findings.some(repairable);

        let repair: RepairReport | null = null;
        let after = before;
        if (repairAsked && databaseDamaged) {
          repair = repairStore({ dir: options.dir });
          after = await verifyStore({ dir: options.dir, checks: CHECKS });
        }

        const data = {
          ...after,
          ...(repair === null ? {} : { before: before.findings }),
          repaired: repair,
        };
        const human = () => {
          const parts = [renderFindings(before)];
          if (repair !== null) parts.push(renderRepair(repair), renderFindings(after));
          if (repairAsked) parts.push(renderNotRepaired(after, repair !== null));
          return parts.join('\n\n');
        };
        if (after.ok) {
          output.result(data, human);
          return ExitCode.ok;
        }
        return output.failure(data, verifyFailed(after, repair !== null), human);
      }),
    );
}

function repairable(finding: VerifyFinding): boolean {
  if (finding.check === OBJECTS || NOT_REPAIRABLE.has(finding.code)) return false;
  return finding.severity === 'error' || REPAIRABLE_WARNINGS.has(finding.code);
}

/** The error verify ends with: how many problems, and what can be done about each kind. */
function verifyFailed(report: VerifyReport, repaired: boolean): StoreError {
  const errors = report.findings.filter((f) => f.severity === 'error');
  const objects = errors.filter((f) => f.check === OBJECTS).length;
  const database = errors.filter(repairable).length;
  const steps: string[] = [];
  if (database > 0 && !repaired) {
    steps.push("'tidemark verify --repair' rebuilds the database from every row it can read");
  }
  if (objects > 0) steps.push(OBJECT_ADVICE);
  if (steps.length === 0 || errors.length > objects + database) {
    steps.push('see each finding for what it needs');
  }
  const where = repaired ? 'remain after the repair' : 'found';
  const hint = steps.join('; ');
  return new StoreError('verify_failed', `${errors.length} error(s) ${where} in ${report.dir}`, {
    hint: `${hint.charAt(0).toUpperCase()}${hint.slice(1)}.`,
  });
}

const OBJECT_ADVICE =
  "damaged or missing artifact objects need 'tidemark get RUN PATH --remote URL' for a synced " +
  'run (it puts the objects back) or the artifact logged again';

function renderFindings(report: VerifyReport): string {
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
  return lines.join('\n');
}

/** What `--repair` left as it was, said plainly: it must never read as "all repaired". */
function renderNotRepaired(after: VerifyReport, repaired: boolean): string {
  const left = after.findings.filter((f) => f.severity === 'error');
  if (left.length === 0) {
    return repaired ? 'repair complete: no error remains' : 'nothing to repair';
  }
  const lines = [
    repaired
      ? `not repaired: ${left.length} error(s) remain`
      : 'not repaired: --repair rebuilds a damaged database only; ' +
        `it cannot fix the ${left.length} error(s) found`,
  ];
  if (left.some((f) => f.check === OBJECTS)) lines.push(`  ${OBJECT_ADVICE}`);
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
