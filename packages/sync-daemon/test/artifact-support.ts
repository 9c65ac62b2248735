import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Digest, Logger } from '@tidemark/core';
import {
  createServer as createTidemarkServer,
  ensureInitialToken,
  type ServerLimits,
} from '@tidemark/server';
import Database from 'better-sqlite3';
import { tempDir } from './helpers.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const SERVER_MAIN = join(REPO, 'packages/server/dist/main.js');
const stops: Array<() => Promise<void> | void> = [];

/** Ends what the artifact tests started; call from afterEach. */
export async function stopAll(): Promise<void> {
  while (stops.length > 0) await stops.pop()?.();
}

export interface ChunkPut {
  digest: Digest;
  status: number;
}

export interface RecordingServer {
  url: string;
  port: number;
  token: string;
  dataDir: string;
  /** Every chunk upload the server finished handling, in order, cut-off ones included. */
  puts: ChunkPut[];
  /** Called after each chunk upload is handled. */
  onPut: ((put: ChunkPut) => void) | undefined;
  /** Stops the server once the requests it is handling are done, stored chunks included. */
  close(): Promise<void>;
}

/** A server in this process on 127.0.0.1 that records each chunk upload it handles. */
export async function startRecordingServer(
  dataDir = tempDir(),
  limits: Partial<ServerLimits> = {},
  port = 0,
): Promise<RecordingServer> {
  const token = readFileSync(ensureInitialToken(dataDir).path, 'utf8').trim();
  const recorded: RecordingServer = {
    url: '',
    port: 0,
    token,
    dataDir,
    puts: [],
    onPut: undefined,
    close: async () => {},
  };
  const logger: Logger = {
    debug(event, fields = {}) {
      const put = chunkUpload(event, fields);
      if (put === undefined) return;
      recorded.puts.push(put);
      recorded.onPut?.(put);
    },
    info() {},
    warn() {},
    error() {},
  };
  const server = createTidemarkServer({ dataDir, logger, limits });
  const address = await server.listen(port, '127.0.0.1');
  stops.push(() => server.close());
  recorded.close = () => server.close();
  recorded.url = address.url;
  recorded.port = address.port;
  return recorded;
}

/**
 * The chunk upload a server log event reports: a single `PUT /api/v1/chunks/<digest>` request,
 * or one chunk of a batch (`chunk_received`, status 0 when the body broke off inside it).
 */
function chunkUpload(event: string, fields: Record<string, unknown>): ChunkPut | undefined {
  if (event === 'chunk_received') {
    return { digest: fields.digest as Digest, status: Number(fields.status) };
  }
  const path = String(fields.path ?? '');
  if (event !== 'request' || fields.method !== 'PUT' || !path.startsWith('/api/v1/chunks/')) {
    return undefined;
  }
  return { digest: path.slice('/api/v1/chunks/'.length) as Digest, status: Number(fields.status) };
}

/** The chunks a project holds on a server, read from its database as another process would. */
export function heldChunks(dataDir: string, project: string): Set<Digest> {
  const db = new Database(join(dataDir, 'server.db'), { readonly: true });
  try {
    const rows = db
      .prepare('SELECT digest FROM project_chunks WHERE project = ?')
      .pluck()
      .all(project) as Digest[];
    return new Set(rows);
  } finally {
    db.close();
  }
}

/**
 * A TCP proxy on 127.0.0.1 that forwards until `budget` bytes went from clients to the server
 * in total, then resets every connection, and every new one until rearmed: an upload cut at
 * that exact byte.
 */
export class CutProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #budget: number;
  #forwarded = 0;

  private constructor(server: Server, upstreamPort: number, budget: number) {
    this.#server = server;
    this.#budget = budget;
    server.on('connection', (client) => this.#accept(client, upstreamPort));
  }

  static async start(upstreamPort: number, budget: number): Promise<CutProxy> {
    const proxy = new CutProxy(createServer(), upstreamPort, budget);
    proxy.#server.listen(0, '127.0.0.1');
    await once(proxy.#server, 'listening');
    stops.push(() => proxy.close());
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Starts counting again from zero with a new budget. */
  rearm(budget: number): void {
    this.#budget = budget;
    this.#forwarded = 0;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket, upstreamPort: number): void {
    if (this.#forwarded >= this.#budget) {
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(upstreamPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      socket.on('error', () => {});
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    upstream.on('data', (piece: Buffer) => client.write(piece));
    client.on('data', (piece: Buffer) => {
      const room = this.#budget - this.#forwarded;
      if (room > 0) upstream.write(piece.subarray(0, room));
      this.#forwarded += Math.min(Math.max(room, 0), piece.length);
      if (this.#forwarded >= this.#budget) {
        for (const socket of this.#sockets) socket.resetAndDestroy();
      }
    });
  }
}

export interface ServerProcess {
  url: string;
  port: number;
  child: ChildProcess;
  kill9(): Promise<void>;
}

/** `@tidemark/server` as its own process on 127.0.0.1, killed with -9 after the test. */
export async function startServerProcess(dataDir: string, port = 0): Promise<ServerProcess> {
  const child = spawn(process.execPath, [SERVER_MAIN, '--data', dataDir, '--port', String(port)], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = once(child, 'exit');
  const kill9 = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited;
  };
  stops.push(kill9);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const [line] = (await once(lines, 'line')) as [string];
  lines.close();
  const url = (JSON.parse(line) as { url: string }).url;
  return { url, port: Number(new URL(url).port), child, kill9 };
}

/** Registers a child process to be killed with -9 after the test, if it still runs. */
export function killAfterTest(child: ChildProcess): void {
  const exited = once(child, 'exit');
  stops.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited;
  });
}
