import { TidemarkError } from '@tidemark/core';

export type DaemonErrorCode =
  | 'invalid_config'
  | 'daemon_running'
  | 'daemon_not_running'
  | 'daemon_start_failed'
  | 'daemon_stop_failed';

/**
 * The daemon could not start, stop or be configured as asked. Nothing in the store changed;
 * the hint says what to do. Remote failures during a pass stay `RemoteError`s.
 */
export class DaemonError extends TidemarkError {
  declare readonly code: DaemonErrorCode;

  constructor(
    code: DaemonErrorCode,
    message: string,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(code, message, { ...options, retryable: false });
  }
}

/** A configuration mistake, named by where it came from (`--max-rate`, `daemon.json: window`). */
export function invalidConfig(source: string, problem: string, hint: string): DaemonError {
  return new DaemonError('invalid_config', `${source}: ${problem}`, { hint });
}
