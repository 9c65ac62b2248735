import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_FILE, loadDaemonConfig } from '@tidemark/sync-daemon';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

function storeWith(config?: unknown): string {
  const dir = join(tempDir(), '.tidemark');
  mkdirSync(dir, { recursive: true });
  if (config !== undefined) {
    const text = typeof config === 'string' ? config : JSON.stringify(config);
    writeFileSync(join(dir, CONFIG_FILE), text);
  }
  return dir;
}

const env = { TIDEMARK_API_TOKEN: 'tdm_test' };

describe('loadDaemonConfig', () => {
  it('takes the file, then the environment, then flags, and fills in defaults', () => {
    const storeDir = storeWith({ remote: 'http://127.0.0.1:1/', maxRate: '1MB/s', only: 'team/a' });

    const fromFile = loadDaemonConfig({ storeDir, env });
    const fromEnv = loadDaemonConfig({
      storeDir,
      env: { ...env, TIDEMARK_REMOTE: 'http://127.0.0.1:2' },
    });
    const fromFlags = loadDaemonConfig({
      storeDir,
      env: { ...env, TIDEMARK_REMOTE: 'http://127.0.0.1:2' },
      flags: { remote: 'http://127.0.0.1:3', maxRate: '2MB/s' },
    });

    expect(fromFile).toMatchObject({
      remote: 'http://127.0.0.1:1',
      token: 'tdm_test',
      maxRate: 1_000_000,
      only: 'team/a',
      watch: true,
      schedule: null,
      window: null,
      debounceMs: 2_000,
      batchOps: 2_000,
    });
    expect(fromEnv.remote).toBe('http://127.0.0.1:2');
    expect(fromFlags).toMatchObject({ remote: 'http://127.0.0.1:3', maxRate: 2_000_000 });
  });

  it('turns watching off when a schedule is given, unless asked for', () => {
    const storeDir = storeWith({ remote: 'http://127.0.0.1:1', schedule: '*/5 * * * *' });

    expect(loadDaemonConfig({ storeDir, env }).watch).toBe(false);
    expect(loadDaemonConfig({ storeDir, env, flags: { watch: true } }).watch).toBe(true);
  });

  it('reads the token from tokenFile when the environment has none, never printing it', () => {
    const storeDir = storeWith({ remote: 'http://127.0.0.1:1', tokenFile: 'secret' });
    writeFileSync(join(storeDir, 'secret'), 'tdm_from_file\n');

    expect(loadDaemonConfig({ storeDir, env: {} }).token).toBe('tdm_from_file');

    writeFileSync(join(storeDir, 'secret'), 'tdm bad token\n');
    const error = (() => {
      try {
        loadDaemonConfig({ storeDir, env: {} });
      } catch (caught) {
        return caught as Error;
      }
    })();
    expect(error?.message).toMatch(/tokenFile/);
    expect(error?.message).not.toMatch(/tdm bad/);
  });

  it.each([
    ['no remote anywhere', {}, {}, /no remote server/],
    ['no token', { remote: 'http://127.0.0.1:1' }, { TIDEMARK_API_TOKEN: '' }, /no API token/],
    [
      'a remote with credentials',
      { remote: 'http://u:p@127.0.0.1:1' },
      env,
      /daemon\.json: remote/,
    ],
    ['a misspelt key', { remote: 'http://127.0.0.1:1', maxrate: '2MB/s' }, env, /maxrate/],
    ['a bad cron', { remote: 'http://127.0.0.1:1', schedule: '*/5 * *' }, env, /schedule/],
    ['a bad rate', { remote: 'http://127.0.0.1:1', maxRate: 'fast' }, env, /maxRate/],
    ['a bad window', { remote: 'http://127.0.0.1:1', window: '9-5' }, env, /window/],
    ['a bad project', { remote: 'http://127.0.0.1:1', only: 'a b' }, env, /only/],
    ['a wrong type', { remote: 'http://127.0.0.1:1', watch: 'yes' }, env, /watch/],
    ['a number out of range', { remote: 'http://127.0.0.1:1', batchOps: 20_000 }, env, /batchOps/],
  ])('refuses %s at start, naming the setting', (_what, config, environment, message) => {
    const storeDir = storeWith(config);

    expect(() => loadDaemonConfig({ storeDir, env: environment })).toThrow(
      expect.objectContaining({ code: 'invalid_config', message: expect.stringMatching(message) }),
    );
  });

  it('suggests the setting a typo was meant to be', () => {
    const storeDir = storeWith({ remote: 'http://127.0.0.1:1', maxrate: '2MB/s' });

    expect(() => loadDaemonConfig({ storeDir, env })).toThrow(
      expect.objectContaining({ hint: "Did you mean 'maxRate'?" }),
    );
  });

  it('refuses a file that is not JSON, naming the file', () => {
    const storeDir = storeWith('{ "remote": ');

    expect(() => loadDaemonConfig({ storeDir, env })).toThrow(
      expect.objectContaining({ message: expect.stringContaining(CONFIG_FILE) }),
    );
  });

  it('needs no token for reading status', () => {
    const storeDir = storeWith({ remote: 'http://127.0.0.1:1' });

    expect(loadDaemonConfig({ storeDir, env: {}, requireToken: false }).remote).toBe(
      'http://127.0.0.1:1',
    );
  });
});
