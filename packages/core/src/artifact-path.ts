import { ValidationError } from './errors.js';
import { validatePath } from './paths.js';

/**
 * Checks the path a file or folder is logged at (`upload`, `logFile`). On top of the rules of
 * every namespace path it refuses `.` and `..` segments and backslashes: `tidemark get` turns
 * the path's last segment into a name on disk, and `..` there would write outside `--out`.
 * The server refuses the same paths in `file.add` ops and file series (`isSafeRelativePath`).
 */
export function validateArtifactPath(path: unknown, what: string): string {
  const checked = validatePath(path, what);
  if (checked.includes('\\')) {
    throw new ValidationError('invalid_path', `${what} '${checked}' contains a backslash`, {
      hint: "Separate the segments of an artifact path with '/': 'model/weights'.",
    });
  }
  const dots = checked.split('/').find((segment) => segment === '.' || segment === '..');
  if (dots !== undefined) {
    throw new ValidationError('invalid_path', `${what} '${checked}' has a '${dots}' segment`, {
      hint: "An artifact path names a place in the run, not on disk: write 'model/weights'.",
    });
  }
  const long = checked.split('/').find((segment) => Buffer.byteLength(segment, 'utf8') > 255);
  if (long !== undefined) {
    throw new ValidationError(
      'invalid_path',
      `${what} has a segment of ${Buffer.byteLength(long, 'utf8')} bytes`,
      {
        hint: "'tidemark get' names the restored file after the last segment, and file systems allow 255 bytes per name: shorten it.",
      },
    );
  }
  return checked;
}
