/** `workspace/name` or `name`: each part starts with a letter or digit, then letters, digits, `.`, `_`, `-`. */
export const PROJECT_PATTERN =
  /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(\/[A-Za-z0-9][A-Za-z0-9._-]{0,99})?$/;

export function isProjectName(value: unknown): value is string {
  return typeof value === 'string' && PROJECT_PATTERN.test(value);
}
