import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { badRequest, RequestError } from './errors.js';

/** What a route handler answers; the server writes it, so handlers never touch the socket. */
export type Reply =
  | { status: number; json: unknown }
  | { status: number; bytes: Uint8Array; contentType: string }
  | {
      status: number;
      stream: AsyncIterable<Uint8Array>;
      size: number;
      contentType: string;
    };

/**
 * Reads a request body of at most `limit` bytes. A declared length over the limit is refused
 * before a byte is read; an undeclared one is counted as it streams. `onChunk` sees each piece
 * as it arrives (the chunk upload hashes while reading).
 */
export async function readBody(
  req: IncomingMessage,
  limit: number,
  onChunk?: (bytes: Buffer) => void,
): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);

  const pieces: Buffer[] = [];
  let total = 0;
  for await (const piece of req as AsyncIterable<Buffer>) {
    total += piece.length;
    if (total > limit) throw tooLarge(limit);
    onChunk?.(piece);
    pieces.push(piece);
  }
  return Buffer.concat(pieces, total);
}

/**
 * Reads a body into `target`, copying each piece as it arrives, and answers the part filled.
 * Answers undefined, without reading further, once the body turns out longer than `target`.
 */
export async function readBodyInto(
  req: IncomingMessage,
  target: Buffer,
  onChunk?: (bytes: Buffer) => void,
): Promise<Buffer | undefined> {
  let total = 0;
  for await (const piece of req as AsyncIterable<Buffer>) {
    if (total + piece.length > target.length) return undefined;
    onChunk?.(piece);
    total += piece.copy(target, total);
  }
  return target.subarray(0, total);
}

/** Reads and parses a JSON body; a body that is not JSON answers 400 `invalid_json`. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const body = await readBody(req, limit);
  if (body.length === 0) {
    throw badRequest('invalid_json', 'the request body is empty', 'Send a JSON object.');
  }
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw badRequest('invalid_json', 'the request body is not valid JSON', 'Send a JSON object.');
  }
}

/**
 * Writes a reply. A stream that fails after the headers went out can no longer change the
 * status, so the connection is cut: the client sees a short body and never a torn file as whole.
 */
export async function sendReply(res: ServerResponse, reply: Reply): Promise<void> {
  res.statusCode = reply.status;
  res.setHeader('Cache-Control', 'no-store');

  if ('json' in reply) {
    const body = Buffer.from(JSON.stringify(reply.json), 'utf8');
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', body.length);
    res.end(body);
    return;
  }
  if ('bytes' in reply) {
    res.setHeader('Content-Type', reply.contentType);
    res.setHeader('Content-Length', reply.bytes.length);
    res.end(reply.bytes);
    return;
  }

  res.setHeader('Content-Type', reply.contentType);
  res.setHeader('Content-Length', reply.size);
  try {
    for await (const piece of reply.stream) {
      if (!res.write(piece)) await drainOrClose(res);
      if (res.destroyed) return;
    }
    res.end();
  } catch (error) {
    res.destroy(error instanceof Error ? error : undefined);
    throw error;
  }
}

/** Waits until the socket takes more bytes, or until the client has gone away. */
async function drainOrClose(res: ServerResponse): Promise<void> {
  const ac = new AbortController();
  try {
    await Promise.race([
      once(res, 'drain', { signal: ac.signal }),
      once(res, 'close', { signal: ac.signal }),
    ]);
  } finally {
    ac.abort();
  }
}

function tooLarge(limit: number): RequestError {
  return new RequestError(413, 'body_too_large', `the request body is larger than ${limit} bytes`, {
    hint: 'Send fewer operations per request, or split the content into smaller chunks.',
  });
}
