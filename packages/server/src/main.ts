import { parseArgs } from 'node:util';
import { isTidemarkError, type Logger, ValidationError } from '@tidemark/core';
import { createServer } from './server.js';
import { ensureInitialToken } from './tokens.js';

/**
 * A server as a process: `node dist/main.js --data DIR [--port N] [--host 127.0.0.1]`.
 * Prints one line `{"event":"listening","url":...}` to stdout once bound; logs JSON lines to
 * stderr; closes cleanly on SIGTERM and SIGINT. Exit codes: 0 stopped, 1 failed, 2 bad usage.
 */
const DEFAULT_PORT = 8750;

async function main(): Promise<void> {
  const logger = stderrLogger(/(^|,)tidemark(:|$|,)|tidemark:\*/.test(process.env.DEBUG ?? ''));
  const args = readArguments();
  if (args === undefined) {
    process.exitCode = 2;
    return;
  }

  try {
    const initial = ensureInitialToken(args.data);
    if (initial.created) logger.info('initial_token', { path: initial.path });

    const server = createServer({ dataDir: args.data, logger });
    const address = await server.listen(args.port, args.host);
    process.stdout.write(`${JSON.stringify({ event: 'listening', url: address.url })}\n`);
    logger.info('listening', { url: address.url, data_dir: args.data });

    const stop = (signal: string): void => {
      logger.info('stopping', { signal });
      server.close().then(
        () => logger.info('stopped'),
        (error: unknown) => {
          logger.error('stop_failed', describe(error));
          process.exitCode = 1;
        },
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  } catch (error) {
    logger.error('start_failed', describe(error));
    process.exitCode = 1;
  }
}

function readArguments(): { data: string; port: number; host: string } | undefined {
  try {
    const { values } = parseArgs({
      options: {
        data: { type: 'string' },
        port: { type: 'string', default: String(DEFAULT_PORT) },
        host: { type: 'string', default: '127.0.0.1' },
      },
      strict: true,
    });
    const port = Number(values.port);
    if (values.data === undefined || values.data.length === 0) {
      throw new ValidationError('usage', '--data DIR is required');
    }
    if (!/^[0-9]+$/.test(values.port) || port > 65_535) {
      throw new ValidationError('usage', '--port must be an integer from 0 to 65535');
    }
    return { data: values.data, port, host: values.host };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    writeLine({
      level: 'error',
      event: 'usage',
      message,
      hint: 'node dist/main.js --data DIR [--port N] [--host 127.0.0.1]',
    });
    return undefined;
  }
}

function stderrLogger(debug: boolean): Logger {
  const emit =
    (level: string) =>
    (event: string, fields: Record<string, unknown> = {}) =>
      writeLine({ ts: new Date().toISOString(), level, event, ...fields });
  return {
    debug: debug ? emit('debug') : () => {},
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
  };
}

function writeLine(record: Record<string, unknown>): void {
  process.stderr.write(`${JSON.stringify(record)}\n`);
}

function describe(error: unknown): Record<string, unknown> {
  if (isTidemarkError(error)) {
    return {
      code: error.code,
      message: error.message,
      ...(error.hint ? { hint: error.hint } : {}),
    };
  }
  const code = (error as { code?: unknown } | null)?.code;
  return { code: typeof code === 'string' ? code : 'internal', message: String(error) };
}

await main();
