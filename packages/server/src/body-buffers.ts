/**
 * Buffers kept for reuse by chunk uploads. On many virtual machines the first touch of fresh
 * memory is slow (the host faults in and zeroes every page), and a buffer per chunk would make
 * a gigabyte upload touch a gigabyte of it; a few kept buffers pay that cost once.
 */
export class BodyBuffers {
  readonly size: number;
  readonly #keep: number;
  readonly #free: Buffer[] = [];

  constructor(size: number, keep: number) {
    this.size = size;
    this.#keep = keep;
  }

  /** A buffer of `size` bytes holding whatever it held before; give it back when done. */
  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  give(buffer: Buffer): void {
    if (this.#free.length < this.#keep) this.#free.push(buffer);
  }
}
