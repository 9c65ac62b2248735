import { Readable } from 'node:stream';
import {
  type ChunkRefusal,
  type Digest,
  getHasher,
  type Logger,
  type OpsRequest,
  type OpsResponse,
  type RunDetail,
  type RunSummary,
  silentLogger,
  ValidationError,
} from '@tidemark/core';
import got, { type Got, HTTPError, RequestError, TimeoutError } from 'got';
import { PACE_SLICE, type RateLimiter } from './rate-limiter.js';
import type {
  HealthAnswer,
  ListRunsOptions,
  PutChunkOptions,
  RemoteClient,
  RemoteSeries,
  WhoAmI,
} from './remote-client.js';
import { parseRetryAfter, RemoteError } from './remote-error.js';
import { normalizeRemoteUrl } from './remote-url.js';
import {
  checkHealth,
  checkMissing,
  checkOpsResponse,
  checkRefusals,
  checkWhoAmI,
  isObject,
} from './wire-answers.js';
import { decodeRunDetail, decodeRunList, decodeSeries } from './wire-read.js';

export interface HttpRemoteTimeouts {
  /** Longest wait for the TCP (and TLS) connection (default 10 s). */
  connectMs?: number;
  /** Longest wait for the first byte of the answer once the request is sent (default 60 s). */
  responseMs?: number;
  /** Longest one try of a call may take, upload and download included (default 300 s). */
  requestMs?: number;
}

export interface HttpRemoteOptions {
  /** The server's base URL, such as `http://127.0.0.1:8080`. */
  url: string;
  /** Sent as `Authorization: Bearer <token>`; never written to an error or a log. */
  token?: string;
  timeouts?: HttpRemoteTimeouts;
  /** How often a failed GET is tried again within one call (default 2). Writes never are. */
  getRetries?: number;
  /** Longest wait between two tries of a GET (default 5,000 ms). */
  maxRetryDelayMs?: number;
  /** Receives one debug event per call; silent by default. */
  logger?: Logger;
  /** Milliseconds since the epoch, for reading Retry-After dates; injectable for tests. */
  clock?: () => number;
  /** Paces every request body (ops and uploads) through this bucket (`--max-rate`). */
  rateLimiter?: RateLimiter;
}

const KNOWN_OPTIONS = new Set([
  'url',
  'token',
  'timeouts',
  'getRetries',
  'maxRetryDelayMs',
  'logger',
  'clock',
  'rateLimiter',
]);

const TIMEOUT_NAMES = new Set(['connectMs', 'responseMs', 'requestMs']);
const RETRY_STATUSES = [408, 429, 500, 502, 503, 504];
const SERVER_CODE = /^[a-z][a-z0-9_]{0,63}$/;

type Method = 'GET' | 'POST' | 'PUT';

interface CallOptions {
  searchParams?: Record<string, string | number>;
  json?: unknown;
  bytes?: Uint8Array;
  /** `GET /api/v1/health` is the one call made without the token. */
  anonymous?: boolean;
  /** Called once the whole request body has been handed to the socket. */
  onBodySent?: () => void;
}

/**
 * The remote client over HTTP (got). Every call has connect, first-byte and overall timeouts.
 * GETs are retried a few times inside the call; POST and PUT never are, because the sync pass
 * decides what to send again after it has asked the server what it holds.
 *
 * @example
 * const remote = new HttpRemoteClient({ url: 'http://127.0.0.1:8080', token });
 * const report = await syncOnce(store, remote);
 */
export class HttpRemoteClient implements RemoteClient {
  readonly url: string;
  readonly #basePath: string;
  readonly #token: string | undefined;
  readonly #got: Got;
  readonly #logger: Logger;
  readonly #clock: () => number;
  readonly #limiter: RateLimiter | undefined;

