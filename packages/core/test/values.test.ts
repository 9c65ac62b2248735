import {
  columnsToFloat,
  decodeField,
  encodeField,
  floatToColumns,
  fromWireFloat,
  toWireFloat,
} from '@tidemark/core';
import { describe, expect, it } from 'vitest';

describe('field values', () => {
  it('round-trip exactly through their stored text', () => {
    const values = [
      0.1,
      -0,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      2 ** 53 + 2,
      1e-310,
      42,
      true,
      'µ✓ 🚀',
      new Date(1_700_000_000_123),
    ];
    for (const value of values) {
      const encoded = encodeField(value, 'x');
      const decoded = decodeField(encoded.type, encoded.text);
      if (value instanceof Date) expect((decoded as Date).getTime()).toBe(value.getTime());
      else expect(Object.is(decoded, value)).toBe(true);
    }
  });

  it('keep bigints beyond 2^53 exactly', () => {
    const big = 2n ** 63n + 1n;
    const encoded = encodeField(big, 'x');
    expect(encoded).toMatchObject({ type: 'int', text: '9223372036854775809' });
    expect(decodeField('int', encoded.text)).toBe(big);
  });

  it('give NaN no numeric reading so SQL never compares it', () => {
    expect(encodeField(Number.NaN, 'x').num).toBeNull();
    expect(floatToColumns(Number.NaN)).toEqual({ value: null, flag: 1 });
  });

  it('restore NaN and -0 from their column flags', () => {
    for (const value of [Number.NaN, -0, 0, Number.NEGATIVE_INFINITY, 5e-324]) {
      const { value: column, flag } = floatToColumns(value);
      expect(Object.is(columnsToFloat(column, flag), value)).toBe(true);
      expect(Object.is(fromWireFloat(toWireFloat(value)), value)).toBe(true);
    }
  });

  it('refuse values that cannot be recorded with a hint', () => {
    expect(() => encodeField({} as never, 'p')).toThrow(/not recorded/);
    expect(() => encodeField(new Date(Number.NaN), 'p')).toThrow(/date is invalid/);
  });
});
