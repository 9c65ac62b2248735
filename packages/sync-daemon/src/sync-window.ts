import { createTask, type ScheduledTask, validateDetailed } from 'node-cron';
import { invalidConfig } from './daemon-error.js';

/**
 * The times a daemon may sync, such as nights only. Either a time-of-day range in the local
 * time zone, `22:00-06:00` (start included, end excluded, may cross midnight), or a five-field
 * cron expression naming the minutes that are inside (`* 22-23,0-5 * * 1-5`: weeknights).
 */
export interface SyncWindow {
  readonly text: string;
  contains(at: number): boolean;
  /** The first minute after `at` where being inside changes; undefined if never within 8 days. */
  nextChange(at: number): number | undefined;
  /** Releases what the window holds (a cron matcher). */
  dispose(): void;
}

const MINUTE = 60_000;
const LOOKAHEAD_MINUTES = 8 * 24 * 60;
const RANGE = /^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$/;

/** Reads `--window`; `source` names the option in the error. */
export function parseSyncWindow(text: string, source = '--window'): SyncWindow {
  const trimmed = text.trim();
  const range = RANGE.exec(trimmed);
  if (range !== null) return timeRange(trimmed, range, source);
  if (trimmed.split(/\s+/).length === 5) return cronWindow(trimmed, source);
  throw invalidConfig(
    source,
    `'${text}' is neither a time range nor a five-field cron expression`,
    "Write '22:00-06:00' (local time) or a cron expression such as '* 22-23,0-5 * * *'.",
  );
}

function timeRange(text: string, parts: RegExpExecArray, source: string): SyncWindow {
  const [startH, startM, endH, endM] = parts.slice(1, 5).map(Number) as [
    number,
    number,
    number,
    number,
  ];
  if (startH > 23 || endH > 23 || startM > 59 || endM > 59) {
    throw invalidConfig(
      source,
      `'${text}' names a time that does not exist`,
      'Use 00:00 to 23:59.',
    );
  }
  const start = startH * 60 + startM;
  const end = endH * 60 + endM;
  if (start === end) {
    throw invalidConfig(
      source,
      `'${text}' starts where it ends`,
      'Leave --window out to sync at any time.',
    );
  }

  const contains = (at: number): boolean => {
    const date = new Date(at);
    const minute = date.getHours() * 60 + date.getMinutes();
    return start < end ? minute >= start && minute < end : minute >= start || minute < end;
  };
  return { text, contains, nextChange: (at) => scan(at, contains), dispose: () => {} };
}

function cronWindow(text: string, source: string): SyncWindow {
  const checked = validateDetailed(text);
  if (!checked.valid) {
    const problem = checked.errors.map((error) => error.message).join('; ');
    throw invalidConfig(source, `'${text}' is not a valid cron expression: ${problem}`, CRON_HINT);
  }

  let task: ScheduledTask | undefined = createTask(text, () => {});
  // The matcher compares seconds too, and a five-field expression means second 0.
  const contains = (at: number): boolean =>
    task?.match(new Date(Math.floor(at / MINUTE) * MINUTE)) ?? false;
  return {
    text,
    contains,
    nextChange: (at) => scan(at, contains),
    dispose: () => {
      void task?.destroy();
      task = undefined;
    },
  };
}

/** Walks minute starts after `at`; cheap enough for a decision taken once per pass. */
function scan(at: number, contains: (at: number) => boolean): number | undefined {
  const now = contains(at);
  let minute = Math.floor(at / MINUTE) * MINUTE;
  for (let i = 0; i < LOOKAHEAD_MINUTES; i++) {
    minute += MINUTE;
    if (contains(minute) !== now) return minute;
  }
  return undefined;
}

export const CRON_HINT =
  "Five fields: minute hour day-of-month month day-of-week, such as '*/5 * * * *'.";
