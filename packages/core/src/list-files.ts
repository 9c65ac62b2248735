import { type Dirent, readdirSync, type Stats, statSync } from 'node:fs';
import { join } from 'node:path';
import { ArtifactError } from './errors.js';

/**
 * Relative paths of every file below `root`, sorted so that anything built from the list (a
 * directory manifest, a data fingerprint) is the same for the same tree. Symbolic links are
 * followed the way hosted trackers follow them: a link to a file is listed under the link's own
 * name (reading that path reads the target's bytes), a link to a folder is walked like a
 * folder. Folders hold no bytes, so an empty one adds nothing to the list.
 *
 * Nothing is left out silently: a dangling link, a link back to a folder it sits in, a FIFO,
 * socket or device, a folder that cannot be read and a name that is not valid UTF-8 each throw
 * an ArtifactError naming the path, before anything was read or written.
 */
export function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (folder: string, prefix: string, ancestors: ReadonlySet<string>): void => {
    for (const entry of readFolder(folder)) {
      const name = decodeName(entry.name, folder);
      const full = join(folder, name);
      const relative = prefix === '' ? name : join(prefix, name);
      const linked = entry.isSymbolicLink() ? followLink(full) : undefined;
      const target = linked ?? entry;
      if (target.isFile()) {
        out.push(relative);
      } else if (target.isDirectory()) {
        const identity = folderIdentity(full, linked);
        if (ancestors.has(identity)) throw folderCycle(full);
        walk(full, relative, new Set([...ancestors, identity]));
      } else {
        throw specialFile(full);
      }
    }
  };
  walk(root, '', new Set([folderIdentity(root, undefined)]));
  return out.sort();
}

function readFolder(folder: string): Dirent<Buffer>[] {
  try {
    return readdirSync(folder, { withFileTypes: true, encoding: 'buffer' });
  } catch (error) {
    throw unreadableFolder(folder, error);
  }
}

/**
 * A manifest is JSON text, so a name must survive UTF-8 both ways; a name in another encoding
 * would be recorded under a different name than the one on disk.
 */
function decodeName(raw: Buffer, folder: string): string {
  const name = raw.toString('utf8');
  if (Buffer.from(name, 'utf8').equals(raw)) return name;
  throw new ArtifactError(
    'unsupported_name',
    `a name in ${folder} is not valid UTF-8 (${JSON.stringify(name)})`,
    { hint: 'Rename the file to a UTF-8 name, or upload the other files of the folder.' },
  );
}

function followLink(path: string): Stats {
  try {
    return statSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
    throw new ArtifactError('dangling_link', `symbolic link ${path} leads nowhere (${code})`, {
      hint: 'Fix or remove the link; links are followed and their target must exist.',
      cause: error,
    });
  }
}

/** Device and inode name a folder whatever link it is reached through. */
function folderIdentity(path: string, known: Stats | undefined): string {
  let stats = known;
  try {
    stats ??= statSync(path);
  } catch (error) {
    throw unreadableFolder(path, error);
  }
  return `${stats.dev}:${stats.ino}`;
}

function unreadableFolder(path: string, cause: unknown): ArtifactError {
  const code = (cause as NodeJS.ErrnoException).code ?? 'unknown';
  return new ArtifactError('source_unreadable', `cannot list folder ${path} (${code})`, {
    hint: 'Check that the folder exists and is readable while it is logged.',
    cause,
  });
}

function folderCycle(path: string): ArtifactError {
  return new ArtifactError('link_cycle', `${path} leads back to a folder that contains it`, {
    hint: 'Remove the link; the files of that folder would be listed again without end.',
  });
}

function specialFile(path: string): ArtifactError {
  return new ArtifactError('not_a_file', `${path} is a FIFO, socket or device, not a file`, {
    hint: 'Move it out of the folder; only files, folders and links to them are uploaded.',
  });
}
