import { usageError } from './output.js';

export function parseLimit(text: string | undefined): number {
  const value = text === undefined || text.trim() === '' ? Number.NaN : Number(text);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw usageError(
      `--limit must be a positive whole number, not '${text}'`,
      'Pass e.g. --limit 20.',
    );
  }
  return value;
}

export function parsePort(text: string | undefined): number {
  const value = text === undefined || text.trim() === '' ? Number.NaN : Number(text);
  if (!Number.isSafeInteger(value) || value < 0 || value > 65535) {
    throw usageError(
      `--port must be a number from 0 to 65535, not '${text}'`,
      'Pass e.g. --port 8642 (0 picks a free port).',
    );
  }
  return value;
}
