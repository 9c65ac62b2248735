import { createServer, ensureInitialToken } from '@tidemark/server';
import type { Command } from 'commander';
import { action, type CommonOptions } from '../command-kit.js';
import { debugWanted } from '../daemon-log.js';
import { createOutput, formatLogLine, usageError } from '../output.js';
import { parsePort } from '../parse.js';

interface ServeOptions extends CommonOptions {
  data?: string;
  port: string;
  host: string;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the team server: the sync API and the query API')
    .requiredOption(
      '--data <dir>',
      'folder for the server database and chunks (created if missing)',
    )
    .option('--port <n>', 'TCP port (0 picks a free one)', '8642')
    .option('--host <addr>', 'address to bind', '127.0.0.1')
    .option('--json', 'print one JSON envelope when listening')
    .action(
      action('serve', async (_output, options: ServeOptions) => {
        const output = createOutput('serve', options.json === true);
        const port = parsePort(options.port);
        if (options.data === undefined || options.data.length === 0) {
          throw usageError(
            '--data is required',
            'Pass --data DIR, the folder the server keeps its data in.',
          );
        }

        // Listen first: a port already in use must not leave a fresh token behind.
        const server = createServer({ dataDir: options.data, logger: stderrLogger() });
        let address: Awaited<ReturnType<typeof server.listen>>;
        try {
          address = await server.listen(port, options.host);
        } catch (error) {
          await server.close();
          throw error;
        }

        const token = ensureInitialToken(options.data);
        if (token.created) {
          output.log('token_created', {
            path: token.path,
            hint: `export TIDEMARK_API_TOKEN=$(cat ${token.path})`,
          });
        }
        output.result(
          { url: address.url, dataDir: options.data, tokenFile: token.created ? token.path : null },
          () => `listening on ${address.url}`,
        );

        await new Promise<void>((resolve) => {
          const stop = (): void => {
            output.log('shutting_down');
            server.close().then(resolve, resolve);
          };
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        return 0;
      }),
    );
}

function stderrLogger() {
  const write =
    (level: string) =>
    (event: string, fields: Record<string, unknown> = {}) => {
      process.stderr.write(`${formatLogLine(event, { level, ...fields })}\n`);
    };
  return {
    debug: debugWanted(undefined) ? write('debug') : () => {},
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
  };
}
