import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  getHasher,
  type Logger,
  PROTOCOL_VERSION,
  silentLogger,
  ValidationError,
} from '@tidemark/core';
import type Database from 'better-sqlite3';
import { OpApplier } from './apply-ops.js';
import { authenticate, type Principal } from './auth.js';
import { addChunkRoutes } from './chunk-routes.js';
import { ChunkStore } from './chunk-store.js';
import { errorBody, statusOf } from './errors.js';
import { type Reply, sendReply } from './http-io.js';
import { resolveLimits, type ServerLimits } from './limits.js';
import { addOpsRoutes } from './ops-routes.js';
import { type RequestContext, Router } from './router.js';
import { addRunDeletion } from './run-deletion.js';
import { RunQueries } from './run-queries.js';
import { addRunRoutes } from './run-routes.js';
import { openServerDatabase } from './server-schema.js';

export interface ServerOptions {
  /** The folder holding `server.db` and `chunks/`; created when missing. */
  dataDir: string;
  /** Receives `request` (debug) and `request_failed` (error) events; silent by default. */
  logger?: Logger;
  /** Lower or raise the defaults of docs/protocol.md (Limits). */
  limits?: Partial<ServerLimits>;
  /** Milliseconds since the epoch; injectable for tests. */
  clock?: () => number;
}

export interface ServerAddress {
  host: string;
  port: number;
  /** `http://host:port`, the base URL clients are given. */
  url: string;
}

/** A tidemark server over one data folder. Nothing listens until `listen` is called. */
export interface TidemarkServer {
  readonly dataDir: string;
  /** Binds and resolves the bound address; port 0 picks a free port. */
  listen(port: number, host?: string): Promise<ServerAddress>;
  /** Stops accepting, lets requests in flight finish, then closes the database. */
  close(): Promise<void>;
}

const KNOWN_OPTIONS = new Set(['dataDir', 'logger', 'limits', 'clock']);
const ANONYMOUS: Principal = { tokenId: '', projects: [] };

/**
 * Opens (creating and migrating as needed) the server data folder and builds the HTTP server
 * of docs/protocol.md on it.
 *
 * @example
 * const server = createServer({ dataDir: '/srv/tidemark' });
 * const { url } = await server.listen(8750);
 */
export function createServer(options: ServerOptions): TidemarkServer {
  validateOptions(options);
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? Date.now;
  const limits = resolveLimits(options.limits);
  const db = openServerDatabase(options.dataDir);

  const chunks = new ChunkStore(options.dataDir, db, logger);
  const router = new Router();
  router.add('GET', '/api/v1/health', health, { public: true });
  router.add('GET', '/api/v1/whoami', whoami);
  addOpsRoutes(router, new OpApplier(db, chunks, clock), limits);
  addChunkRoutes(router, chunks, limits, clock, logger);
  addRunRoutes(router, new RunQueries(db), chunks, limits);
  addRunDeletion(router, db, clock);
  return new HttpTidemarkServer(options.dataDir, db, router, logger, chunks);
}

class HttpTidemarkServer implements TidemarkServer {
  readonly dataDir: string;
  readonly #db: Database.Database;
  readonly #router: Router;
  readonly #logger: Logger;
  readonly #http: Server;
  readonly #chunks: ChunkStore;
  #closed: Promise<void> | undefined;
  /**
   * Requests being handled. A handler may outlive its connection (an upload whose client went
   * away still stores the chunks that arrived whole), so closing waits for these too.
   */
  readonly #handling = new Set<Promise<void>>();

