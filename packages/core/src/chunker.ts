/**
 * Content-defined chunking after FastCDC (Xia et al., USENIX ATC 2016) with normalized
 * chunking: cut points depend on the bytes around them, not on offsets, so inserting bytes
 * into a file moves only the chunks near the insertion and every other chunk keeps its digest.
 *
 * The gear table and masks are part of the store format: changing them changes every cut
 * point and so every chunk digest, which would defeat deduplication against older objects.
 */
export const CHUNK_MIN = 256 * 1024;
export const CHUNK_AVG = 1024 * 1024;
export const CHUNK_MAX = 4 * 1024 * 1024;

/** Files at most this large are stored as one chunk. */
export const SINGLE_CHUNK_LIMIT = CHUNK_MIN;

// Int32 copies of the table and masks keep the scan loop in 32-bit integer arithmetic, which V8
// compiles to plain machine adds and shifts; the cut points are those of the unsigned form.
const GEAR = new Int32Array(buildGearTable().buffer);

// With an average of 2^20 bytes, the strict mask has 22 bits set and the loose one 18
// (normalization level 2), spread over the high bits where the gear hash mixes best.
const MASK_STRICT = spreadMask(22) | 0;
const MASK_LOOSE = spreadMask(18) | 0;

/**
 * Returns the length of the first chunk of `data[start, end)`. When `final` is false and no cut
 * point is found before `end`, returns -1: the caller must supply more bytes. The cut depends
 * only on the bytes from `start` on, so a chunk that reappears elsewhere is cut the same way.
 */
export function nextCut(data: Uint8Array, start: number, end: number, final: boolean): number {
  const available = end - start;
  if (available <= CHUNK_MIN) {
    return final ? available : -1;
  }

  const limit = Math.min(available, CHUNK_MAX);
  const normalEnd = start + Math.min(limit, CHUNK_AVG);
  const limitEnd = start + limit;
  let hash = 0;
  let i = start + CHUNK_MIN;

  for (; i < normalEnd; i++) {
    hash = ((hash << 1) + (GEAR[data[i] as number] as number)) | 0;
    if ((hash & MASK_STRICT) === 0) return i + 1 - start;
  }
  for (; i < limitEnd; i++) {
    hash = ((hash << 1) + (GEAR[data[i] as number] as number)) | 0;
    if ((hash & MASK_LOOSE) === 0) return i + 1 - start;
  }

  if (limit === CHUNK_MAX || final) return limit;
  return -1;
}

function buildGearTable(): Uint32Array {
  // A fixed xorshift sequence: the table must be identical in every version and process.
  const table = new Uint32Array(256);
  let state = 0x9e3779b9;
  for (let i = 0; i < 256; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    table[i] = state;
  }
  return table;
}

function spreadMask(bits: number): number {
  let mask = 0;
  const stride = 32 / bits;
  for (let i = 0; i < bits; i++) {
    mask |= 1 << (31 - Math.floor(i * stride));
  }
  return mask >>> 0;
}
