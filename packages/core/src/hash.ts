import xxhash from 'xxhash-wasm';
import type { Digest } from './ids.js';

/**
 * Two xxh64 passes with different seeds make a 128-bit content address. A single 64-bit
 * digest collides after about 2^32 objects by the birthday bound; 128 bits put that out of
 * reach for any store, at a cost far below disk speed. The byte length is part of the digest,
 * so two objects can only be taken as one when both hashes and the size agree.
 * `docs/artifacts.md` explains the choice and what it does not protect against.
 */
const SEED_A = 0x7469_6465n;
const SEED_B = 0x6d61_726bn;

export interface Hasher {
  digest(bytes: Uint8Array): Digest;
  stream(): StreamingDigest;
}

export interface StreamingDigest {
  update(bytes: Uint8Array): void;
  digest(): Digest;
}

let hasherPromise: Promise<Hasher> | undefined;

/** Resolves the process-wide hasher; the wasm module is compiled once. */
export function getHasher(): Promise<Hasher> {
  hasherPromise ??= xxhash().then((api) => ({
    digest(bytes: Uint8Array): Digest {
      return formatDigest(api.h64Raw(bytes, SEED_A), api.h64Raw(bytes, SEED_B), bytes.length);
    },
    stream(): StreamingDigest {
      const a = api.create64(SEED_A);
      const b = api.create64(SEED_B);
      let size = 0;
      return {
        update(bytes: Uint8Array): void {
          a.update(bytes);
          b.update(bytes);
          size += bytes.length;
        },
        digest(): Digest {
          return formatDigest(a.digest(), b.digest(), size);
        },
      };
    },
  }));
  return hasherPromise;
}

const DIGEST_PATTERN = /^[0-9a-f]{32}-(0|[1-9][0-9]{0,15})$/;

export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && DIGEST_PATTERN.test(value);
}

/** The byte length a digest names. */
export function digestSize(digest: Digest): number {
  return Number(digest.slice(33));
}

function formatDigest(a: bigint, b: bigint, size: number): Digest {
  return `${a.toString(16).padStart(16, '0')}${b.toString(16).padStart(16, '0')}-${size}` as Digest;
}
