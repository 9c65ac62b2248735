import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { NotFoundError } from '@tidemark/core';
import { createToken, listTokens, revokeToken, SERVER_DB_FILE } from '@tidemark/server';
import type { Command } from 'commander';
import { action, type CommonOptions } from '../command-kit.js';
import { formatTime, renderTable, usageError } from '../output.js';

interface TokenOptions extends CommonOptions {
  data?: string;
  project?: string[];
}

export function registerToken(program: Command): void {
  const token = program
    .command('token')
    .description('manage the API tokens of a server data folder');

  token
    .command('create')
    .description('create a token and print its secret once')
    .requiredOption('--data <dir>', 'the server data folder')
    .option('--project <name...>', 'projects the token may read and write (default: all)')
    .option('--json', 'print one JSON envelope')
    .action(
      action('token create', async (output, options: TokenOptions) => {
        const created = createToken(requireData(options), { projects: options.project ?? '*' });
        output.result(created, () => created.token);
        return 0;
      }),
    );

  token
    .command('list')
    .description('list tokens (never their secrets)')
    .requiredOption('--data <dir>', 'the server data folder')
    .option('--json', 'print one JSON envelope')
    .action(
      action('token list', async (output, options: TokenOptions) => {
        const tokens = listTokens(requireData(options));
        output.result({ tokens }, () =>
          renderTable(
            ['id', 'projects', 'label', 'created', 'revoked'],
            tokens.map((t) => [
              t.id,
              t.projects === '*' ? 'all' : t.projects.join(', '),
              t.label,
              formatTime(t.createdAt),
              formatTime(t.revokedAt),
            ]),
          ),
        );
        return 0;
      }),
    );

  token
    .command('revoke')
    .description('revoke a token by id')
    .argument('<id>', 'token id, as token list shows it')
    .requiredOption('--data <dir>', 'the server data folder')
    .option('--json', 'print one JSON envelope')
    .action(
      action('token revoke', async (output, id: string, options: TokenOptions) => {
        revokeToken(requireData(options), id);
        output.result({ id, revoked: true }, () => `revoked ${id}`);
        return 0;
      }),
    );
}

function requireData(options: TokenOptions): string {
  if (options.data === undefined || options.data.length === 0) {
    throw usageError('--data is required', 'Pass --data DIR, the server data folder.');
  }

  // A typo in --data must not quietly start a second, empty server folder.
  if (!existsSync(join(options.data, SERVER_DB_FILE))) {
    throw new NotFoundError('server_data_not_found', `no tidemark server data in ${options.data}`, {
      hint: "Pass the folder given to 'tidemark serve --data'; serve creates it on first start.",
    });
  }
  return options.data;
}
