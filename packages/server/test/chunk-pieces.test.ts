import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ChunkPieces } from '../src/chunk-pieces.js';

describe('ChunkPieces', () => {
  it('gathers a body sent a byte at a time into a few blocks, bytes in order', () => {
    const bytes = randomBytes(100_000);
    const pieces = new ChunkPieces();
    for (let i = 0; i < bytes.length; i++) pieces.add(bytes.subarray(i, i + 1));

    const kept = pieces.finish();

    expect(pieces.length).toBe(bytes.length);
    expect(kept.length).toBe(Math.ceil(bytes.length / (16 * 1024)));
    expect(Buffer.concat(kept).equals(bytes)).toBe(true);
  });

  it('keeps large pieces as they came, small ones between them gathered, order kept', () => {
    const large = randomBytes(64 * 1024);
    const small = [randomBytes(10), randomBytes(3000), randomBytes(1)];
    const tail = randomBytes(20);
    const pieces = new ChunkPieces();
    for (const piece of [...small, large, ...small, tail]) pieces.add(piece);

    const kept = pieces.finish();

    expect(kept).toHaveLength(3);
    expect(kept[1]).toBe(large);
    expect(Buffer.concat(kept).equals(Buffer.concat([...small, large, ...small, tail]))).toBe(true);
  });

  it('answers no pieces for nothing added', () => {
    expect(new ChunkPieces().finish()).toEqual([]);
  });
});
