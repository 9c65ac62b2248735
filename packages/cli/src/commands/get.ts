import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ArtifactStore, DB_FILE, OBJECTS_DIR, openReadOnly, resolveStoreDir } from '@tidemark/core';
import { type GetArtifactReport, getArtifact } from '@tidemark/sync-daemon';
import type { Command } from 'commander';
import { action, type CommonOptions, withCommonOptions } from '../command-kit.js';
import { usageError } from '../output.js';
import { type RemoteOptions, remoteOptions, resolveRemote } from '../remote-options.js';

interface GetOptions extends CommonOptions, RemoteOptions {
  out: string;
  step?: string;
  force?: boolean;
}

export function registerGet(program: Command): void {
  remoteOptions(withCommonOptions(program.command('get')))
    .description('restore a logged file or directory, from the local store or a server')
    .argument('<run>', 'run id, as listed by tidemark runs')
    .argument('<path>', "the path it was logged at, e.g. 'model/best'")
    .option('--out <dir>', 'folder to restore into, as <dir>/<last part of path>', '.')
    .option('--step <n>', 'restore the point of a file series (logFile) at this step')
    .option('--force', 'replace what is already at the target')
    .addHelpText(
      'after',
      `
The local store is tried first, object by object; what it lacks, or holds damaged, is
downloaded from --remote (or $TIDEMARK_REMOTE) when one is given. Every object is checked
against its digest, and each file appears under its name only once it is complete.`,
    )
    .action(
      action('get', async (output, runId: string, path: string, options: GetOptions) => {
        const step = parseStep(options.step);
        const name = path.split('/').at(-1) as string;
        const out = resolve(options.out, step === undefined ? name : `${name}-${step}`);
        if (existsSync(out) && options.force !== true) {
          throw usageError(
            `${out} already exists`,
            'Pass --force to replace it, or another --out.',
          );
        }

        const storeDir = resolveStoreDir(options.dir);
        const hasStore = existsSync(join(storeDir, DB_FILE));
        const hasRemote = (options.remote ?? process.env.TIDEMARK_REMOTE ?? '') !== '';
        const db = hasStore ? openReadOnly(storeDir) : undefined;
        try {
          const report = await getArtifact({
            runId,
            path,
            out,
            ...(step === undefined ? {} : { step }),
            ...(db === undefined
              ? {}
              : { local: { db, objects: new ArtifactStore(join(storeDir, OBJECTS_DIR)) } }),
            ...(hasRemote ? { remote: resolveRemote(options).client } : {}),
          });
          output.result(report, () => describe(report));
          return 0;
        } finally {
          db?.close();
        }
      }),
    );
}

function describe(report: GetArtifactReport): string {
  const what = report.kind === 'dir' ? `${report.files} files` : 'file';
  const from =
    report.remoteObjects === 0
      ? 'from the local store'
      : `${report.remoteObjects} objects downloaded, ${report.localObjects} local`;
  return `restored ${what} (${report.bytes} bytes) to ${report.out}: ${from}`;
}

function parseStep(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const step = Number(text);
  if (text.trim() === '' || !Number.isFinite(step)) {
    throw usageError(
      `--step must be a number, not '${text}'`,
      'Pass the step the file was logged at.',
    );
  }
  return step;
}
