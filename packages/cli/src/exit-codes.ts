/** Exit codes of the `tidemark` command, listed in `tidemark --help`. */
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
  6  the store cannot be opened as it is (foreign, newer, damaged)
  7  partly done: some runs were quarantined (see the message)`;

/** Maps an error code to an exit code; unknown codes are internal errors. */
export function exitCodeFor(code: string): ExitCode {
  if (
    code.startsWith('invalid') ||
    code === 'usage' ||
    code === 'empty_query' ||
    code === 'write_refused' ||
    code === 'query_failed'
  ) {
    return ExitCode.usage;
  }
  if (code.endsWith('not_found') || code === 'object_missing') return ExitCode.notFound;
  if (code === 'unreachable' || code === 'server_error' || code === 'timeout')
    return ExitCode.unreachable;
  if (code === 'auth_failed' || code === 'forbidden') return ExitCode.auth;
  if (
    code.startsWith('store_') ||
    code === 'foreign_database' ||
    code === 'not_a_store' ||
    code === 'migration_failed'
  ) {
    return ExitCode.store;
  }
  if (code === 'quarantined') return ExitCode.partial;
  return ExitCode.usage;
}
