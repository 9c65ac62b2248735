import { isTidemarkError, TidemarkError } from '@tidemark/core';
import Table from 'cli-table3';
import { ExitCode, exitCodeFor } from './exit-codes.js';
import { explainSystemError } from './system-errors.js';

/**
 * Where a command writes. Results go to stdout; logs and progress to stderr. With `--json`
 * stdout carries exactly one envelope, `ok` true exactly when the exit code is 0:
 * `{ ok: true, command, data }`, or `{ ok: false, command, error }` with `data` beside the
 * error when the command still has a result to show (verify's findings, sync's report).
 */
export interface Output {
  json: boolean;
  command: string;
  result(data: unknown, human: () => string): void;
  /**
   * A result that ends in failure: the data as `result` prints it, and the error (on stderr
   * for people, in the envelope for scripts). Answers the exit code the command must return.
   */
  failure(data: unknown, error: TidemarkError, human: () => string): ExitCode;
  log(event: string, fields?: Record<string, unknown>): void;
}

export function createOutput(command: string, json: boolean): Output {
  return {
    json,
    command,
    result(data, human) {
      if (json) process.stdout.write(`${stringifyJson({ ok: true, command, data })}\n`);
      else process.stdout.write(`${human()}\n`);
    },
    failure(data, error, human) {
      if (json) {
        const envelope = { ok: false, command, error: error.toJSON(), data };
        process.stdout.write(`${stringifyJson(envelope)}\n`);
      } else {
        process.stdout.write(`${human()}\n`);
        writeHumanError(error.toJSON());
      }
      return exitCodeFor(error);
    },
    log(event, fields = {}) {
      process.stderr.write(`${formatLogLine(event, fields)}\n`);
    },
  };
}

/** Prints an error for the user and returns the exit code it maps to. */
export function reportError(command: string, json: boolean, raw: unknown): ExitCode {
  const error = explainSystemError(raw);
  const known = isTidemarkError(error) ? error : undefined;
  const body = known?.toJSON() ?? {
    code: 'internal',
    message: error instanceof Error ? error.message : String(error),
    hint: 'This is a bug in tidemark: run again with DEBUG=tidemark to see where, and report it.',
    retryable: false,
  };
  if (json) {
    process.stdout.write(`${stringifyJson({ ok: false, command, error: body })}\n`);
  } else {
    writeHumanError(body);
    if (known === undefined && error instanceof Error && process.env.DEBUG?.includes('tidemark')) {
      process.stderr.write(`${error.stack ?? ''}\n`);
    }
  }
  return known === undefined ? ExitCode.internal : exitCodeFor(known);
}

function writeHumanError(body: { message: string; hint?: string }): void {
  process.stderr.write(`error: ${body.message}\n`);
  if (body.hint !== undefined) process.stderr.write(`hint: ${body.hint}\n`);
}

/** One structured log line: an event name then key=value pairs, values quoted when needed. */
export function formatLogLine(event: string, fields: Record<string, unknown>): string {
  const parts = [`event=${event}`];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    const text = typeof value === 'string' ? value : stringifyJson(value);
    parts.push(`${key}=${/[\s"=]/.test(text) || text === '' ? JSON.stringify(text) : text}`);
  }
  return parts.join(' ');
}

/** JSON with the values JSON has no literal for written as strings: NaN, ±Infinity, -0, bigints. */
export function stringifyJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (typeof v === 'number') {
      if (Number.isNaN(v)) return 'NaN';
      if (v === Number.POSITIVE_INFINITY) return 'Infinity';
      if (v === Number.NEGATIVE_INFINITY) return '-Infinity';
      if (Object.is(v, -0)) return '-0';
    }
    return v;
  });
}

export function renderTable(head: string[], rows: unknown[][]): string {
  const table = new Table({ head, style: { head: [], border: [], compact: true } });
  for (const row of rows) table.push(row.map(formatCell));
  return table.toString();
}

export function formatCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return `<${value.length} bytes>`;
  if (typeof value === 'object') return stringifyJson(value);
  return String(value);
}

export function formatTime(ms: number | null): string {
  return ms === null ? '' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

export function usageError(message: string, hint: string): TidemarkError {
  return new TidemarkError('usage', message, { hint });
}

export { ExitCode };
