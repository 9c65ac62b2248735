import { randomBytes } from 'node:crypto';

/** A run's stable identity; never its name. */
export type RunId = string & { readonly __brand: 'RunId' };

/** The identity of one journal operation, unique across stores, machines and copied folders. */
export type OpId = string & { readonly __brand: 'OpId' };

/** A position in one store's local journal. Meaningful only inside that store. */
export type Seq = number & { readonly __brand: 'Seq' };

/** A content address: 16 hex digits of xxh64 followed by the byte length, `<hex>-<size>`. */
export type Digest = string & { readonly __brand: 'Digest' };

const RUN_ID_PATTERN = /^[0-9a-z]{26}$/;

/**
 * Mints a run id: 10 characters of millisecond time then 16 random ones, base 36, so ids sort
 * by creation time and two machines never mint the same one.
 */
export function newRunId(now: number = Date.now()): RunId {
  const time = Math.floor(now).toString(36).padStart(10, '0').slice(-10);
  return (time + randomBase36(16)) as RunId;
}

export function isRunId(value: string): value is RunId {
  return RUN_ID_PATTERN.test(value);
}

/**
 * Mints the identity of one writer: a process that opened a store. Every operation id is the
 * writer id plus a counter, so two copies of one store folder that both keep writing never
 * mint the same operation id (DESIGN: journal entry).
 */
export function newWriterId(): string {
  return randomBase36(16);
}

function randomBase36(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const byte of bytes) {
    out += (byte % 36).toString(36);
  }
  return out;
}
