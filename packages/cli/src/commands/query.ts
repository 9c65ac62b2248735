import { openReadOnly, type QueryResult, runQuery } from '@tidemark/core';
import type { Command } from 'commander';
import { action, type CommonOptions, withCommonOptions } from '../command-kit.js';
import { formatCell, renderTable, usageError } from '../output.js';

interface QueryOptions extends CommonOptions {
  csv?: boolean;
}

export function registerQuery(program: Command): void {
  withCommonOptions(program.command('query'))
    .description('run one read-only SQL statement against the local store')
    .argument(
      '<sql>',
      'e.g. "SELECT run_id, path, max FROM series_stats WHERE path = \'metrics/val_acc\'"',
    )
    .option('--csv', 'print CSV instead of a table')
    .addHelpText(
      'after',
      '\nViews: runs_view, fields_view, points_view, series_stats, tags_view, files_view.\n' +
        'Float values are NULL where the point is NaN (see is_nan); ' +
        'docs/store-schema.md has the schema.',
    )
    .action(
      action('query', async (output, sql: string, options: QueryOptions) => {
        if (options.csv === true && options.json === true) {
          throw usageError('--csv and --json cannot be used together', 'Pick one output format.');
        }
        const db = openReadOnly(options.dir);
        let result: QueryResult;
        try {
          result = runQuery(db, sql);
        } finally {
          db.close();
        }
        if (options.csv === true) {
          process.stdout.write(toCsv(result));
          return 0;
        }
        output.result(result, () =>
          result.columns.length === 0 ? 'no result' : renderTable(result.columns, result.rows),
        );
        return 0;
      }),
    );
}

function toCsv(result: QueryResult): string {
  const lines = [result.columns.map(csvCell).join(',')];
  for (const row of result.rows) lines.push(row.map((cell) => csvCell(formatCell(cell))).join(','));
  return `${lines.join('\n')}\n`;
}

function csvCell(text: string): string {
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
