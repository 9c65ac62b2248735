import {
  ArtifactError,
  isTidemarkError,
  NotFoundError,
  TidemarkError,
  ValidationError,
  type WireError,
} from '@tidemark/core';

/**
 * A request refused at the HTTP boundary: bad auth, a body too large, a malformed request.
 * It carries the status it answers with; every other error is mapped by `statusOf`.
 */
export class RequestError extends TidemarkError {
  readonly status: number;

  constructor(
    status: number,
    code: string,
    message: string,
    options: { hint?: string; retryable?: boolean; cause?: unknown } = {},
  ) {
    super(code, message, options);
    this.status = status;
  }
}

/** The HTTP status an error answers with. */
export function statusOf(error: unknown): number {
  if (error instanceof RequestError) return error.status;
  if (error instanceof ValidationError) return 400;
  if (error instanceof NotFoundError) return 404;
  if (error instanceof ArtifactError) {
    if (error.code === 'digest_mismatch' || error.code === 'bad_manifest') return 400;
    if (error.code === 'disk_full') return 507;
    // The project's copy is gone or was set aside as damaged: what the client must do is
    // upload it again, which the hint says, so it is not a server failure.
    if (error.code === 'chunk_corrupt' || error.code === 'chunk_missing') return 404;
  }
  return 500;
}

/**
 * The JSON body of an error answer. A server-side failure keeps its code (a client may retry
 * on `disk_full`) but not its message, which can name server paths (DESIGN invariant 9).
 */
export function errorBody(error: unknown, status: number): WireError {
  if (!isTidemarkError(error)) {
    return { error: { code: 'internal', message: 'the server failed to answer this request' } };
  }
  if (status >= 500) {
    return { error: { code: error.code, message: 'the server failed to answer this request' } };
  }
  return {
    error: {
      code: error.code,
      message: error.message,
      ...(error.hint === undefined ? {} : { hint: error.hint }),
    },
  };
}

export function unauthorized(message: string): RequestError {
  return new RequestError(401, 'unauthorized', message, {
    hint: "Send 'Authorization: Bearer <token>'; create a token with 'tidemark token create'.",
  });
}

export function forbiddenProject(project: string): RequestError {
  return new RequestError(403, 'forbidden', `this token has no access to project ${project}`, {
    hint: "Ask the server's operator for a token that includes this project.",
  });
}

export function badRequest(code: string, message: string, hint?: string): RequestError {
  return new RequestError(400, code, message, hint === undefined ? {} : { hint });
}
