import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const STATE_FILE = 'daemon-state.json';

/** What the daemon is doing now. */
export type DaemonPhase =
  | 'starting'
  | 'idle'
  | 'syncing'
  | 'backing_off'
  | 'outside_window'
  | 'stopped';

export interface DaemonFailure {
  code: string;
  message: string;
  hint: string | null;
  /** Whether it may heal by itself (an outage) or needs someone (a refused token). */
  retryable: boolean;
  /** When the first failure of this streak happened, ms since the epoch. */
  since: number;
  /** Failed passes in a row. */
  failures: number;
}

/** The figures of the last pass that finished. */
export interface PassSummary {
  at: number;
  opsApplied: number;
  opsDuplicate: number;
  chunksSent: number;
  bytesSent: number;
  quarantined: number;
  pending: number;
  ms: number;
}

/**
 * The daemon's own account of itself, rewritten whole at every change so that `tidemark
 * daemon status` can read it from another process. It holds no token and no payload.
 */
export interface DaemonState {
  version: 1;
  pid: number;
  remote: string;
  only: string | null;
  startedAt: number;
  phase: DaemonPhase;
  lastSuccessAt: number | null;
  lastError: DaemonFailure | null;
  nextAttemptAt: number | null;
  lastPass: PassSummary | null;
  updatedAt: number;
}

/**
 * Replaces the state file: a temp file in the same folder, then a rename, so a reader sees the
 * old state or the new one, never half of one. No fsync: after a power loss the state is only
 * stale, and the next pass rewrites it.
 */
export function writeDaemonState(dir: string, state: DaemonState): void {
  const target = join(dir, STATE_FILE);
  const temp = join(dir, `.${STATE_FILE}.${randomBytes(6).toString('hex')}`);
  try {
    writeFileSync(temp, `${JSON.stringify(state, null, 2)}\n`);
    renameSync(temp, target);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

/** The last state a daemon of `dir` wrote, or undefined when there is none or it is unreadable. */
export function readDaemonState(dir: string): DaemonState | undefined {
  try {
    const parsed = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as DaemonState;
    return parsed.version === 1 ? parsed : undefined;
  } catch {
    return undefined;
  }
}
