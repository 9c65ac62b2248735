import { ValidationError } from './errors.js';
import type { SeriesType } from './point-writer.js';
import { assertWellFormed } from './values.js';

/*
 * How a run checks and describes what its caller hands it: tags, values it cannot log, a
 * series logged with the wrong kind of value, and the error a run failed with.
 */

export function validateTag(tag: unknown): string {
  if (typeof tag !== 'string' || tag.length === 0 || tag.length > 1024) {
    throw new ValidationError('invalid_tag', 'a tag must be a string of 1 to 1024 characters', {
      hint: "Pass tags as plain strings: run.addTags('baseline', 'v2').",
    });
  }
  return assertWellFormed(tag, 'tag');
}

export function unloggable(path: string, value: unknown): ValidationError {
  if (typeof value === 'bigint') {
    return new ValidationError(
      'invalid_value',
      `series ${path}: float series hold float64, and this bigint would be rounded`,
      {
        hint: 'Record exact big integers as fields (run.set), or log Number(x) if rounding is fine.',
      },
    );
  }
  return new ValidationError(
    'invalid_value',
    `series ${path}: only numbers and strings are logged`,
    {
      hint: 'Log numbers for metrics, strings for text; use logFile for files.',
    },
  );
}

export function seriesTypeError(
  path: string,
  existing: SeriesType,
  wanted: SeriesType,
): ValidationError {
  return new ValidationError(
    'series_type_mismatch',
    `series ${path} holds ${existing} values, not ${wanted}`,
    { hint: 'Log this value under another path.' },
  );
}

export function describeFailure(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
