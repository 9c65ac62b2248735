import { renameSync, statSync } from 'node:fs';
import type { Logger } from '@tidemark/core';

export const LOG_FILE = 'daemon.log';

/** A log file past this size is moved to `daemon.log.1` when the daemon starts. */
const ROTATE_BYTES = 10 * 1024 * 1024;

/**
 * The daemon's logger: one JSON object per line (`ts`, `level`, `event`, then snake_case
 * fields), easy for journald, log shippers and tests to read. Debug lines only with
 * `DEBUG=tidemark:*` or `--verbose`.
 */
export function jsonLineLogger(write: (line: string) => void, options: { debug: boolean }): Logger {
  const emit =
    (level: string) =>
    (event: string, fields: Record<string, unknown> = {}): void => {
      write(`${JSON.stringify({ ts: new Date().toISOString(), level, event, ...fields })}\n`);
    };
  return {
    debug: options.debug ? emit('debug') : () => {},
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
  };
}

export function debugWanted(verbose: boolean | undefined): boolean {
  return verbose === true || /(^|,)tidemark(:|$|,)|tidemark:\*/.test(process.env.DEBUG ?? '');
}

/** Keeps one older log beside the current one, so a long-lived daemon cannot fill the disk. */
export function rotateLog(path: string): void {
  try {
    if (statSync(path).size > ROTATE_BYTES) renameSync(path, `${path}.1`);
  } catch {
    // No log yet: nothing to rotate.
  }
}
