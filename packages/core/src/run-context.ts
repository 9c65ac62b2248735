import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { hostname, platform, release, userInfo } from 'node:os';
import { join } from 'node:path';
import type { FieldValue } from './values.js';

/** The largest uncommitted diff recorded; a bigger one is cut and marked as cut. */
const MAX_DIFF_BYTES = 1024 * 1024;

/**
 * Facts about where and how a run was started, recorded under `context/` the way hosted
 * trackers record source and environment. Every probe is best effort: a missing git or an
 * unreadable package.json leaves that field out rather than failing the run.
 */
export function captureContext(cwd: string = process.cwd()): Array<[string, FieldValue]> {
  const out: Array<[string, FieldValue]> = [
    ['context/command', [process.argv0, ...process.argv.slice(1)].join(' ')],
    ['context/cwd', cwd],
    ['context/host', hostname()],
    ['context/pid', process.pid],
    ['context/node', process.version],
    ['context/os', `${platform()} ${release()}`],
  ];

  const user = safe(() => userInfo().username);
  if (user !== undefined) out.push(['context/user', user]);

  const commit = git(cwd, ['rev-parse', 'HEAD']);
  if (commit !== undefined) {
    out.push(['context/git/commit', commit]);
    const branch = git(cwd, ['rev-parse', '--abbrev-ref', 'HEAD']);
    if (branch !== undefined) out.push(['context/git/branch', branch]);
    const status = git(cwd, ['status', '--porcelain']);
    if (status !== undefined) out.push(['context/git/dirty', status.length > 0]);
    const diff = git(cwd, ['diff', 'HEAD']);
    if (diff !== undefined && diff.length > 0) {
      const cut = Buffer.byteLength(diff) > MAX_DIFF_BYTES;
      out.push([
        'context/git/diff',
        cut ? Buffer.from(diff).subarray(0, MAX_DIFF_BYTES).toString() : diff,
      ]);
      if (cut) out.push(['context/git/diff_truncated', true]);
    }
  }

  const pkgPath = join(cwd, 'package.json');
  if (existsSync(pkgPath)) {
    const pkg = safe(() => JSON.parse(readFileSync(pkgPath, 'utf8')) as Record<string, unknown>);
    const deps = { ...(pkg?.dependencies as object), ...(pkg?.devDependencies as object) };
    for (const [name, version] of Object.entries(deps)) {
      if (typeof version === 'string') out.push([`context/packages/${name}`, version]);
    }
  }
  return out;
}

function git(cwd: string, args: string[]): string | undefined {
  return safe(() =>
    execFileSync('git', args, {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
      maxBuffer: 16 * MAX_DIFF_BYTES,
    }).trim(),
  );
}

function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}
