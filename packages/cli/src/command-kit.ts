import type { Command } from 'commander';
import { createOutput, type Output, reportError } from './output.js';

export interface CommonOptions {
  dir?: string;
  json?: boolean;
}

/** Adds the options every command takes. */
export function withCommonOptions(command: Command): Command {
  return command
    .option('--dir <path>', 'store folder (default: $TIDEMARK_DIR, else ./.tidemark)')
    .option('--json', 'print one JSON envelope { ok, command, data | error } on stdout');
}

/**
 * Wraps a command body: builds its output, turns any error into a message, a JSON envelope
 * and an exit code, and never lets a stack trace reach the user (DEBUG=tidemark shows it).
 */
export function action<A extends unknown[]>(
  name: string,
  body: (output: Output, ...args: A) => Promise<number | undefined> | number | undefined,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const command = args[args.length - 1] as Command;
    const options = command.opts() as CommonOptions;
    const output = createOutput(name, options.json === true);
    try {
      const code = await body(output, ...args);
      if (code !== undefined && code !== 0) process.exitCode = code;
    } catch (error) {
      process.exitCode = reportError(name, options.json === true, error);
    }
  };
}
