import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { RateLimiter } from '@tidemark/sync-daemon';

/** What the proxy does to one TCP connection. Byte counts are of the client's request bytes. */
export type ConnectionFault =
  | { kind: 'pass' }
  /** Closes the connection as soon as it is accepted. */
  | { kind: 'drop' }
  /** Forwards `afterBytes` of the client's bytes, then resets both sides (RST). */
  | { kind: 'reset_request'; afterBytes: number }
  /** Forwards the request whole; resets once `afterBytes` of the answer went back. */
  | { kind: 'reset_response'; afterBytes: number }
  /** Forwards `afterBytes`, then reads nothing more and answers nothing, ever. */
  | { kind: 'stall'; afterBytes: number }
  /** Answers the first request itself with this status, never reaching the server. */
  | { kind: 'status'; status: 429 | 500 | 502 | 503; retryAfterSeconds?: number };

export interface ConnectionPlan {
  fault: ConnectionFault;
  /** Added before each piece forwarded, both ways. */
  latencyMs?: number;
  /** Cap of each direction of this connection. */
  bytesPerSecond?: number;
}

export interface ProxyStats {
  connections: number;
  faults: Record<ConnectionFault['kind'], number>;
  /** Client bytes forwarded to the server. */
  bytesUp: number;
  /** Server bytes forwarded to the client. */
  bytesDown: number;
}

const REASONS: Record<number, string> = {
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/**
 * A TCP proxy on 127.0.0.1 that is hostile on purpose: per connection it drops, resets in the
 * middle of a request or an answer, stalls, slows down, or answers 5xx/429 itself, as `plan`
 * decides from the connection's number. Tests point a client at `url` and the proxy at a
 * server; `setUpstream` moves it to another port when the server restarts.
 */
export class ChaosProxy {
  readonly stats: ProxyStats = {
    connections: 0,
    faults: { pass: 0, drop: 0, reset_request: 0, reset_response: 0, stall: 0, status: 0 },
    bytesUp: 0,
    bytesDown: 0,
  };
  /** Sees every piece of client bytes forwarded upstream, with the running total. */
  onUpstream: ((piece: Buffer, total: number) => void) | undefined;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #upstreamPort: number;
  #plan: (index: number) => ConnectionPlan;

  private constructor(
    server: Server,
    upstreamPort: number,
    plan: (index: number) => ConnectionPlan,
  ) {
    this.#server = server;
    this.#upstreamPort = upstreamPort;
    this.#plan = plan;
  }

  static async start(
    upstreamPort: number,
    plan: (index: number) => ConnectionPlan = () => ({ fault: { kind: 'pass' } }),
  ): Promise<ChaosProxy> {
    const server = createServer();
    const proxy = new ChaosProxy(server, upstreamPort, plan);
    server.on('connection', (socket) => proxy.#accept(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  setUpstream(port: number): void {
    this.#upstreamPort = port;
  }

  setPlan(plan: (index: number) => ConnectionPlan): void {
    this.#plan = plan;
  }

  /** Cuts every open connection, as a network outage would. */
  cutAll(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => {});
  }

  #accept(client: Socket): void {
    this.#track(client);
    const index = this.stats.connections++;
    const plan = this.#plan(index);
    const { fault } = plan;
    this.stats.faults[fault.kind] += 1;

    if (fault.kind === 'drop') {
      client.destroy();
      return;
    }
    if (fault.kind === 'status') {
      answerStatus(client, fault.status, fault.retryAfterSeconds);
      return;
    }

    const upstream = connect(this.#upstreamPort, '127.0.0.1');
    this.#track(upstream);
    let up = 0;
    let down = 0;
    let stalled = false;
    const kill = (): void => {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    };
    // A stalled client is left hanging on purpose: only its own timeout may end it.
    upstream.on('close', () => {
      if (!stalled) client.destroy();
    });
    client.on('close', () => upstream.destroy());

    forward(
      client,
      upstream,
      plan,
      (piece) => {
        const limit =
          fault.kind === 'reset_request' || fault.kind === 'stall' ? fault.afterBytes : Infinity;
        const room = Math.max(0, limit - up);
        const sent = piece.subarray(0, room);
        up += sent.length;
        this.stats.bytesUp += sent.length;
        if (sent.length > 0) this.onUpstream?.(sent, this.stats.bytesUp);
        if (up < limit) return { send: sent, next: 'go' };
        if (fault.kind === 'stall') {
          stalled = true;
          upstream.destroy();
          return { send: sent, next: 'stop' };
        }
        return { send: sent, next: 'kill' };
      },
      kill,
    );

    forward(
      upstream,
      client,
      plan,
      (piece) => {
        const limit = fault.kind === 'reset_response' ? fault.afterBytes : Infinity;
        const sent = piece.subarray(0, Math.max(0, limit - down));
        down += sent.length;
        this.stats.bytesDown += sent.length;
        return { send: sent, next: down < limit ? 'go' : 'kill' };
      },
      kill,
    );
  }
}

type Step = { send: Buffer; next: 'go' | 'kill' | 'stop' };

/** Moves bytes one way, piece by piece, with the plan's latency and bandwidth applied. */
function forward(
  from: Socket,
  to: Socket,
  plan: ConnectionPlan,
  decide: (piece: Buffer) => Step,
  kill: () => void,
): void {
  const bucket =
    plan.bytesPerSecond === undefined
      ? undefined
      : new RateLimiter({ bytesPerSecond: plan.bytesPerSecond, burstBytes: 16 * 1024 });
  let chain = Promise.resolve();
  let stopped = false;

  from.on('data', (piece: Buffer) => {
    from.pause();
    chain = chain
      .then(async () => {
        if (stopped || to.destroyed) return;
        const step = decide(piece);
        if (plan.latencyMs !== undefined) await delay(plan.latencyMs);
        if (bucket !== undefined) await bucket.take(step.send.length);
        if (step.send.length > 0 && !to.destroyed && !to.write(step.send)) {
          await Promise.race([once(to, 'drain'), once(to, 'close')]);
        }
        if (step.next === 'kill') {
          stopped = true;
          kill();
          return;
        }
        if (step.next === 'stop') {
          stopped = true;
          return;
        }
        from.resume();
      })
      .catch(() => kill());
  });
  from.on('end', () => {
    chain = chain.then(() => {
      if (!stopped && !to.destroyed) to.end();
    });
  });
}

/** Reads up to the end of the request head, then answers with `status` and closes. */
function answerStatus(client: Socket, status: number, retryAfter: number | undefined): void {
  let head = '';
  const onData = (piece: Buffer): void => {
    head += piece.toString('latin1');
    if (!head.includes('\r\n\r\n')) return;
    client.off('data', onData);
    const body = JSON.stringify({
      error: { code: 'proxy', message: 'injected by the test proxy' },
    });
    const lines = [
      `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}`,
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      'Connection: close',
      ...(retryAfter === undefined ? [] : [`Retry-After: ${retryAfter}`]),
    ];
    client.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
    // The rest of a request body is read and dropped so the client is not left blocked on it.
    client.resume();
  };
  client.on('data', onData);
}

/** A small seeded generator, so that a hostile run can be replayed. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
