import type { FileHandle } from 'node:fs/promises';
import { CHUNK_MAX } from './chunker.js';
import { ArtifactError } from './errors.js';

/** Bytes read from the source at a time. */
const BLOCK = 8 * 1024 * 1024;

/** Room before each block for the bytes of the previous one not yet cut into a chunk. */
const HEAD = CHUNK_MAX;

/**
 * Reads a source file front to back as one sliding window `buffer[start, end)`, reading the
 * next block while the caller hashes the current one. Reading stops at the size the file had
 * when it was opened, so bytes appended meanwhile are not part of the snapshot (issue 4).
 *
 * Block buffers are reused once nothing holds them: a caller that hands a slice of the window
 * to an object write pins its buffer until the write is done, so memory stays bounded by the
 * writes allowed in flight whatever the size of the file.
 */
export class BlockReader {
  buffer: Buffer = Buffer.alloc(0);
  start = 0;
  end = 0;
  readonly #handle: FileHandle;
  readonly #source: string;
  readonly #total: number;
  #requested = 0;
  #next: Promise<{ buffer: Buffer; length: number }> | undefined;
  readonly #pins = new Map<Buffer, number>();
  readonly #free: Buffer[] = [];

  /** Reads `[from, total)` of the file; `from` is where the first chunk starts. */
  constructor(handle: FileHandle, source: string, total: number, from = 0) {
    this.#handle = handle;
    this.#source = source;
    this.#total = total;
    this.#requested = from;
    this.#prefetch();
  }

  /** Bytes in the window. */
  get available(): number {
    return this.end - this.start;
  }

  /** Whether the window holds everything up to the snapshot's end. */
  get atEnd(): boolean {
    return this.#next === undefined;
  }

  /** Drops `length` bytes from the front of the window. */
  consume(length: number): void {
    this.start += length;
  }

  /** Keeps the window's buffer from reuse until the returned function is called. */
  pin(): () => void {
    const buffer = this.buffer;
    this.#pins.set(buffer, (this.#pins.get(buffer) ?? 0) + 1);
    return () => {
      const left = (this.#pins.get(buffer) ?? 1) - 1;
      if (left > 0) {
        this.#pins.set(buffer, left);
        return;
      }
      this.#pins.delete(buffer);
      if (buffer !== this.buffer) this.#free.push(buffer);
    };
  }

  /**
   * Moves the next block into the window behind the bytes still in it, which must be fewer
   * than CHUNK_MAX. Afterwards more than CHUNK_MAX bytes are in the window unless the
   * snapshot's end is in it.
   */
  async advance(): Promise<void> {
    const next = this.#next;
    if (next === undefined) return;
    const { buffer, length } = await next;

    const carry = this.end - this.start;
    this.buffer.copy(buffer, HEAD - carry, this.start, this.end);
    const previous = this.buffer;
    this.buffer = buffer;
    if (previous.length > 0 && !this.#pins.has(previous)) this.#free.push(previous);
    this.start = HEAD - carry;
    this.end = HEAD + length;
    this.#prefetch();
  }

  #prefetch(): void {
    const want = Math.min(BLOCK, this.#total - this.#requested);
    if (want <= 0) {
      this.#next = undefined;
      return;
    }
    const position = this.#requested;
    this.#requested += want;
    this.#next = this.#readBlock(position, want);
    // The rejection is observed by advance(); until then it must not count as unhandled.
    this.#next.catch(() => undefined);
  }

  async #readBlock(position: number, want: number): Promise<{ buffer: Buffer; length: number }> {
    const reused = this.#free.pop();
    const buffer = reused ?? Buffer.allocUnsafeSlow(HEAD + BLOCK);
    let length = 0;
    while (length < want) {
      const { bytesRead } = await this.#handle.read(
        buffer,
        HEAD + length,
        want - length,
        position + length,
      );
      if (bytesRead === 0) throw sourceShrank(this.#source, position + length, this.#total);
      length += bytesRead;
    }
    return { buffer, length };
  }
}

function sourceShrank(source: string, offset: number, expected: number): ArtifactError {
  return new ArtifactError(
    'source_changed',
    `${source} ended at byte ${offset} while being read; it had ${expected} bytes when opened`,
    {
      hint:
        'Another process truncated or rewrote the file while it was logged. Log it again once ' +
        'written; writing checkpoints to a new name and renaming avoids this.',
      retryable: true,
    },
  );
}
