import { StoreError, TidemarkError } from '@tidemark/core';

interface SystemErrorLike {
  code?: string;
  path?: string;
  syscall?: string;
  address?: string;
  port?: number;
  hostname?: string;
}

/**
 * Turns an operating-system or SQLite error that escaped a command into one the user can act
 * on. Errors not listed here stay as they are and are reported as internal errors.
 */
export function explainSystemError(error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof TidemarkError) return error;
  const e = error as Error & SystemErrorLike;
  const where = e.path === undefined ? '' : ` ${e.path}`;

  switch (e.code) {
    case 'EEXIST':
    case 'ENOTDIR':
      return new TidemarkError(
        'invalid_path',
        `cannot use${where}: a file is in the way of a folder`,
        {
          hint: 'Pass a folder path (--dir, --data, TIDEMARK_DIR) that is a folder or does not exist yet.',
          cause: error,
        },
      );
    case 'EISDIR':
      return new TidemarkError(
        'invalid_path',
        `cannot use${where}: a folder is in the way of a file`,
        {
          hint: 'Move the folder away or pass another path; tidemark does not replace folders unasked.',
          cause: error,
        },
      );
    case 'ENAMETOOLONG':
      return new TidemarkError('invalid_path', `a name in${where} is too long`, {
        hint: 'Pass a shorter path; file systems allow 255 bytes per name.',
        cause: error,
      });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new StoreError('permission_denied', `no permission to use${where} (${e.code})`, {
        hint: 'Check the folder is writable by this user, or point --dir / --data elsewhere.',
        cause: error,
      });
    case 'ENOSPC':
    case 'EDQUOT':
      return new StoreError('disk_full', `no space left on the device${where}`, {
        hint: 'Free disk space and run the command again; nothing recorded was lost.',
        cause: error,
      });
    case 'EADDRINUSE':
      return new TidemarkError(
        'invalid_port',
        `address ${e.address ?? ''}:${e.port ?? ''} is already in use`,
        {
          hint: 'Another server holds that port: pick another --port, or 0 for any free one.',
          cause: error,
        },
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new TidemarkError(
        'invalid_host',
        `cannot bind to host ${e.hostname ?? e.address ?? ''}`,
        {
          hint: 'Pass an address of this machine to --host, such as 127.0.0.1.',
          cause: error,
        },
      );
    case 'SQLITE_CORRUPT':
    case 'SQLITE_NOTADB':
      return new StoreError('store_damaged', `the store database is damaged (${e.code})`, {
        hint: "Run 'tidemark verify' to see what can be recovered; do not delete the folder.",
        cause: error,
      });
    case 'SQLITE_READONLY':
    case 'SQLITE_CANTOPEN':
      return new StoreError(
        'store_unwritable',
        `the store database cannot be opened for writing (${e.code})`,
        {
          hint: 'Check the store folder and its files are writable by this user.',
          cause: error,
        },
      );
    default:
      return error;
  }
}
