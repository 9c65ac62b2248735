import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';

const HEADER_BYTES = 32;
const FRAME_HEADER_BYTES = 24;
const MAGIC = 0x377f0682;

/** What a WAL file holds, read the way SQLite reads it when it opens the database. */
export interface WalScan {
  exists: boolean;
  size: number;
  pageSize: number;
  /** The header is intact: without it SQLite ignores every frame. */
  headerValid: boolean;
  /** Frames up to and including the last intact commit: what SQLite will apply. */
  committedFrames: number;
  commits: number;
  /** Byte offset just after the last intact commit frame. */
  committedEnd: number;
  /** Intact frames of this WAL after the last commit: a transaction that never committed. */
  uncommittedFrames: number;
  /** Offset of the first frame of this WAL whose checksum fails, if any. */
  damagedAt: number | undefined;
  /** Commit frames of this WAL found after the damaged one: transactions SQLite will drop. */
  commitsAfterDamage: number;
  /** Bytes after the last whole frame: the file ends inside a frame. */
  partialBytes: number;
}

/**
 * Reads a WAL file's header and frames and checks their salts and running checksums, without
 * opening the database. Frames carrying another salt are left over from before the WAL was
 * last restarted and are normal; frames carrying this WAL's salt that fail their checksum,
 * or a file that ends inside a frame, mean SQLite will drop what follows (docs/durability.md).
 */
export function scanWal(path: string): WalScan {
  const scan: WalScan = {
    exists: existsSync(path),
    size: 0,
    pageSize: 0,
    headerValid: false,
    committedFrames: 0,
    commits: 0,
    committedEnd: HEADER_BYTES,
    uncommittedFrames: 0,
    damagedAt: undefined,
    commitsAfterDamage: 0,
    partialBytes: 0,
  };
  if (!scan.exists) return scan;

  const fd = openSync(path, 'r');
  try {
    scan.size = fstatSync(fd).size;
    if (scan.size < HEADER_BYTES) {
      scan.partialBytes = scan.size;
      return scan;
    }
    const header = readAt(fd, 0, HEADER_BYTES);
    const magic = header.readUInt32BE(0);
    if ((magic & 0xfffffffe) !== MAGIC) return scan;
    const bigEndian = (magic & 1) === 1;
    scan.pageSize = header.readUInt32BE(8);
    const salt1 = header.readUInt32BE(16);
    const salt2 = header.readUInt32BE(20);
    let sum = checksum(header.subarray(0, 24), bigEndian, [0, 0]);
    if (sum[0] !== header.readUInt32BE(24) || sum[1] !== header.readUInt32BE(28)) return scan;
    if (!isPageSize(scan.pageSize)) return scan;
    scan.headerValid = true;

    const frameBytes = FRAME_HEADER_BYTES + scan.pageSize;
    const whole = Math.floor((scan.size - HEADER_BYTES) / frameBytes);
    scan.partialBytes = scan.size - HEADER_BYTES - whole * frameBytes;
    let sinceCommit = 0;
    for (let i = 0; i < whole; i++) {
      const offset = HEADER_BYTES + i * frameBytes;
      const frame = readAt(fd, offset, frameBytes);
      const ours = frame.readUInt32BE(8) === salt1 && frame.readUInt32BE(12) === salt2;
      if (!ours) break;
      const isCommit = frame.readUInt32BE(4) !== 0;

      if (scan.damagedAt !== undefined) {
        if (isCommit) scan.commitsAfterDamage += 1;
        continue;
      }
      const next = checksum(frame.subarray(0, 8), bigEndian, sum);
      const after = checksum(frame.subarray(FRAME_HEADER_BYTES), bigEndian, next);
      if (after[0] !== frame.readUInt32BE(16) || after[1] !== frame.readUInt32BE(20)) {
        scan.damagedAt = offset;
        continue;
      }
      sum = after;
      sinceCommit += 1;
      if (isCommit) {
        scan.commits += 1;
        scan.committedFrames += sinceCommit;
        scan.committedEnd = offset + frameBytes;
        sinceCommit = 0;
      }
    }
    scan.uncommittedFrames = sinceCommit;
    return scan;
  } finally {
    closeSync(fd);
  }
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  readSync(fd, buffer, 0, length, position);
  return buffer;
}

/** SQLite's WAL checksum: two running 32-bit sums over pairs of words. */
function checksum(data: Buffer, bigEndian: boolean, start: [number, number]): [number, number] {
  let s0 = start[0];
  let s1 = start[1];
  for (let i = 0; i + 8 <= data.length; i += 8) {
    const a = bigEndian ? data.readUInt32BE(i) : data.readUInt32LE(i);
    const b = bigEndian ? data.readUInt32BE(i + 4) : data.readUInt32LE(i + 4);
    s0 = (s0 + a + s1) >>> 0;
    s1 = (s1 + b + s0) >>> 0;
  }
  return [s0, s1];
}

function isPageSize(size: number): boolean {
  return size >= 512 && size <= 65536 && (size & (size - 1)) === 0;
}
