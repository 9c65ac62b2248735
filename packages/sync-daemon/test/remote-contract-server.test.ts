import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, ensureInitialToken } from '@tidemark/server';
import { HttpRemoteClient } from '@tidemark/sync-daemon';
import { describeRemoteContract } from './remote-contract.js';

describeRemoteContract('HttpRemoteClient and @tidemark/server', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tidemark-contract-'));
  const token = readFileSync(ensureInitialToken(dataDir).path, 'utf8').trim();
  const server = createServer({ dataDir });
  const { url } = await server.listen(0, '127.0.0.1');
  return {
    remote: new HttpRemoteClient({ url, token, getRetries: 0 }),
    async close() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
});
