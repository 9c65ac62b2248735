import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '@tidemark/core';
import { type WakeReason, WakeWatcher } from '@tidemark/sync-daemon';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';
import { waitFor } from './support/processes.js';

const watchers: WakeWatcher[] = [];
afterEach(() => {
  for (const watcher of watchers.splice(0)) watcher.close();
});

function watch(
  dir: string,
  hasNews: () => boolean,
  options: { debounceMs?: number; pollMs?: number } = {},
) {
  const wakes: WakeReason[] = [];
  let looks = 0;
  const watcher = new WakeWatcher({
    dir,
    debounceMs: options.debounceMs ?? 200,
    pollMs: options.pollMs ?? 60_000,
    hasNews: () => {
      looks += 1;
      return hasNews();
    },
    onWake: (reason) => wakes.push(reason),
    logger: silentLogger,
  });
  watcher.start();
  watchers.push(watcher);
  return { wakes, looks: () => looks };
}

describe('WakeWatcher', () => {
  it('wakes once for a burst of writes to the store, after the debounce', async () => {
    const dir = tempDir();
    const { wakes } = watch(dir, () => true);

    for (let i = 0; i < 20; i++) appendFileSync(join(dir, 'store.db-wal'), 'x');
    await waitFor(() => wakes.length > 0, 5_000, 'a wake-up');

    expect(wakes).toEqual(['journal']);
  });

  it('stays asleep when the writes bring no new journal entry, such as its own cursor', async () => {
    const dir = tempDir();
    const { wakes, looks } = watch(dir, () => false);

    appendFileSync(join(dir, 'store.db-wal'), 'cursor');
    await waitFor(() => looks() > 0, 5_000, 'a look at the journal');

    expect(wakes).toEqual([]);
  });

  it('ignores files that are not the store database', async () => {
    const dir = tempDir();
    const { wakes, looks } = watch(dir, () => true, { pollMs: 300 });

    appendFileSync(join(dir, 'daemon.log'), 'line\n');
    await waitFor(() => looks() > 0, 5_000, 'the poll');

    expect(wakes).toEqual(['poll']);
  });

  it('falls back to the slow poll when no change event comes', async () => {
    const dir = tempDir();
    const { wakes } = watch(dir, () => true, { pollMs: 100 });

    await waitFor(() => wakes.length >= 2, 5_000, 'two polls');

    expect(wakes.slice(0, 2)).toEqual(['poll', 'poll']);
  });
});
