import {
  type Digest,
  getHasher,
  isDigest,
  type Op,
  type OpId,
  type OpsRequest,
  type OpsResponse,
  PROTOCOL_VERSION,
  type RunDetail,
  type RunSummary,
} from '@tidemark/core';
import { FakeServerState, type OpRefusal } from './fake-server-state.js';
import type {
  HealthAnswer,
  ListRunsOptions,
  RemoteClient,
  RemoteMethod,
  RemoteSeries,
  WhoAmI,
} from './remote-client.js';
import { RemoteError } from './remote-error.js';
import { normalizeRemoteUrl } from './remote-url.js';
import { decodeRunDetail, decodeSeries } from './wire-read.js';

export interface FakeRemoteOptions {
  /** The URL the fake claims to be; it keys the sync cursor (default `http://127.0.0.1/fake`). */
  url?: string;
}

export interface FailureOptions {
  /** Only calls of this method fail (default: any method). */
  method?: RemoteMethod;
  /** Let this many matching calls through before failing (default 0). */
  after?: number;
  /**
   * Fail after the call did its work, as when the server committed but the answer was lost
   * on the way back (default false: fail before changing anything).
   */
  afterApplying?: boolean;
}

interface FailurePlan {
  method: RemoteMethod | undefined;
  skip: number;
  times: number;
  error: RemoteError;
  afterApplying: boolean;
}

const MAX_OPS = 10_000;
const MAX_OPS_BYTES = 64 * 1024 * 1024;
const MAX_CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * A tidemark server in memory for tests. It keeps the protocol's rules (each op id applied
 * once, last writer wins, presence per project, `missing_chunks` for ops whose objects are
 * absent, re-hashing of every chunk) and adds hooks to make it fail, lie or refuse, plus
 * counters of what it received. Requests pass through JSON, as on the wire.
 */
export class FakeRemote implements RemoteClient {
  readonly url: string;
  readonly state = new FakeServerState();
  /** Calls made, by method, failed ones included. */
  readonly calls: Record<RemoteMethod, number> = {
    health: 0,
    whoami: 0,
    sendOps: 0,
    missingChunks: 0,
    putChunk: 0,
    getChunk: 0,
    listRuns: 0,
    getRun: 0,
    getSeries: 0,
  };
  /** Every op id received by `sendOps`, in arrival order, repeats included. */
  readonly opsReceived: OpId[] = [];
  /** Every digest received by `putChunk`, in arrival order, repeats included. */
  readonly chunksReceived: Digest[] = [];
  bytesReceived = 0;
  readonly #applied = new Set<OpId>();
  readonly #failures: FailurePlan[] = [];
  #pretendPresent = 0;
  #refuse: ((op: Op) => OpRefusal | undefined) | undefined;

  constructor(options: FakeRemoteOptions = {}) {
    this.url = normalizeRemoteUrl(options.url ?? 'http://127.0.0.1/fake');
  }