  constructor(options: HttpRemoteOptions) {
    validateOptions(options);
    this.url = normalizeRemoteUrl(options.url);
    this.#basePath = new URL(this.url).pathname.replace(/\/$/, '');
    this.#token = options.token;
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? Date.now;
    this.#limiter = options.rateLimiter;

    const timeouts = options.timeouts ?? {};
    const connect = timeouts.connectMs ?? 10_000;
    const maxDelay = options.maxRetryDelayMs ?? 5_000;
    this.#got = got.extend({
      prefixUrl: `${this.url}/`,
      timeout: {
        connect,
        secureConnect: connect,
        response: timeouts.responseMs ?? 60_000,
        request: timeouts.requestMs ?? 300_000,
      },
      retry: {
        limit: options.getRetries ?? 2,
        methods: ['GET'],
        statusCodes: RETRY_STATUSES,
        calculateDelay: ({ computedValue }) =>
          computedValue === 0 ? 0 : Math.min(computedValue, maxDelay),
      },
      // A redirect could carry the token to another host; the user should point at the target.
      followRedirect: false,
      throwHttpErrors: true,
      headers: { 'user-agent': 'tidemark-sync/1', accept: 'application/json' },
    });
  }

  async health(): Promise<HealthAnswer> {
    const endpoint = this.#endpoint('GET', 'api/v1/health');
    return checkHealth(
      parseJson(await this.#call('GET', 'api/v1/health', { anonymous: true }), endpoint),
      endpoint,
    );
  }

  async whoami(): Promise<WhoAmI> {
    const endpoint = this.#endpoint('GET', 'api/v1/whoami');
    return checkWhoAmI(parseJson(await this.#call('GET', 'api/v1/whoami'), endpoint), endpoint);
  }

  async sendOps(request: OpsRequest): Promise<OpsResponse> {
    const endpoint = this.#endpoint('POST', 'api/v1/ops');
    const body = await this.#call('POST', 'api/v1/ops', { json: request });
    return checkOpsResponse(request, parseJson(body, endpoint), endpoint);
  }

  async missingChunks(project: string, digests: readonly Digest[]): Promise<Digest[]> {
    if (digests.length === 0) return [];
    const endpoint = this.#endpoint('POST', 'api/v1/chunks/missing');
    const body = await this.#call('POST', 'api/v1/chunks/missing', { json: { project, digests } });
    return checkMissing(digests, parseJson(body, endpoint), endpoint);
  }

  async putChunk(
    project: string,
    digest: Digest,
    bytes: Uint8Array,
    options: PutChunkOptions = {},
  ): Promise<{ stored: boolean }> {
    const path = `api/v1/chunks/${encodeURIComponent(digest)}`;
    const { status, body } = await this.#send('PUT', path, {
      searchParams: { project },
      bytes,
      ...(options.onBodySent === undefined ? {} : { onBodySent: options.onBodySent }),
    });
    const answer = body.length === 0 ? undefined : parseJson(body, this.#endpoint('PUT', path));
    if (isObject(answer) && typeof answer.stored === 'boolean') return { stored: answer.stored };
    return { stored: status === 201 };
  }

  async putChunks(
    project: string,
    digests: readonly Digest[],
    body: Uint8Array,
    options: PutChunkOptions = {},
  ): Promise<ChunkRefusal[]> {
    if (digests.length === 0) return [];
    const path = 'api/v1/chunks/batch';
    const answer = await this.#call('POST', path, {
      searchParams: { project, digests: digests.join(',') },
      bytes: body,
      ...(options.onBodySent === undefined ? {} : { onBodySent: options.onBodySent }),
    });
    const endpoint = this.#endpoint('POST', path);
    return checkRefusals(digests, parseJson(answer, endpoint), endpoint);
  }

  async commitChunks(project: string, digests: readonly Digest[]): Promise<Digest[]> {
    if (digests.length === 0) return [];
    const endpoint = this.#endpoint('POST', 'api/v1/chunks/commit');
    const body = await this.#call('POST', 'api/v1/chunks/commit', { json: { project, digests } });
    return checkMissing(digests, parseJson(body, endpoint), endpoint);
  }

  async getChunk(project: string, digest: Digest): Promise<Buffer> {
    const path = `api/v1/chunks/${encodeURIComponent(digest)}`;
    const bytes = await this.#call('GET', path, { searchParams: { project } });

    // Invariant 4: bytes are checked against their digest wherever they are read.
    if ((await getHasher()).digest(bytes) !== digest) {
      throw RemoteError.protocol(this.#endpoint('GET', path), `object ${digest} arrived damaged`);
    }
    return bytes;
  }

  async listRuns(options: ListRunsOptions = {}): Promise<RunSummary[]> {
    const searchParams: Record<string, string | number> = {};
    if (options.project !== undefined) searchParams.project = options.project;
    if (options.limit !== undefined) searchParams.limit = options.limit;
    const endpoint = this.#endpoint('GET', 'api/v1/runs');
    return decodeRunList(
      parseJson(await this.#call('GET', 'api/v1/runs', { searchParams }), endpoint),
      endpoint,
    );
  }

  async getRun(runId: string): Promise<RunDetail> {
    const path = `api/v1/runs/${encodeURIComponent(runId)}`;
    const endpoint = this.#endpoint('GET', path);
    return decodeRunDetail(parseJson(await this.#call('GET', path), endpoint), endpoint);
  }

  async getSeries(runId: string, seriesPath: string): Promise<RemoteSeries> {
    const path = `api/v1/runs/${encodeURIComponent(runId)}/series`;
    const endpoint = this.#endpoint('GET', path);
    const body = await this.#call('GET', path, { searchParams: { path: seriesPath } });
    return decodeSeries(parseJson(body, endpoint), endpoint);
  }

  async #call(method: Method, path: string, options: CallOptions = {}): Promise<Buffer> {
    return (await this.#send(method, path, options)).body;
  }

  /** Makes one call and turns every way it can fail into a `RemoteError`. */
  async #send(
    method: Method,
    path: string,
    options: CallOptions,
  ): Promise<{ status: number; body: Buffer }> {
    const endpoint = this.#endpoint(method, path);
    const started = this.#clock();
    const headers: Record<string, string> = {};
    if (options.anonymous !== true && this.#token !== undefined) {
      headers.authorization = `Bearer ${this.#token}`;
    }
    if (options.bytes !== undefined) headers['content-type'] = 'application/octet-stream';
    const payload = this.#payload(options, headers);

    let status: number;
    let body: Buffer;
    try {
      const pending = this.#got(path, {
        method,
        headers,
        responseType: 'buffer',
        ...(options.searchParams === undefined ? {} : { searchParams: options.searchParams }),
        ...payload,
      });
      const { onBodySent } = options;
      if (onBodySent !== undefined) {
        pending.on('uploadProgress', (progress) => {
          if (progress.percent === 1) onBodySent();
        });
      }
      const response = await pending;
      status = response.statusCode;
      body = response.body;
    } catch (error) {
      const mapped = this.#mapFailure(error, endpoint);
      this.#logger.debug('remote_call_failed', {
        endpoint,
        code: mapped.code,
        status: mapped.status,
      });
      throw mapped;
    }

    this.#logger.debug('remote_call', { endpoint, status, ms: this.#clock() - started });
    if (status < 200 || status > 299) {
      throw RemoteError.protocol(endpoint, `answered ${status}; redirects are not followed`);
    }
    return { status, body };
  }

  /**
   * The body options of a call. With a rate limit the body is fed to the socket in slices, each
   * after the bucket allows it, so the limit holds on the wire and not only per request.
   */
  #payload(
    options: CallOptions,
    headers: Record<string, string>,
  ): { json?: unknown; body?: Buffer | Readable } {
    if (this.#limiter === undefined) {
      if (options.json !== undefined) return { json: options.json };
      return options.bytes === undefined ? {} : { body: viewOf(options.bytes) };
    }

    let bytes: Buffer;
    if (options.json !== undefined) {
      bytes = Buffer.from(JSON.stringify(options.json), 'utf8');
      headers['content-type'] = 'application/json';
    } else if (options.bytes !== undefined) {
      bytes = viewOf(options.bytes);
    } else {
      return {};
    }
    headers['content-length'] = String(bytes.length);
    return { body: Readable.from(paced(bytes, this.#limiter), { objectMode: false }) };
  }

  /**
   * got's errors hold the request options, token included, so none is kept as a cause: the
   * RemoteError carries the endpoint, the status and the transport code only.
   */
  #mapFailure(error: unknown, endpoint: string): RemoteError {
    if (error instanceof HTTPError) {
      const status = error.response.statusCode;
      if (status === 401 || status === 403) return RemoteError.authFailed(endpoint, status);

      const retryAfter = parseRetryAfter(
        headerText(error.response.headers['retry-after']),
        this.#clock(),
      );
      if (status >= 500 || status === 408 || status === 429) {
        return RemoteError.serverError(endpoint, status, retryAfter);
      }
      return RemoteError.rejected(endpoint, status, serverCode(error.response.body));
    }

    if (error instanceof TimeoutError) {
      return RemoteError.unreachable(endpoint, `no answer within the ${error.event} timeout`);
    }
    if (error instanceof RequestError) {
      return RemoteError.unreachable(endpoint, error.code || 'network error');
    }
    return RemoteError.unreachable(
      endpoint,
      error instanceof Error ? error.name : 'unknown failure',
    );
  }

  #endpoint(method: Method, path: string): string {
    return `${method} ${this.#basePath}/${path}`;
  }
}

