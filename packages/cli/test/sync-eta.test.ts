import { describe, expect, it } from 'vitest';
import { etaText } from '../src/commands/sync.js';

describe('the sync progress ETA', () => {
  it('shows -- until a rate exists, instead of a division by zero', () => {
    expect(etaText(100, 0)).toBe('--');
    expect(etaText(100, Number.NaN)).toBe('--');
    expect(etaText(100, Number.POSITIVE_INFINITY)).toBe('--');
  });

  it('shows seconds, minutes and hours once ops are moving', () => {
    expect(etaText(10, 2)).toBe('5s');
    expect(etaText(130, 2)).toBe('1m05s');
    expect(etaText(7_300, 1)).toBe('2h01m');
  });
});
