import {
  ArtifactError,
  NotFoundError,
  QueryError,
  StoreError,
  type TidemarkError,
  ValidationError,
} from '@tidemark/core';

/** Exit codes of the `tidemark` command, listed in every command's `--help`. */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  notFound: 3,
  unreachable: 4,
  auth: 5,
  store: 6,
  partial: 7,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const EXIT_CODE_HELP = `Exit codes:
  0  success
  1  internal error (a bug: please report it)
  2  bad arguments or input
  3  run, series or file not found
  4  remote unreachable or failing; nothing was lost, sync again later
  5  authentication or authorization failed
  6  the store, a data folder or the --out folder cannot be used as it is (foreign, newer,
     damaged, unwritable, full), or verify found errors
  7  partly done: some runs were quarantined (see the message)`;

const REMOTE_CODES: Record<string, ExitCode> = {
  unreachable: ExitCode.unreachable,
  server_error: ExitCode.unreachable,
  protocol: ExitCode.unreachable,
  auth_failed: ExitCode.auth,
  forbidden: ExitCode.auth,
  quarantined: ExitCode.partial,
};

/** Maps an error to its exit code: by its code where that is specific, else by its boundary. */
export function exitCodeFor(error: TidemarkError): ExitCode {
  const byCode = REMOTE_CODES[error.code];
  if (byCode !== undefined) return byCode;

  const serverCode = (error as { serverCode?: unknown }).serverCode;
  if (error instanceof NotFoundError || error.code.endsWith('not_found')) return ExitCode.notFound;
  if (typeof serverCode === 'string' && serverCode.endsWith('not_found')) return ExitCode.notFound;
  // Any 404 means the server lacks what was asked for (or holds it damaged, chunk_corrupt).
  if ((error as { status?: unknown }).status === 404) return ExitCode.notFound;
  if (error instanceof StoreError || error instanceof ArtifactError) return ExitCode.store;
  if (error instanceof ValidationError || error instanceof QueryError) return ExitCode.usage;
  if (error.code === 'usage' || error.code.startsWith('invalid')) return ExitCode.usage;
  // A second daemon on one store is refused like a bad argument: nothing was started.
  if (error.code === 'daemon_running') return ExitCode.usage;
  if (error.code === 'rejected') return ExitCode.usage;
  return ExitCode.internal;
}