  /**
   * Makes the next `times` matching calls fail with `error`. Plans queue in the order they are
   * made: a call is decided by the first plan that matches it and is not used up.
   */
  failNext(times: number, error: RemoteError, options: FailureOptions = {}): void {
    this.#failures.push({
      method: options.method,
      skip: options.after ?? 0,
      times,
      error,
      afterApplying: options.afterApplying ?? false,
    });
  }

  /** Makes the next `times` `missingChunks` calls claim nothing is missing, as a stale server would. */
  pretendPresentNext(times: number): void {
    this.#pretendPresent += times;
  }

  /** Refuses every op for which `refuse` answers a code, as a server's validation would. */
  refuseOps(refuse: (op: Op) => OpRefusal | undefined): void {
    this.#refuse = refuse;
  }

  /** How many ops the fake has applied (duplicates never count twice). */
  get appliedCount(): number {
    return this.#applied.size;
  }

  totalCalls(): number {
    return Object.values(this.calls).reduce((sum, n) => sum + n, 0);
  }

  async health(): Promise<HealthAnswer> {
    return this.#run('health', () => ({ ok: true, protocol: PROTOCOL_VERSION }));
  }

  async whoami(): Promise<WhoAmI> {
    return this.#run('whoami', () => ({ token: 'fake', projects: ['*'] }));
  }

  async sendOps(request: OpsRequest): Promise<OpsResponse> {
    const wire = JSON.stringify(request);
    return this.#run('sendOps', () => {
      if (request.ops.length > MAX_OPS || Buffer.byteLength(wire) > MAX_OPS_BYTES) {
        throw RemoteError.rejected('POST /api/v1/ops', 413, 'too_large');
      }

      const received = JSON.parse(wire) as OpsRequest;
      const results: OpsResponse['results'] = [];
      for (const op of received.ops) {
        this.opsReceived.push(op.id);
        if (this.#applied.has(op.id)) {
          results.push({ id: op.id, status: 'duplicate' });
          continue;
        }
        const refusal = this.#refuse?.(op) ?? this.state.check(op);
        if (refusal !== undefined) {
          results.push({ id: op.id, status: 'rejected', ...refusal });
          continue;
        }
        this.state.apply(op);
        this.#applied.add(op.id);
        results.push({ id: op.id, status: 'applied' });
      }
      return { results };
    });
  }

  async missingChunks(project: string, digests: readonly Digest[]): Promise<Digest[]> {
    return this.#run('missingChunks', () => {
      if (this.#pretendPresent > 0) {
        this.#pretendPresent -= 1;
        return [];
      }
      return [...new Set(digests)].filter((digest) => !this.state.hasChunk(project, digest));
    });
  }

  async putChunk(project: string, digest: Digest, bytes: Uint8Array): Promise<{ stored: boolean }> {
    const endpoint = `PUT /api/v1/chunks/${digest}`;
    const hasher = await getHasher();
    return this.#run('putChunk', () => {
      if (!isDigest(digest)) throw RemoteError.rejected(endpoint, 400, 'invalid_digest');
      if (bytes.length > MAX_CHUNK_BYTES) throw RemoteError.rejected(endpoint, 413, 'too_large');

      this.chunksReceived.push(digest);
      this.bytesReceived += bytes.length;
      if (hasher.digest(bytes) !== digest)
        throw RemoteError.rejected(endpoint, 400, 'digest_mismatch');
      return { stored: this.state.putChunk(project, digest, Buffer.from(bytes)) };
    });
  }

  async getChunk(project: string, digest: Digest): Promise<Buffer> {
    return this.#run('getChunk', () => {
      const bytes = this.state.chunks.get(project)?.get(digest);
      if (bytes === undefined)
        throw RemoteError.rejected(`GET /api/v1/chunks/${digest}`, 404, 'not_found');
      return Buffer.from(bytes);
    });
  }

  async listRuns(options: ListRunsOptions = {}): Promise<RunSummary[]> {
    return this.#run('listRuns', () => this.state.summaries(options.project, options.limit));
  }

  async getRun(runId: string): Promise<RunDetail> {
    const endpoint = `GET /api/v1/runs/${runId}`;
    return this.#run('getRun', () => {
      const detail = this.state.detail(runId);
      if (detail === undefined) throw RemoteError.rejected(endpoint, 404, 'run_not_found');
      return decodeRunDetail(JSON.parse(JSON.stringify(detail)), endpoint);
    });
  }

  async getSeries(runId: string, path: string): Promise<RemoteSeries> {
    const endpoint = `GET /api/v1/runs/${runId}/series`;
    return this.#run('getSeries', () => {
      const series = this.state.series(runId, path);
      if (series === undefined) throw RemoteError.rejected(endpoint, 404, 'series_not_found');
      return decodeSeries(JSON.parse(JSON.stringify(series)), endpoint);
    });
  }

  /** Counts the call, then fails it, does it, or does it and then fails, as the plans say. */
  #run<T>(method: RemoteMethod, work: () => T): T {
    this.calls[method] += 1;
    const plan = this.#takeFailure(method);
    if (plan !== undefined && !plan.afterApplying) throw plan.error;
    const result = work();
    if (plan !== undefined) throw plan.error;
    return result;
  }

  #takeFailure(method: RemoteMethod): FailurePlan | undefined {
    for (const plan of this.#failures) {
      if (plan.times <= 0 || (plan.method !== undefined && plan.method !== method)) continue;
      if (plan.skip > 0) {
        plan.skip -= 1;
        return undefined;
      }
      plan.times -= 1;
      return plan;
    }
    return undefined;
  }
}
