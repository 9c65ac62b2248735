import { parseSyncWindow } from '@tidemark/sync-daemon';
import { describe, expect, it } from 'vitest';

/** A local time on a fixed day, so the tests hold in any time zone. */
const at = (hour: number, minute = 0, day = 10): number =>
  new Date(2030, 0, day, hour, minute).getTime();

describe('parseSyncWindow', () => {
  it('reads a night window that crosses midnight, start included and end excluded', () => {
    const nights = parseSyncWindow('22:00-06:00');

    expect(nights.contains(at(22))).toBe(true);
    expect(nights.contains(at(23, 59))).toBe(true);
    expect(nights.contains(at(3))).toBe(true);
    expect(nights.contains(at(5, 59))).toBe(true);
    expect(nights.contains(at(6))).toBe(false);
    expect(nights.contains(at(12))).toBe(false);
    expect(nights.contains(at(21, 59))).toBe(false);
  });

  it('tells when a window next opens and closes', () => {
    const nights = parseSyncWindow('22:00-06:00');

    expect(nights.nextChange(at(12, 30))).toBe(at(22));
    expect(nights.nextChange(at(23, 15))).toBe(at(6, 0, 11));
  });

  it('reads a daytime window', () => {
    const lunch = parseSyncWindow('12:00-13:30');

    expect(lunch.contains(at(12, 45))).toBe(true);
    expect(lunch.contains(at(13, 30))).toBe(false);
    expect(lunch.nextChange(at(9))).toBe(at(12));
  });

  it('reads a cron expression as the minutes that are inside', () => {
    // 2030-01-10 is a Thursday; weeknights only.
    const weeknights = parseSyncWindow('* 22-23,0-5 * * 1-5');

    expect(weeknights.contains(at(23, 10))).toBe(true);
    expect(weeknights.contains(at(12))).toBe(false);
    expect(weeknights.contains(at(23, 10, 12))).toBe(false);
    expect(weeknights.nextChange(at(12))).toBe(at(22));
    weeknights.dispose();
  });

  it('refuses nonsense with the option named and a hint', () => {
    for (const text of ['22:00', '25:00-06:00', '10:00-10:00', 'nights', '61 * * * *']) {
      expect(() => parseSyncWindow(text)).toThrow(
        expect.objectContaining({
          code: 'invalid_config',
          message: expect.stringContaining('--window'),
          hint: expect.any(String),
        }),
      );
    }
  });
});
