import { ValidationError } from './errors.js';
import { assertWellFormed, type FieldInput, type FieldValue } from './values.js';

/** The longest path accepted, in UTF-8 bytes. */
export const MAX_PATH_BYTES = 4096;

/**
 * Checks a namespace path such as `parameters/optimizer/lr`. Any unicode is allowed; empty
 * segments, leading or trailing slashes and control characters are not, because they would
 * make two different paths look alike in every view.
 */
export function validatePath(path: unknown, what = 'path'): string {
  if (typeof path !== 'string' || path.length === 0) {
    throw new ValidationError('invalid_path', `${what} must be a non-empty string`, {
      hint: "Use a path such as 'metrics/loss'.",
    });
  }
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES) {
    throw new ValidationError('invalid_path', `${what} is longer than ${MAX_PATH_BYTES} bytes`, {
      hint: 'Shorten the path.',
    });
  }
  if (path.startsWith('/') || path.endsWith('/') || path.includes('//')) {
    throw new ValidationError('invalid_path', `${what} '${path}' has an empty segment`, {
      hint: "Separate segments with single slashes and do not start or end with one: 'a/b/c'.",
    });
  }
  if (hasControlCharacter(path)) {
    throw new ValidationError('invalid_path', `${what} contains a control character`, {
      hint: 'Remove tabs, newlines and other control characters from the path.',
    });
  }
  return assertWellFormed(path, what);
}

/** Joins a prefix and a nested object into `[path, leaf]` pairs, depth first. */
export function flattenFields(path: string, value: FieldInput): Array<[string, FieldValue]> {
  if (isNestedObject(value)) {
    const out: Array<[string, FieldValue]> = [];
    for (const [key, child] of Object.entries(value)) {
      if (key.length === 0) {
        throw new ValidationError('invalid_path', `field ${path} has an empty key`, {
          hint: 'Give every key of a nested object a name.',
        });
      }
      out.push(...flattenFields(`${path}/${key}`, child));
    }
    return out;
  }
  if (value === null || value === undefined) {
    throw new ValidationError('invalid_value', `field ${path} is ${String(value)}`, {
      hint: 'Leave the field out instead of setting it to null or undefined.',
    });
  }
  return [[validatePath(path, 'field path'), value as FieldValue]];
}

function isNestedObject(value: unknown): value is { readonly [key: string]: FieldInput } {
  if (typeof value !== 'object' || value === null) return false;
  if (Array.isArray(value) || value instanceof Date) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}
