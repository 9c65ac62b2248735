import { ValidationError } from '@tidemark/core';

/**
 * The canonical form of a server's base URL: lower-case scheme and host, no default port, no
 * trailing slash. It names the remote in the local store (the sync cursor and quarantine key),
 * so `http://Host:80/` and `http://host` must land on the same cursor.
 *
 * @example
 * normalizeRemoteUrl('HTTP://127.0.0.1:80/team/'); // 'http://127.0.0.1/team'
 */
export function normalizeRemoteUrl(input: string): string {
  if (typeof input !== 'string' || input.trim().length === 0) {
    throw invalidUrl('the remote URL is empty');
  }

  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    throw invalidUrl('the remote URL is not a valid URL');
  }

  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalidUrl(`the remote URL must use http or https, not ${url.protocol.slice(0, -1)}`);
  }

  // Credentials in a URL end up in shell history and in the cursor table; tokens travel in a
  // header instead. The message does not repeat the URL for the same reason.
  if (url.username !== '' || url.password !== '') {
    throw invalidUrl('the remote URL carries a user name or password', {
      hint: 'Remove them from the URL and pass the API token through TIDEMARK_API_TOKEN.',
    });
  }

  if (url.search !== '' || url.hash !== '') {
    throw invalidUrl('the remote URL has a query or fragment');
  }

  const path = url.pathname.replace(/\/+$/, '');
  return `${url.protocol}//${url.host}${path}`;
}

function invalidUrl(message: string, options: { hint?: string } = {}): ValidationError {
  return new ValidationError('invalid_remote_url', message, {
    hint: options.hint ?? "Pass the server's base URL, such as http://127.0.0.1:8080.",
  });
}
