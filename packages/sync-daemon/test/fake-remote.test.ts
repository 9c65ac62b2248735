import { newRunId, type OpId } from '@tidemark/core';
import { FakeRemote, RemoteError } from '@tidemark/sync-daemon';
import { describe, expect, it } from 'vitest';
import { describeRemoteContract } from './remote-contract.js';

describeRemoteContract('FakeRemote', async () => ({
  remote: new FakeRemote(),
  close: async () => {},
}));

describe('FakeRemote fault hooks', () => {
  const tags = () => ({
    id: `w-${Math.random()}` as OpId,
    runId: newRunId(),
    project: 'p',
    at: 1,
    kind: 'tags.add' as const,
    tags: ['x'],
  });

  it('fails the chosen calls, before or after doing their work, and counts every call', async () => {
    const remote = new FakeRemote();
    const lost = RemoteError.unreachable('POST /api/v1/ops', 'ECONNRESET');
    remote.failNext(1, lost, { method: 'sendOps', after: 1, afterApplying: true });
    remote.failNext(1, RemoteError.serverError('POST /api/v1/ops', 500), { method: 'sendOps' });

    await remote.sendOps({ storeId: 's', ops: [tags()] });
    await expect(remote.sendOps({ storeId: 's', ops: [tags()] })).rejects.toBe(lost);
    await expect(remote.sendOps({ storeId: 's', ops: [tags()] })).rejects.toMatchObject({
      code: 'server_error',
    });
    await remote.health();

    expect(remote.appliedCount).toBe(2);
    expect(remote.calls.sendOps).toBe(3);
    expect(remote.totalCalls()).toBe(4);
  });
});
