import { existsSync, lstatSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  ArtifactError,
  ArtifactStore,
  DB_FILE,
  isTidemarkError,
  OBJECTS_DIR,
  openReadOnly,
  resolveStoreDir,
  TidemarkError,
} from '@tidemark/core';
import { type GetArtifactReport, getArtifact } from '@tidemark/sync-daemon';
import type { Command } from 'commander';
import { action, type CommonOptions, withCommonOptions } from '../command-kit.js';
import { type Output, usageError } from '../output.js';
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
    .option('--force', 'replace what is already at the target with exactly the artifact')
    .addHelpText(
      'after',
      `
The local store is tried first, object by object; what it lacks, or holds damaged, is
downloaded from --remote (or $TIDEMARK_REMOTE) when one is given, and put back into the
local store when the run is one of its own. Every object is checked against its digest.
The artifact is written beside the target under a temp name and appears under its name only
once it is complete; a failed get leaves nothing behind, and --force swaps the old target
out whole (nothing of it is kept or merged, links in it are not followed).`,
    )
    .action(
      action('get', async (output, runId: string, path: string, options: GetOptions) => {
        const step = parseStep(options.step);
        const name = targetName(path, step);
        const outDir = resolve(options.out);
        refuseFileAsOut(outDir);
        const out = join(outDir, name);
        if (lstatSync(out, { throwIfNoEntry: false }) !== undefined && options.force !== true) {
          throw targetExists(out);
        }

        const storeDir = resolveStoreDir(options.dir);
        const hasStore = existsSync(join(storeDir, DB_FILE));
        const hasRemote = (options.remote ?? process.env.TIDEMARK_REMOTE ?? '') !== '';
        const db = hasStore ? openReadOnly(storeDir) : undefined;
        try {
          const objects = new ArtifactStore(join(storeDir, OBJECTS_DIR), { create: false });
          const report = await getArtifact({
            runId,
            path,
            out,
            replace: options.force === true,
            ...(step === undefined ? {} : { step }),
            ...(db === undefined ? {} : { local: { db, objects } }),
            ...(hasRemote ? { remote: resolveRemote(options).client } : {}),
          }).catch((error: unknown) => {
            throw explainRestoreError(error, outDir);
          });
          logStoreFailure(output, report);
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
  const lines = [`restored ${what} (${report.bytes} bytes) to ${report.out}: ${from}`];
  if (report.storedObjects > 0) {
    lines.push(`put ${report.storedObjects} downloaded objects back into the local store`);
  }
  return lines.join('\n');
}

/** The restore worked; the user still learns that the local store was not mended. */
function logStoreFailure(output: Output, report: GetArtifactReport): void {
  if (report.storeFailure === null) return;
  output.log('store_put_back_failed', {
    code: report.storeFailure.code,
    message: report.storeFailure.message,
    hint: "the artifact was restored; 'tidemark verify' still lists the objects the store lacks",
  });
}

/**
 * The name the artifact gets inside --out. Paths are checked when logged, but a store written
 * by an older version may hold one whose last part would name --out's parent or --out itself.
 */
function targetName(path: string, step: number | undefined): string {
  const last = path.split('/').at(-1) ?? '';
  if (last === '' || last === '.' || last === '..' || last.includes('\\') || last.includes('\0')) {
    throw new ArtifactError(
      'unsafe_path',
      `the path '${path}' does not end in a name a file can have`,
      {
        hint: 'Nothing was restored. Log the artifact again at a path like model/best.',
      },
    );
  }
  return step === undefined ? last : `${last}-${step}`;
}

function refuseFileAsOut(outDir: string): void {
  let isFile: boolean;
  try {
    isFile = statSync(outDir, { throwIfNoEntry: false })?.isDirectory() === false;
  } catch (error) {
    // ENOTDIR: a file sits where one of the folders above it should be.
    isFile = (error as NodeJS.ErrnoException).code === 'ENOTDIR';
    if (!isFile) throw error;
  }
  if (!isFile) return;
  throw new TidemarkError('invalid_out', `--out ${outDir}: a file is in the way of the folder`, {
    hint: 'Pass --out a folder (or a path for a new one); the artifact is restored inside it.',
  });
}

function targetExists(out: string): TidemarkError {
  return usageError(`${out} already exists`, 'Pass --force to replace it, or another --out.');
}

/**
 * Words restore's errors for this command: they name --out and what to do. Codes that say
 * the argument is wrong exit 2; a folder that cannot be written or a full disk exit 6.
 */
function explainRestoreError(error: unknown, outDir: string): unknown {
  if (!isTidemarkError(error)) return error;
  const cause = { cause: error };
  const where = `--out ${outDir}: ${error.message}`;
  switch (error.code) {
    case 'target_exists':
      return new TidemarkError('usage', error.message, {
        ...cause,
        hint:
          'Something appeared there during the restore. ' +
          'Pass --force to replace it, or another --out.',
      });
    case 'target_blocked':
      return new TidemarkError('invalid_out', where, {
        ...cause,
        hint: 'Pass --out a folder, or a path where one can be made: no part of it may be a file.',
      });
    case 'target_unwritable':
      return new ArtifactError(error.code, where, {
        ...cause,
        hint: 'Pass --out a folder this user can write; nothing was restored.',
      });
    case 'name_too_long':
      return new ArtifactError(error.code, where, {
        ...cause,
        hint: 'Pass a shorter --out path, or restore onto a file system that allows longer names.',
      });
    case 'disk_full':
      return new ArtifactError(error.code, where, {
        ...cause,
        hint: 'Free disk space, then run get again; nothing partial was kept.',
      });
    default:
      return error;
  }
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