async function* paced(bytes: Buffer, limiter: RateLimiter): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += PACE_SLICE) {
    const slice = bytes.subarray(offset, offset + PACE_SLICE);
    await limiter.take(slice.length);
    yield slice;
  }
}

/** The bytes as a Buffer without copying them: a chunk can be megabytes. */
function viewOf(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function parseJson(body: Buffer, endpoint: string): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw RemoteError.protocol(endpoint, 'the answer is not JSON');
  }
}

/** The server's error code from a `{ error: { code } }` body, if it looks like one. */
function serverCode(body: unknown): string | undefined {
  if (!Buffer.isBuffer(body) || body.length === 0 || body.length > 64 * 1024) return undefined;
  try {
    const parsed = JSON.parse(body.toString('utf8')) as unknown;
    const code = isObject(parsed) && isObject(parsed.error) ? parsed.error.code : undefined;
    return typeof code === 'string' && SERVER_CODE.test(code) ? code : undefined;
  } catch {
    return undefined;
  }
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function validateOptions(options: HttpRemoteOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError('invalid_option', 'HttpRemoteClient takes an options object', {
      hint: "Pass { url: 'http://127.0.0.1:8080', token }.",
    });
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw new ValidationError('invalid_option', `HttpRemoteClient has no option '${key}'`, {
        hint: `Known options: ${[...KNOWN_OPTIONS].join(', ')}.`,
      });
    }
  }

  // The message never repeats the token: it names what is wrong with it only.
  if (
    options.token !== undefined &&
    (typeof options.token !== 'string' || !/^[\x21-\x7e]+$/.test(options.token))
  ) {
    throw new ValidationError(
      'invalid_token',
      'the API token must be printable ASCII without spaces',
      {
        hint: 'Check TIDEMARK_API_TOKEN for stray quotes, spaces or line breaks.',
      },
    );
  }

  for (const [name, value] of Object.entries(options.timeouts ?? {})) {
    if (
      !TIMEOUT_NAMES.has(name) ||
      typeof value !== 'number' ||
      !Number.isFinite(value) ||
      value <= 0
    ) {
      throw new ValidationError(
        'invalid_option',
        `timeouts.${name} must be a positive number of ms`,
        {
          hint: 'Known timeouts: connectMs, responseMs, requestMs.',
        },
      );
    }
  }
  for (const name of ['getRetries', 'maxRetryDelayMs'] as const) {
    const value = options[name];
    if (value !== undefined && (!Number.isInteger(value) || value < 0)) {
      throw new ValidationError('invalid_option', `${name} must be a whole number of at least 0`, {
        hint: `Leave ${name} out for the default.`,
      });
    }
  }
}
