import { RemoteError } from '@tidemark/sync-daemon';
import { describe, expect, it } from 'vitest';
import { ExitCode, exitCodeFor } from '../src/exit-codes.js';

describe('exit codes of server refusals', () => {
  it('calls any 404 not found, a damaged copy set aside included, and a 400 bad input', () => {
    const endpoint = 'GET /api/v1/chunks/x';

    expect(exitCodeFor(RemoteError.rejected(endpoint, 404, 'chunk_corrupt'))).toBe(
      ExitCode.notFound,
    );
    expect(exitCodeFor(RemoteError.rejected(endpoint, 404, 'chunk_not_found'))).toBe(
      ExitCode.notFound,
    );
    expect(exitCodeFor(RemoteError.rejected(endpoint, 400, 'digest_mismatch'))).toBe(
      ExitCode.usage,
    );
  });
});
