import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from './auth.js';
import { badRequest, RequestError } from './errors.js';
import type { Reply } from './http-io.js';

/** Everything a handler is given about one request. */
export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Decoded path parameters: `:name` takes one segment, `*name` the rest joined by `/`. */
  params: Record<string, string>;
  /** Set on every route except public ones. */
  principal: Principal;
}

export type Handler = (ctx: RequestContext) => Reply | Promise<Reply>;

export interface RouteOptions {
  /** Answer without a token (health only). */
  public?: boolean;
}

export interface RouteMatch {
  handler: Handler;
  params: Record<string, string>;
  public: boolean;
}

interface Route {
  method: string;
  segments: string[];
  handler: Handler;
  public: boolean;
}

/**
 * Maps a method and a path such as `/api/v1/runs/:id/files/*path` to its handler. A path that
 * matches under another method answers 405 with `Allow`, any other 404.
 */
export class Router {
  readonly #routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler, options: RouteOptions = {}): this {
    const segments = pattern.split('/').slice(1);
    this.#routes.push({ method, segments, handler, public: options.public === true });
    return this;
  }

  /** Finds the route for a request, or throws the 404, 405 or 400 it answers with. */
  match(method: string, pathname: string): RouteMatch {
    const parts = splitPath(pathname);
    const allowed: string[] = [];
    for (const route of this.#routes) {
      const params = matchSegments(route.segments, parts);
      if (params === undefined) continue;
      if (route.method === method) return { handler: route.handler, params, public: route.public };
      allowed.push(route.method);
    }

    if (allowed.length > 0) {
      throw new RequestError(405, 'method_not_allowed', `${method} is not allowed on ${pathname}`, {
        hint: `Use ${allowed.join(' or ')}.`,
      });
    }
    throw new RequestError(404, 'not_found', `no endpoint at ${pathname}`, {
      hint: 'See docs/protocol.md for the endpoints of protocol version 1.',
    });
  }
}

function splitPath(pathname: string): string[] {
  return pathname
    .split('/')
    .slice(1)
    .map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        throw badRequest('invalid_path', 'the request path is not valid percent-encoding');
      }
    });
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const want = pattern[i] as string;
    if (want.startsWith('*')) {
      if (i >= parts.length) return undefined;
      params[want.slice(1)] = parts.slice(i).join('/');
      return params;
    }
    const part = parts[i];
    if (part === undefined) return undefined;
    if (want.startsWith(':')) params[want.slice(1)] = part;
    else if (want !== part) return undefined;
  }
  return parts.length === pattern.length ? params : undefined;
}
