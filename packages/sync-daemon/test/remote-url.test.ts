import { normalizeRemoteUrl, parseRetryAfter } from '@tidemark/sync-daemon';
import { describe, expect, it } from 'vitest';

describe('normalizeRemoteUrl', () => {
  it('gives one name to the spellings of one server', () => {
    for (const spelling of ['http://127.0.0.1', 'HTTP://127.0.0.1:80/', ' http://127.0.0.1// ']) {
      expect(normalizeRemoteUrl(spelling)).toBe('http://127.0.0.1');
    }
    expect(normalizeRemoteUrl('https://LocalHost:8443/Team/')).toBe('https://localhost:8443/Team');
  });

  it('refuses URLs it cannot key a cursor by, without echoing credentials', () => {
    expect(() => normalizeRemoteUrl('ftp://127.0.0.1')).toThrow(/http or https/);
    expect(() => normalizeRemoteUrl('not a url')).toThrow(/not a valid URL/);
    expect(() => normalizeRemoteUrl('http://127.0.0.1/?token=x')).toThrow(/query/);
    expect(() => normalizeRemoteUrl('')).toThrow(/empty/);
    let message = '';
    try {
      normalizeRemoteUrl('http://me:hunter2@127.0.0.1');
    } catch (error) {
      message = `${(error as Error).message} ${(error as { hint: string }).hint}`;
    }
    expect(message).toMatch(/user name or password/);
    expect(message).not.toContain('hunter2');
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and dates, and ignores what it cannot read', () => {
    const now = Date.UTC(2025, 5, 1);
    expect(parseRetryAfter('12', now)).toBe(12_000);
    expect(parseRetryAfter(new Date(now + 5_000).toUTCString(), now)).toBe(5_000);
    expect(parseRetryAfter(new Date(now - 5_000).toUTCString(), now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
