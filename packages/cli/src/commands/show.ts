import { getRun, type RunDetail } from '@tidemark/core';
import type { Command } from 'commander';
import { action, type CommonOptions, withCommonOptions } from '../command-kit.js';
import { openForReading } from '../open-for-reading.js';
import { formatCell, formatTime, renderTable } from '../output.js';
import { type RemoteOptions, remoteOptions, resolveRemote } from '../remote-options.js';

export function registerShow(program: Command): void {
  remoteOptions(withCommonOptions(program.command('show')))
    .description('show one run: fields, series, tags and files (local, or a server with --remote)')
    .argument('<run>', 'run id, as listed by tidemark runs')
    .action(
      action('show', async (output, runId: string, options: CommonOptions & RemoteOptions) => {
        let run: RunDetail;
        if (options.remote !== undefined) {
          run = await resolveRemote(options).client.getRun(runId);
        } else {
          const db = await openForReading(options.dir);
          try {
            run = getRun(db, runId);
          } finally {
            db.close();
          }
        }
        output.result(run, () => renderRun(run, options.remote ?? 'local store'));
        return 0;
      }),
    );
}

function renderRun(run: RunDetail, source: string): string {
  const lines = [
    `run ${run.id}  (${source})`,
    `project  ${run.project}`,
    `name     ${run.name ?? ''}`,
    `state    ${run.state}${run.failure === null ? '' : `: ${run.failure}`}`,
    `created  ${formatTime(run.createdAt)}${run.endedAt === null ? '' : `   ended ${formatTime(run.endedAt)}`}`,
    `tags     ${run.tags.join(', ')}`,
  ];
  if (run.description !== null) lines.push(`about    ${run.description}`);
  if (run.forkOf !== null) lines.push(`fork of  ${run.forkOf} at step ${formatCell(run.forkStep)}`);

  const fields = run.fields.filter(
    (field) => !field.path.startsWith('context/packages/') && field.path !== 'context/git/diff',
  );
  if (fields.length > 0) {
    lines.push(
      '',
      'fields',
      renderTable(
        ['path', 'type', 'value'],
        fields.map((f) => [f.path, f.type, truncate(formatCell(f.value))]),
      ),
    );
  }
  if (run.series.length > 0) {
    lines.push(
      '',
      'series',
      renderTable(
        ['path', 'type', 'points', 'last step', 'last', 'min', 'max'],
        run.series.map((s) => [
          s.path,
          s.type,
          s.count,
          s.lastStep,
          truncate(formatCell(s.last)),
          s.min,
          s.max,
        ]),
      ),
    );
  }
  if (run.files.length > 0) {
    lines.push(
      '',
      'files',
      renderTable(
        ['path', 'kind', 'bytes', 'files'],
        run.files.map((f) => [f.path, f.kind, f.size, f.fileCount]),
      ),
    );
  }
  return lines.join('\n');
}

function truncate(text: string, max = 80): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
