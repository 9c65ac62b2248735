import type {
  ChunkRefusal,
  Digest,
  OpsRequest,
  OpsResponse,
  RunDetail,
  RunSummary,
  SeriesPoint,
  SeriesType,
} from '@tidemark/core';

/** `GET /api/v1/health`: answered without a token. */
export interface HealthAnswer {
  ok: true;
  protocol: number;
}

/** `GET /api/v1/whoami`: the token's id and the projects it may write (`['*']` for all). */
export interface WhoAmI {
  token: string;
  projects: string[];
}

/** One series of a run on the server, points in step order, floats decoded exactly. */
export interface RemoteSeries {
  path: string;
  type: SeriesType;
  points: SeriesPoint[];
}

export interface ListRunsOptions {
  project?: string;
  limit?: number;
}

export interface PutChunkOptions {
  /**
   * Called once the whole body has left for the server. From then on a crash of this process
   * no longer costs the chunk: the kernel still delivers what it was handed.
   */
  onBodySent?: () => void;
}

/** The remote calls a client may make; `docs/protocol.md` is the contract, one method per row. */
export type RemoteMethod =
  | 'health'
  | 'whoami'
  | 'sendOps'
  | 'missingChunks'
  | 'putChunk'
  | 'getChunk'
  | 'listRuns'
  | 'getRun'
  | 'getSeries';

/**
 * A tidemark server as the sync pass and the CLI see it. Every method either resolves with a
 * checked answer or rejects with a `RemoteError`; none retries a call that writes, because the
 * sync pass owns retries (it forgets what it believed about the remote and asks again).
 * `HttpRemoteClient` speaks HTTP to a real server; `FakeRemote` keeps the same rules in memory.
 */
export interface RemoteClient {
  /** The server's base URL in normal form; the local store keys its sync cursor by it. */
  readonly url: string;

  /** Whether the server is up and which protocol it speaks. Needs no token. */
  health(): Promise<HealthAnswer>;

  whoami(): Promise<WhoAmI>;

  /**
   * Replays operations. The server applies each op id at most once and answers one result per
   * op, in order; a rejected op does not stop the others (protocol: Exactly once, Rejected).
   */
  sendOps(request: OpsRequest): Promise<OpsResponse>;

  /** Which of `digests` the project has not uploaded yet. Never reveals other projects' content. */
  missingChunks(project: string, digests: readonly Digest[]): Promise<Digest[]>;

  /** Uploads one chunk or manifest; the server re-hashes it and refuses a mismatch. */
  putChunk(
    project: string,
    digest: Digest,
    bytes: Uint8Array,
    options?: PutChunkOptions,
  ): Promise<{ stored: boolean }>;

  /**
   * Uploads several chunks or manifests in one request: `body` holds them back to back, in the
   * order of `digests`. The server checks and keeps each as it arrives whole, so a cut request
   * costs only the object it was cut in. Answers those refused; the project holds every other
   * one afterwards. Optional: without it, objects go one by one through `putChunk`.
   */
  putChunks?(
    project: string,
    digests: readonly Digest[],
    body: Uint8Array,
    options?: PutChunkOptions,
  ): Promise<ChunkRefusal[]>;

  /**
   * Makes the uploaded chunks among `digests` durable on the server and answers those the
   * project does not hold. Optional: a server applies no op before its chunks are durable, so
   * a client without it is only slower (protocol: `POST /api/v1/chunks/commit`).
   */
  commitChunks?(project: string, digests: readonly Digest[]): Promise<Digest[]>;

  /** Downloads one object the project holds; the bytes are checked against `digest`. */
  getChunk(project: string, digest: Digest): Promise<Buffer>;

  /** Runs on the server, newest first. */
  listRuns(options?: ListRunsOptions): Promise<RunSummary[]>;

  /** Everything the server holds about one run except its points, decoded like core's `getRun`. */
  getRun(runId: string): Promise<RunDetail>;

  getSeries(runId: string, path: string): Promise<RemoteSeries>;
}
