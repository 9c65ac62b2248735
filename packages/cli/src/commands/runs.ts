import { listRuns, type RunSummary } from '@tidemark/core';
import type { Command } from 'commander';
import { action, type CommonOptions, withCommonOptions } from '../command-kit.js';
import { openForReading } from '../open-for-reading.js';
import { formatTime, renderTable } from '../output.js';
import { parseLimit } from '../parse.js';
import { type RemoteOptions, remoteOptions, resolveRemote } from '../remote-options.js';

interface RunsOptions extends CommonOptions, RemoteOptions {
  project?: string;
  limit?: string;
}

export function registerRuns(program: Command): void {
  remoteOptions(withCommonOptions(program.command('runs')))
    .description('list runs, newest first (from the local store, or a server with --remote)')
    .option('--project <name>', 'only runs of this project')
    .option('--limit <n>', 'at most this many runs', '50')
    .action(
      action('runs', async (output, options: RunsOptions) => {
        const limit = parseLimit(options.limit);
        let runs: RunSummary[];
        if (options.remote !== undefined) {
          const remote = resolveRemote(options);
          runs = await remote.client.listRuns({ project: options.project, limit });
        } else {
          const db = await openForReading(options.dir);
          try {
            runs = listRuns(db, { project: options.project, limit });
          } finally {
            db.close();
          }
        }
        output.result({ runs }, () => renderRuns(runs));
        return 0;
      }),
    );
}

function renderRuns(runs: RunSummary[]): string {
  if (runs.length === 0) return 'no runs yet';
  return renderTable(
    ['id', 'project', 'name', 'state', 'created', 'tags'],
    runs.map((run) => [
      run.id,
      run.project,
      run.name,
      run.state,
      formatTime(run.createdAt),
      run.tags.join(', '),
    ]),
  );
}
