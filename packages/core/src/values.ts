import { ValidationError } from './errors.js';

/** The kinds of value a field can hold. */
export type FieldType = 'float' | 'int' | 'bool' | 'string' | 'datetime' | 'string_set';

/** What callers may pass to `run.set`: a leaf, or a nested object of leaves. */
export type FieldValue = number | bigint | boolean | string | Date | readonly string[];
export type FieldInput = FieldValue | { readonly [key: string]: FieldInput };

/**
 * A field value as stored and sent: `text` is exact and round-trips; `num` is the numeric
 * reading SQL compares on, `null` where there is none (NaN, strings, sets).
 */
export interface EncodedField {
  type: FieldType;
  text: string;
  num: number | null;
}

/**
 * The flag stored beside a float point whose value SQL cannot hold as itself.
 * SQLite stores NaN as NULL and folds -0.0 into 0, so both are marked here.
 */
export const PointFlag = { plain: 0, nan: 1, negativeZero: 2 } as const;
export type PointFlag = (typeof PointFlag)[keyof typeof PointFlag];

/** A float on the wire: a JSON number, or one of the strings JSON has no number for. */
export type WireFloat = number | 'NaN' | 'Infinity' | '-Infinity' | '-0';

export function encodeField(value: FieldValue, path: string): EncodedField {
  if (typeof value === 'number') {
    if (Number.isInteger(value) && !Object.is(value, -0) && Number.isSafeInteger(value)) {
      return { type: 'int', text: String(value), num: value };
    }
    return { type: 'float', text: floatToText(value), num: Number.isNaN(value) ? null : value };
  }
  if (typeof value === 'bigint') {
    return { type: 'int', text: value.toString(), num: Number(value) };
  }
  if (typeof value === 'boolean') {
    return { type: 'bool', text: value ? 'true' : 'false', num: value ? 1 : 0 };
  }
  if (typeof value === 'string') {
    return { type: 'string', text: assertWellFormed(value, path), num: null };
  }
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) {
      throw new ValidationError('invalid_value', `field ${path}: the date is invalid`, {
        hint: 'Pass a Date whose getTime() is a number.',
      });
    }
    return { type: 'datetime', text: value.toISOString(), num: value.getTime() };
  }
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) {
    for (const item of value as string[]) assertWellFormed(item, path);
    const unique = [...new Set(value as string[])].sort();
    return { type: 'string_set', text: JSON.stringify(unique), num: null };
  }
  throw new ValidationError('invalid_value', `field ${path}: this kind of value is not recorded`, {
    hint: 'Fields take numbers, bigints, booleans, strings, Dates, arrays of strings or nested objects of those.',
  });
}

/**
 * Returns `text` if it is well-formed UTF-16. A lone surrogate has no UTF-8 spelling: SQLite
 * would store U+FFFD in its place, so the string would not read back as written (invariant 6).
 */
export function assertWellFormed(text: string, path: string): string {
  if (LONE_SURROGATE.test(text)) {
    throw new ValidationError('invalid_value', `${path}: the string holds a lone surrogate`, {
      hint: 'Pass well-formed unicode; text.toWellFormed() replaces lone surrogates with U+FFFD.',
    });
  }
  return text;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function decodeField(type: FieldType, text: string): FieldValue {
  switch (type) {
    case 'float':
      return textToFloat(text);
    case 'int': {
      const big = BigInt(text);
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(big)
        : big;
    }
    case 'bool':
      return text === 'true';
    case 'string':
      return text;
    case 'datetime':
      return new Date(text);
    case 'string_set':
      return JSON.parse(text) as string[];
  }
}

/** The exact text of a float: shortest round-trip digits, with `-0`, `NaN`, `±Infinity`. */
export function floatToText(value: number): string {
  return Object.is(value, -0) ? '-0' : String(value);
}

export function textToFloat(text: string): number {
  return Number(text);
}

export function toWireFloat(value: number): WireFloat {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return 'Infinity';
  if (value === Number.NEGATIVE_INFINITY) return '-Infinity';
  if (Object.is(value, -0)) return '-0';
  return value;
}

export function fromWireFloat(value: WireFloat): number {
  return typeof value === 'number' ? value : Number(value);
}

/** Splits a float into what SQLite can hold and the flag that restores it exactly. */
export function floatToColumns(value: number): { value: number | null; flag: PointFlag } {
  const flag = floatFlag(value);
  return { value: flagValue(value, flag), flag };
}

/** The flag a float is stored with; split from its value so hot write loops allocate nothing. */
export function floatFlag(value: number): PointFlag {
  if (Number.isNaN(value)) return PointFlag.nan;
  if (value === 0 && 1 / value < 0) return PointFlag.negativeZero;
  return PointFlag.plain;
}

/** The REAL column value for a float stored with `flag`. */
export function flagValue(value: number, flag: PointFlag): number | null {
  if (flag === PointFlag.nan) return null;
  return flag === PointFlag.negativeZero ? 0 : value;
}

export function columnsToFloat(value: number | null, flag: number): number {
  if (flag === PointFlag.nan) return Number.NaN;
  if (flag === PointFlag.negativeZero) return -0;
  return value ?? Number.NaN;
}
