import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, ensureInitialToken } from '@tidemark/server';
import { loadDaemonConfig, SyncDaemon } from '@tidemark/sync-daemon';
import { afterEach, describe, expect, it } from 'vitest';
import { randomFile, recordRun, tempDir } from './helpers.js';
import { ChaosProxy } from './support/chaos-proxy.js';
import { waitFor } from './support/processes.js';
import { recordingLogger } from './support/recording-logger.js';
import { cursorOf, lastSeqOf } from './support/stores.js';

const MiB = 1024 * 1024;
const soak = process.env.TIDEMARK_SOAK === '1';
const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (stops.length > 0) await stops.pop()?.();
});

/**
 * Syncs an artifact of `bytes` through a daemon limited to `rate` bytes per second, with a
 * proxy timing every byte on the wire. Answers the rate over the whole transfer and the most
 * that crossed in any one-second span.
 */
async function measure(
  rate: string,
  bytes: number,
): Promise<{ average: number; peak: number; seconds: number }> {
  const dataDir = tempDir('tidemark-server-');
  const token = readFileSync(ensureInitialToken(dataDir).path, 'utf8').trim();
  const server = createServer({ dataDir });
  const { port } = await server.listen(0, '127.0.0.1');
  stops.push(() => server.close());
  const proxy = await ChaosProxy.start(port);
  stops.push(() => proxy.close());

  const dir = join(tempDir(), '.tidemark');
  await recordRun(dir, 'team/rate', async (run) => {
    await run.upload('model', randomFile(bytes));
  });

  const marks: Array<[number, number]> = [];
  proxy.onUpstream = (_piece, total) => marks.push([performance.now(), total]);
  const config = loadDaemonConfig({
    storeDir: dir,
    env: { TIDEMARK_API_TOKEN: token },
    flags: { remote: proxy.url, maxRate: rate },
  });
  const daemon = await SyncDaemon.start({ config, logger: recordingLogger() });
  stops.push(() => daemon.stop());
  const last = lastSeqOf(dir);
  await waitFor(() => cursorOf(dir, proxy.url) === last, 200_000, 'the upload');

  const [firstAt] = marks[0] as [number, number];
  const [lastAt, total] = marks.at(-1) as [number, number];
  const seconds = (lastAt - firstAt) / 1000;
  let peak = 0;
  let from = 0;
  for (const [at, sent] of marks) {
    while ((marks[from] as [number, number])[0] < at - 1000) from += 1;
    const before = from === 0 ? 0 : (marks[from - 1] as [number, number])[1];
    peak = Math.max(peak, sent - before);
  }
  return { average: total / seconds, peak, seconds };
}

describe('--max-rate', () => {
  it('holds uploads within 10% of the limit on the wire, over a few seconds', async () => {
    const { average, peak, seconds } = await measure('2MB/s', 6 * MiB);

    expect(seconds).toBeGreaterThan(2.5);
    expect(average).toBeGreaterThan(2_000_000 * 0.9);
    expect(average).toBeLessThan(2_000_000 * 1.1);
    // No second carries more than the limit plus the bucket's credit and one slice.
    expect(peak).toBeLessThan(2_000_000 * 1.1 + 64 * 1024);
  });

  it.runIf(soak)(
    'holds 2MB/s within 10% over a minute (TIDEMARK_SOAK=1)',
    async () => {
      const { average, seconds } = await measure('2MB/s', 120 * 1_000_000);

      expect(seconds).toBeGreaterThan(55);
      expect(average).toBeGreaterThan(2_000_000 * 0.9);
      expect(average).toBeLessThan(2_000_000 * 1.1);
    },
    180_000,
  );
});
