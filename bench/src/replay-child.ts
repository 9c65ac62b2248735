import { Store } from '@tidemark/core';
import { HttpRemoteClient, syncOnce } from '@tidemark/sync-daemon';

/**
 * One timed sync pass in a process of its own, so its peak memory is the pass's alone:
 * `node replay-child.js <store> <url>` with the token in TIDEMARK_API_TOKEN. Writes
 * `sync_progress` lines to stderr every few seconds and one JSON result line to stdout.
 */
async function main(): Promise<void> {
  const [dir, url] = process.argv.slice(2);
  if (dir === undefined || url === undefined) throw new Error('usage: replay-child <store> <url>');

  const store = Store.open({ dir, create: false });
  let calls = 0;
  const remote = new HttpRemoteClient({
    url,
    token: process.env.TIDEMARK_API_TOKEN as string,
    logger: {
      debug: (event) => {
        if (event === 'remote_call' || event === 'remote_call_failed') calls += 1;
      },
      info: () => {},
      warn: () => {},
      error: () => {},
    },
  });

  const started = performance.now();
  let lastLog = started;
  let peakHeap = 0;
  const report = await syncOnce(store, remote, {
    onProgress: (p) => {
      peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
      const now = performance.now();
      if (now - lastLog < 5_000) return;
      lastLog = now;
      const seconds = (now - started) / 1000;
      process.stderr.write(
        `event=sync_progress ops_done=${p.opsDone} ops_total=${p.opsTotal} ops_per_s=${Math.round(p.opsDone / seconds)} rss_mib=${Math.round(process.memoryUsage().rss / 2 ** 20)}\n`,
      );
    },
  });
  const seconds = (performance.now() - started) / 1000;

  // The second pass: nothing new, so it must cost one small request.
  const callsBefore = calls;
  const quiet = performance.now();
  const again = await syncOnce(store, remote);
  const quietMs = performance.now() - quiet;
  await store.close();

  process.stdout.write(
    `${JSON.stringify({
      seconds,
      opsApplied: report.opsApplied,
      requests: report.requests,
      pending: report.pending,
      quietCalls: calls - callsBefore,
      quietRequests: again.requests,
      quietMs,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      peakHeapBytes: peakHeap,
    })}\n`,
  );
}

await main();
