import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { isProjectName } from '@tidemark/core';
import { validateDetailed } from 'node-cron';
import { type BackoffPolicy, DEFAULT_BACKOFF } from './backoff.js';
import { DaemonError, invalidConfig } from './daemon-error.js';
import { parseRate } from './rate-limiter.js';
import { normalizeRemoteUrl } from './remote-url.js';
import { CRON_HINT, parseSyncWindow, type SyncWindow } from './sync-window.js';

export const CONFIG_FILE = 'daemon.json';

/** What a user may set, in `daemon.json` or as flags; flags win over the environment, which wins over the file. */
export interface DaemonSettings {
  remote?: string;
  /** A file holding the API token (relative paths are from the store folder). */
  tokenFile?: string;
  /** node-cron expression; each tick starts a pass. */
  schedule?: string;
  /** `22:00-06:00` or a cron expression of the minutes syncing is allowed in. */
  window?: string;
  /** Sync soon after new journal entries land (default: on without a schedule, off with one). */
  watch?: boolean;
  /** `2MB/s`; unset means no limit. */
  maxRate?: string;
  only?: string;
  /** Wait after the first new entry before a pass starts, gathering a burst (default 2 s). */
  debounceMs?: number;
  /** How often the journal's newest entry is checked when no wake-up came (default 30 s). */
  pollMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Wait after an auth failure or a request the server refuses whole (default 30 min). */
  authRetryMs?: number;
  connectTimeoutMs?: number;
  responseTimeoutMs?: number;
  requestTimeoutMs?: number;
  uploadConcurrency?: number;
  /** Journal entries per ops request, at most 10,000 (default 2,000). */
  batchOps?: number;
}

/** A checked configuration, every default filled in. */
export interface DaemonConfig {
  storeDir: string;
  remote: string;
  /** Never logged, never written to the state file. */
  token: string;
  schedule: string | null;
  window: SyncWindow | null;
  watch: boolean;
  maxRate: number | null;
  only: string | null;
  debounceMs: number;
  pollMs: number;
  backoff: BackoffPolicy;
  authRetryMs: number;
  timeouts: { connectMs: number; responseMs: number; requestMs: number };
  uploadConcurrency: number;
  batchOps: number;
}

export interface LoadConfigOptions {
  storeDir: string;
  flags?: DaemonSettings;
  env?: NodeJS.ProcessEnv;
  /** `status` needs the remote only; `run` and `start` need the token too (default true). */
  requireToken?: boolean;
}

const NUMBERS = {
  debounceMs: { min: 0, max: 3_600_000, fallback: 2_000 },
  pollMs: { min: 100, max: 86_400_000, fallback: 30_000 },
  backoffBaseMs: { min: 1, max: 3_600_000, fallback: DEFAULT_BACKOFF.baseMs },
  backoffMaxMs: { min: 1, max: 86_400_000, fallback: DEFAULT_BACKOFF.maxMs },
  authRetryMs: { min: 1, max: 86_400_000, fallback: 30 * 60_000 },
  connectTimeoutMs: { min: 1, max: 600_000, fallback: 10_000 },
  responseTimeoutMs: { min: 1, max: 3_600_000, fallback: 60_000 },
  requestTimeoutMs: { min: 1, max: 3_600_000, fallback: 300_000 },
  uploadConcurrency: { min: 1, max: 64, fallback: 4 },
  batchOps: { min: 1, max: 10_000, fallback: 2_000 },
} as const;

type NumberKey = keyof typeof NUMBERS;
const TEXTS = ['remote', 'tokenFile', 'schedule', 'window', 'maxRate', 'only'] as const;
const KNOWN = new Set<string>([...TEXTS, 'watch', ...Object.keys(NUMBERS)]);

/**
 * Reads `<store>/daemon.json`, the environment (`TIDEMARK_REMOTE`, `TIDEMARK_API_TOKEN`) and the
 * flags, and checks all of it before the daemon starts: a wrong setting is refused here with
 * the setting's name and a hint, never found at the first pass. Unknown keys are refused with
 * the nearest known one, since a misspelt `maxrate` would otherwise silently do nothing.
 */
