import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PID_FILE, StoreLock } from '@tidemark/sync-daemon';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';
import { spawnModule } from './support/processes.js';

describe('StoreLock', () => {
  it('lets one holder in and refuses a second, naming the holder', () => {
    const dir = tempDir();
    const lock = StoreLock.acquire(dir);

    expect(StoreLock.isHeld(dir)).toBe(true);
    expect(StoreLock.readPid(dir)).toBe(process.pid);
    expect(() => StoreLock.acquire(dir)).toThrow(
      expect.objectContaining({
        code: 'daemon_running',
        message: expect.stringContaining(`process ${process.pid}`),
      }),
    );

    lock.release();
    expect(StoreLock.isHeld(dir)).toBe(false);
    expect(existsSync(join(dir, PID_FILE))).toBe(false);
    StoreLock.acquire(dir).release();
  });

  it('is not held in a folder that never had a daemon', () => {
    expect(StoreLock.isHeld(tempDir())).toBe(false);
  });

  it('is held across processes, and freed by the kernel when the holder is killed with -9', async () => {
    const dir = tempDir();
    const holder = spawnModule(
      `import { StoreLock } from '@tidemark/sync-daemon';
       globalThis.lock = StoreLock.acquire(${JSON.stringify(dir)});
       console.log(JSON.stringify({ event: 'held' }));
       setInterval(() => {}, 1000);`,
    );
    await holder.waitForLine((line) => line.event === 'held', 20_000);

    expect(StoreLock.isHeld(dir)).toBe(true);
    expect(StoreLock.readPid(dir)).toBe(holder.pid);
    expect(() => StoreLock.acquire(dir)).toThrow(
      expect.objectContaining({ code: 'daemon_running' }),
    );

    await holder.kill9();

    // The pid file survives a kill -9; the lock does not, so the stale pid cannot mislead.
    expect(StoreLock.readPid(dir)).toBe(holder.pid);
    expect(StoreLock.isHeld(dir)).toBe(false);
    const lock = StoreLock.acquire(dir);
    expect(StoreLock.readPid(dir)).toBe(process.pid);
    lock.release();
  });
});
