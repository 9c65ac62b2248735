import type { Logger } from '@tidemark/core';

export interface LogRecord {
  level: 'debug' | 'info' | 'warn' | 'error';
  event: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps every line, debug included, for assertions. */
export function recordingLogger(): Logger & {
  records: LogRecord[];
  events(level?: string): string[];
} {
  const records: LogRecord[] = [];
  const at =
    (level: LogRecord['level']) =>
    (event: string, fields: Record<string, unknown> = {}): void => {
      records.push({ level, event, fields });
    };
  return {
    records,
    events: (level) =>
      records.filter((r) => level === undefined || r.level === level).map((r) => r.event),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
}
