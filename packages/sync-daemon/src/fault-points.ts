import type { Digest, OpsRequest, OpsResponse, RunDetail, RunSummary } from '@tidemark/core';
import { invalidConfig } from './daemon-error.js';
import type {
  HealthAnswer,
  ListRunsOptions,
  PutChunkOptions,
  RemoteClient,
  RemoteSeries,
  WhoAmI,
} from './remote-client.js';

/**
 * Places in a pass where a test may make the daemon die:
 * - `before_ops`: an ops request is ready and not yet sent;
 * - `after_ops`: the server answered (it applied the batch) and the cursor has not moved;
 * - `before_chunk` / `after_chunk`: around one object upload.
 */
export type FaultPoint = 'before_ops' | 'after_ops' | 'before_chunk' | 'after_chunk';

/** Fires at the `nth` time `point` is reached (1 = the first). */
export interface Fault {
  point: FaultPoint;
  nth: number;
}

const POINTS = new Set<string>(['before_ops', 'after_ops', 'before_chunk', 'after_chunk']);

/**
 * Reads `TIDEMARK_FAULT`, a test-only hook: `after_ops:2` or `before_chunk:1,after_ops:3`.
 * Unset answers no faults; anything unreadable is refused, so a typo cannot make a crash test
 * pass by never crashing.
 */
export function parseFaults(text: string | undefined): Fault[] {
  if (text === undefined || text.trim() === '') return [];
  return text.split(',').map((part) => {
    const [point, nth] = part.trim().split(':');
    const count = Number(nth ?? '1');
    if (point === undefined || !POINTS.has(point) || !Number.isSafeInteger(count) || count < 1) {
      throw invalidConfig(
        'TIDEMARK_FAULT',
        `'${part}' is not a fault point`,
        `Write point:n with point one of ${[...POINTS].join(', ')}; it is meant for tests only.`,
      );
    }
    return { point: point as FaultPoint, nth: count };
  });
}

/**
 * Wraps a remote so that `fire` runs at the planned fault points; in the daemon `fire` sends
 * SIGKILL to its own process, which is a real kill -9 at an exact step of the pass.
 */
export class FaultyRemote implements RemoteClient {
  readonly url: string;
  readonly commitChunks?: (project: string, digests: readonly Digest[]) => Promise<Digest[]>;
  readonly #inner: RemoteClient;
  readonly #faults: Fault[];
  readonly #fire: (fault: Fault) => void;
  readonly #seen = new Map<FaultPoint, number>();

  constructor(inner: RemoteClient, faults: Fault[], fire: (fault: Fault) => void) {
    this.url = inner.url;
    this.#inner = inner;
    this.#faults = faults;
    this.#fire = fire;
    const commit = inner.commitChunks?.bind(inner);
    if (commit !== undefined) this.commitChunks = commit;
  }

  health(): Promise<HealthAnswer> {
    return this.#inner.health();
  }

  whoami(): Promise<WhoAmI> {
    return this.#inner.whoami();
  }

  async sendOps(request: OpsRequest): Promise<OpsResponse> {
    this.#reach('before_ops');
    const answer = await this.#inner.sendOps(request);
    this.#reach('after_ops');
    return answer;
  }

  missingChunks(project: string, digests: readonly Digest[]): Promise<Digest[]> {
    return this.#inner.missingChunks(project, digests);
  }

  async putChunk(
    project: string,
    digest: Digest,
    bytes: Uint8Array,
    options?: PutChunkOptions,
  ): Promise<{ stored: boolean }> {
    this.#reach('before_chunk');
    const answer = await this.#inner.putChunk(project, digest, bytes, options);
    this.#reach('after_chunk');
    return answer;
  }

  getChunk(project: string, digest: Digest): Promise<Buffer> {
    return this.#inner.getChunk(project, digest);
  }

  listRuns(options?: ListRunsOptions): Promise<RunSummary[]> {
    return this.#inner.listRuns(options);
  }

  getRun(runId: string): Promise<RunDetail> {
    return this.#inner.getRun(runId);
  }

  getSeries(runId: string, path: string): Promise<RemoteSeries> {
    return this.#inner.getSeries(runId, path);
  }

  #reach(point: FaultPoint): void {
    const count = (this.#seen.get(point) ?? 0) + 1;
    this.#seen.set(point, count);
    const fault = this.#faults.find((f) => f.point === point && f.nth === count);
    if (fault !== undefined) this.#fire(fault);
  }
}
