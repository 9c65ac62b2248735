import { TidemarkError } from '@tidemark/core';
import {
  HttpRemoteClient,
  type HttpRemoteTimeouts,
  normalizeRemoteUrl,
  type RateLimiter,
} from '@tidemark/sync-daemon';
import type { Command } from 'commander';
import { usageError } from './output.js';

export interface RemoteOptions {
  remote?: string;
}

export function remoteOptions(command: Command): Command {
  return command.option(
    '--remote <url>',
    'server URL (default: $TIDEMARK_REMOTE); token from $TIDEMARK_API_TOKEN',
  );
}

/** The remote named by --remote or $TIDEMARK_REMOTE, with the token from $TIDEMARK_API_TOKEN. */
export function resolveRemote(
  options: RemoteOptions,
  extra: { rateLimiter?: RateLimiter; timeouts?: HttpRemoteTimeouts } = {},
): { url: string; client: HttpRemoteClient } {
  const raw = options.remote ?? process.env.TIDEMARK_REMOTE;
  if (raw === undefined || raw.length === 0) {
    throw usageError(
      'no remote server given',
      'Pass --remote http://host:port or set TIDEMARK_REMOTE.',
    );
  }
  // normalizeRemoteUrl's errors never repeat the URL: it may carry a password.
  const url = normalizeRemoteUrl(raw);
  const token = process.env.TIDEMARK_API_TOKEN;
  if (token === undefined || token.length === 0) {
    throw new TidemarkError('auth_failed', 'no API token: TIDEMARK_API_TOKEN is not set', {
      hint: "Set TIDEMARK_API_TOKEN to a token from 'tidemark token create --data DIR' on the server.",
    });
  }
  return { url, client: new HttpRemoteClient({ url, token, ...extra }) };
}