  constructor(
    dataDir: string,
    db: Database.Database,
    router: Router,
    logger: Logger,
    chunks: ChunkStore,
  ) {
    this.dataDir = dataDir;
    this.#db = db;
    this.#router = router;
    this.#logger = logger;
    this.#chunks = chunks;
    this.#http = createHttpServer((req, res) => {
      const handling = this.#handle(req, res).catch((error: unknown) => {
        this.#logger.error('response_failed', describe(error));
        res.destroy();
      });
      this.#handling.add(handling);
      void handling.finally(() => this.#handling.delete(handling));
    });
  }

  async listen(port: number, host = '127.0.0.1'): Promise<ServerAddress> {
    if (!Number.isInteger(port) || port < 0 || port > 65_535) {
      throw new ValidationError(
        'invalid_option',
        'listen: port must be an integer from 0 to 65535',
        {
          hint: 'Pass 0 to pick a free port.',
        },
      );
    }

    // Compiles the hashing module before the first upload has to wait for it, and settles the
    // chunks a stopped server left unsynced before anyone is told what it holds.
    const recovered = this.#chunks.recover(await getHasher());
    if (recovered.dropped > 0) this.#logger.warn('pending_chunks_dropped', recovered);
    if (recovered.tempFiles > 0) {
      this.#logger.info('temp_files_removed', { count: recovered.tempFiles });
    }
    await new Promise<void>((resolve, reject) => {
      this.#http.once('error', reject);
      this.#http.listen(port, host, () => {
        this.#http.off('error', reject);
        resolve();
      });
    });

    const address = this.#http.address() as AddressInfo;
    const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return { host: address.address, port: address.port, url: `http://${urlHost}:${address.port}` };
  }

  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      if (!this.#http.listening) {
        resolve();
        return;
      }
      this.#http.close(() => resolve());
      this.#http.closeIdleConnections();
    })
      .then(() => Promise.all(this.#handling))
      .then(() => this.#chunks.settled())
      .then(() => {
        this.#db.close();
      });
    return this.#closed;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const method = req.method ?? 'GET';
    const url = parseUrl(req.url);
    let status = 500;

    // A kept-alive connection would hold close() open after its last answer.
    if (this.#closed !== undefined) res.setHeader('Connection', 'close');

    try {
      const match = this.#router.match(method, url.pathname);
      const principal = match.public
        ? ANONYMOUS
        : authenticate(this.#db, req.headers.authorization);
      const reply = await match.handler({ req, res, url, params: match.params, principal });
      status = reply.status;
      await sendReply(res, reply);
    } catch (error) {
      status = statusOf(error);
      if (status >= 500) {
        this.#logger.error('request_failed', { method, path: url.pathname, ...describe(error) });
      }
      await answerError(req, res, error, status);
    } finally {
      const ms = Math.round(performance.now() - started);
      this.#logger.debug('request', { method, path: url.pathname, status, ms });
    }
  }
}

function health(): Reply {
  return { status: 200, json: { ok: true, protocol: PROTOCOL_VERSION } };
}

function whoami({ principal }: RequestContext): Reply {
  const projects = principal.projects === '*' ? ['*'] : principal.projects;
  return { status: 200, json: { token: principal.tokenId, projects } };
}

/**
 * Answers an error. A request whose body was not read to the end (refused before or while
 * reading it) is answered with `Connection: close`, so an oversized body is never drained.
 */
async function answerError(
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
  status: number,
): Promise<void> {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (!req.complete && hasBody(req)) res.setHeader('Connection', 'close');
  await sendReply(res, { status, json: errorBody(error, status) });
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function parseUrl(raw: string | undefined): URL {
  const target = raw ?? '/';
  // Prefixing a fixed origin keeps a request target like '//host/x' a path, never a host.
  try {
    return new URL(`http://tidemark.invalid${target.startsWith('/') ? target : `/${target}`}`);
  } catch {
    return new URL('http://tidemark.invalid/');
  }
}

function describe(error: unknown): Record<string, unknown> {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      error: error.name,
      code: typeof code === 'string' ? code : undefined,
      message: error.message,
    };
  }
  return { error: String(error) };
}

function validateOptions(options: ServerOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError('invalid_option', 'createServer: pass an options object { dataDir }');
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw new ValidationError('invalid_option', `createServer: unknown option '${key}'`, {
        hint: `Known options: ${[...KNOWN_OPTIONS].join(', ')}.`,
      });
    }
  }
  if (typeof options.dataDir !== 'string' || options.dataDir.length === 0) {
    throw new ValidationError('invalid_option', 'createServer: dataDir must be a non-empty path', {
      hint: "Pass the server's data folder, e.g. { dataDir: '/srv/tidemark' }.",
    });
  }
}
