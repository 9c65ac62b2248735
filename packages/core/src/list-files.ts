import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Relative paths of every regular file below `root`, sorted so that anything built from the
 * list (a directory manifest, a data fingerprint) is the same for the same tree. Symbolic links
 * and other special files are left out.
 */
export function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const full = join(folder, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) out.push(relative(root, full));
    }
  };
  walk(root);
  return out.sort();
}