export function loadDaemonConfig(options: LoadConfigOptions): DaemonConfig {
  const env = options.env ?? process.env;
  const fromFile = readConfigFile(options.storeDir);
  const flags = options.flags ?? {};
  checkKeys(flags, '--');
  const fromEnv: DaemonSettings = {};
  if (env.TIDEMARK_REMOTE !== undefined && env.TIDEMARK_REMOTE !== '') {
    fromEnv.remote = env.TIDEMARK_REMOTE;
  }
  const merged: DaemonSettings = { ...fromFile, ...fromEnv, ...definedOnly(flags) };
  const source = (key: keyof DaemonSettings): string =>
    flags[key] !== undefined
      ? `--${kebab(key)}`
      : fromEnv[key] !== undefined
        ? 'TIDEMARK_REMOTE'
        : `${CONFIG_FILE}: ${key}`;

  if (merged.remote === undefined) {
    throw invalidConfig(
      'remote',
      'no remote server is configured',
      `Pass --remote http://127.0.0.1:8642, set TIDEMARK_REMOTE, or add "remote" to ${CONFIG_FILE}.`,
    );
  }
  let remote: string;
  try {
    remote = normalizeRemoteUrl(merged.remote);
  } catch (error) {
    throw new DaemonError('invalid_config', `${source('remote')}: ${(error as Error).message}`, {
      hint: "Pass the server's base URL, such as http://127.0.0.1:8642.",
    });
  }

  const schedule = merged.schedule ?? null;
  if (schedule !== null) checkCron(schedule, source('schedule'));
  const only = merged.only ?? null;
  if (only !== null && !isProjectName(only)) {
    throw invalidConfig(source('only'), `'${only}' is not a project name`, "Write 'team/project'.");
  }

  const numbers = Object.fromEntries(
    (Object.keys(NUMBERS) as NumberKey[]).map((key) => [
      key,
      checkNumber(merged[key], key, source(key)),
    ]),
  ) as Record<NumberKey, number>;
  if (numbers.backoffBaseMs > numbers.backoffMaxMs) {
    throw invalidConfig(
      source('backoffBaseMs'),
      'is larger than backoffMaxMs',
      'The first wait must not exceed the longest one.',
    );
  }

  const maxRate =
    merged.maxRate === undefined ? null : parseRate(merged.maxRate, source('maxRate'));
  const token = options.requireToken === false ? '' : readToken(options.storeDir, merged, env);
  const window =
    merged.window === undefined ? null : parseSyncWindow(merged.window, source('window'));
  return {
    storeDir: options.storeDir,
    remote,
    token,
    schedule,
    window,
    watch: merged.watch ?? schedule === null,
    maxRate,
    only,
    debounceMs: numbers.debounceMs,
    pollMs: numbers.pollMs,
    backoff: { baseMs: numbers.backoffBaseMs, maxMs: numbers.backoffMaxMs },
    authRetryMs: numbers.authRetryMs,
    timeouts: {
      connectMs: numbers.connectTimeoutMs,
      responseMs: numbers.responseTimeoutMs,
      requestMs: numbers.requestTimeoutMs,
    },
    uploadConcurrency: numbers.uploadConcurrency,
    batchOps: numbers.batchOps,
  };
}

/** The settings of `<store>/daemon.json`, or none when the file does not exist. */
export function readConfigFile(storeDir: string): DaemonSettings {
  const path = join(storeDir, CONFIG_FILE);
  if (!existsSync(path)) return {};

  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw invalidConfig(path, `is not valid JSON (${(error as Error).message})`, FILE_HINT);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalidConfig(path, 'must hold one JSON object', FILE_HINT);
  }

  const settings = parsed as Record<string, unknown>;
  checkKeys(settings, `${CONFIG_FILE}: `);
  for (const key of TEXTS) {
    if (settings[key] !== undefined && typeof settings[key] !== 'string') {
      throw invalidConfig(`${CONFIG_FILE}: ${key}`, 'must be a string', FILE_HINT);
    }
  }
  if (settings.watch !== undefined && typeof settings.watch !== 'boolean') {
    throw invalidConfig(`${CONFIG_FILE}: watch`, 'must be true or false', FILE_HINT);
  }
  return settings as DaemonSettings;
}

const FILE_HINT = `Example: { "remote": "http://127.0.0.1:8642", "schedule": "*/5 * * * *", "maxRate": "2MB/s" }`;

function readToken(storeDir: string, settings: DaemonSettings, env: NodeJS.ProcessEnv): string {
  let token = env.TIDEMARK_API_TOKEN;
  let source = 'TIDEMARK_API_TOKEN';
  if ((token === undefined || token === '') && settings.tokenFile !== undefined) {
    const path = isAbsolute(settings.tokenFile)
      ? settings.tokenFile
      : join(storeDir, settings.tokenFile);
    source = `${CONFIG_FILE}: tokenFile`;
    try {
      token = readFileSync(path, 'utf8').trim();
    } catch {
      throw invalidConfig(source, `cannot read ${path}`, 'Point tokenFile at a readable file.');
    }
  }

  if (token === undefined || token === '') {
    throw invalidConfig(
      'token',
      'no API token is configured',
      `Set TIDEMARK_API_TOKEN, or add "tokenFile" to ${CONFIG_FILE}; create a token with 'tidemark token create' on the server.`,
    );
  }
  // The message names the token's source, never the token.
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw invalidConfig(
      source,
      'the API token must be printable ASCII without spaces',
      'Check for stray quotes, spaces or line breaks.',
    );
  }
  return token;
}

function checkCron(expression: string, source: string): void {
  const checked = validateDetailed(expression);
  if (checked.valid) return;
  const problem = checked.errors.map((error) => error.message).join('; ');
  throw invalidConfig(
    source,
    `'${expression}' is not a valid cron expression: ${problem}`,
    CRON_HINT,
  );
}

function checkNumber(value: unknown, key: NumberKey, source: string): number {
  const { min, max, fallback } = NUMBERS[key];
  if (value === undefined) return fallback;
  const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
    throw invalidConfig(
      source,
      `must be a whole number from ${min} to ${max}`,
      `Leave it out for ${fallback}.`,
    );
  }
  return number;
}

function checkKeys(settings: object, prefix: string): void {
  for (const key of Object.keys(settings)) {
    if (KNOWN.has(key)) continue;
    const near = nearest(key);
    throw invalidConfig(
      `${prefix}${key}`,
      'is not a daemon setting',
      near === undefined ? `Known settings: ${[...KNOWN].join(', ')}.` : `Did you mean '${near}'?`,
    );
  }
}

function definedOnly(settings: DaemonSettings): DaemonSettings {
  return Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined));
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/** The known key closest to `key` by edit distance, if it is a plausible typo. */
function nearest(key: string): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const known of KNOWN) {
    const distance = editDistance(key.toLowerCase(), known.toLowerCase());
    if (distance < bestDistance) {
      best = known;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitute = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(
        Math.min(substitute, (previous[j] as number) + 1, (current[j - 1] as number) + 1),
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}
