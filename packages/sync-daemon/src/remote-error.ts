import { TidemarkError } from '@tidemark/core';

export type RemoteErrorCode =
  | 'unreachable'
  | 'auth_failed'
  | 'server_error'
  | 'rejected'
  | 'protocol';

export interface RemoteErrorDetails {
  /** The HTTP status of the answer, when there was one. */
  status?: number;
  /** How long the server asked us to wait before trying again (Retry-After). */
  retryAfterMs?: number;
  /** The `error.code` of the server's answer, such as `digest_mismatch`. */
  serverCode?: string;
  hint?: string;
  cause?: unknown;
}

const RETRYABLE: Record<RemoteErrorCode, boolean> = {
  unreachable: true,
  auth_failed: false,
  server_error: true,
  rejected: false,
  // A proxy or captive portal answering in the server's place goes away on its own.
  protocol: true,
};

const HINTS: Record<RemoteErrorCode, string> = {
  unreachable:
    'nothing was lost; run `tidemark sync` again later, or keep `tidemark daemon start` ' +
    'running to retry by itself',
  auth_failed:
    'Set TIDEMARK_API_TOKEN to a token this server accepts and that covers the project; ' +
    'a running daemon keeps its token until it is restarted.',
  server_error:
    'The server failed; nothing was lost. Run `tidemark sync` again later, or keep ' +
    "`tidemark daemon start` running to retry by itself; if it persists, check the server's logs.",
  rejected: 'The server refused this request; nothing local changed. See the server code for why.',
  protocol:
    'The answer did not come from a tidemark server speaking protocol 1; check the remote URL ' +
    '(a proxy or captive portal may have answered). Nothing local changed.',
};

/**
 * A call to a remote failed. The message names the endpoint (`POST /api/v1/ops`) and the
 * status, never a request body, a response body or the token. `retryable` says whether the
 * same call may succeed later without anyone changing anything.
 */
export class RemoteError extends TidemarkError {
  declare readonly code: RemoteErrorCode;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  readonly serverCode: string | undefined;

  constructor(code: RemoteErrorCode, message: string, details: RemoteErrorDetails = {}) {
    super(code, message, {
      hint: details.hint ?? HINTS[code],
      retryable: RETRYABLE[code],
      cause: details.cause,
    });
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
    this.serverCode = details.serverCode;
  }

  static unreachable(endpoint: string, why: string, cause?: unknown): RemoteError {
    return new RemoteError('unreachable', `${endpoint}: the server could not be reached (${why})`, {
      cause,
    });
  }

  static authFailed(endpoint: string, status: 401 | 403 | number): RemoteError {
    const what =
      status === 403 ? 'the token has no access to this project' : 'the token was refused';
    return new RemoteError('auth_failed', `${endpoint} answered ${status}: ${what}`, { status });
  }

  /**
   * The token may not touch `project`: a per-op `forbidden` answer or a 403 on an object call.
   * It is the token's problem, not the run's, so the pass ends here instead of quarantining.
   */
  static forbidden(endpoint: string, project: string): RemoteError {
    return new RemoteError(
      'auth_failed',
      `${endpoint}: the token has no access to project ${project}`,
      {
        status: 403,
        hint:
          `The token lacks access to project ${project}; nothing was quarantined or skipped. ` +
          `Use a token with access to ${project}, or sync another project with \`--only <project>\`.`,
      },
    );
  }

  static serverError(endpoint: string, status: number, retryAfterMs?: number): RemoteError {
    const wait = retryAfterMs === undefined ? '' : `, retry after ${retryAfterMs} ms`;
    return new RemoteError('server_error', `${endpoint} answered ${status}${wait}`, {
      status,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }

  static rejected(endpoint: string, status: number, serverCode?: string): RemoteError {
    const code = serverCode === undefined ? '' : ` (${serverCode})`;
    return new RemoteError('rejected', `${endpoint} answered ${status}${code}`, {
      status,
      ...(serverCode === undefined ? {} : { serverCode }),
    });
  }

  static protocol(endpoint: string, what: string): RemoteError {
    return new RemoteError('protocol', `${endpoint}: ${what}`);
  }

  override toJSON(): ReturnType<TidemarkError['toJSON']> & {
    status?: number;
    retryAfterMs?: number;
    serverCode?: string;
  } {
    return {
      ...super.toJSON(),
      ...(this.status === undefined ? {} : { status: this.status }),
      ...(this.retryAfterMs === undefined ? {} : { retryAfterMs: this.retryAfterMs }),
      ...(this.serverCode === undefined ? {} : { serverCode: this.serverCode }),
    };
  }
}

export function isRemoteError(error: unknown): error is RemoteError {
  return error instanceof RemoteError;
}

/**
 * Reads a Retry-After header: delay seconds or an HTTP date. Answers undefined when the header
 * is absent or unreadable, so a bad header never turns into a zero wait.
 */
export function parseRetryAfter(header: string | undefined, now: number): number | undefined {
  if (header === undefined || header.trim() === '') return undefined;

  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;

  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
