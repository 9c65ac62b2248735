/**
 * Pieces smaller than this are copied into shared blocks of this size instead of being kept as
 * they came. Every kept piece costs a Buffer and an allocation whatever its length, so a body
 * sent a byte at a time would otherwise cost the server far more memory than its bytes.
 */
const SMALL_PIECE = 16 * 1024;

/**
 * The bytes of one chunk as they come off the socket, kept without copying them into one buffer:
 * large pieces as they are, runs of small ones gathered into blocks of SMALL_PIECE bytes. The
 * memory held is at most about twice the bytes added, however the body was cut into pieces.
 */
export class ChunkPieces {
  readonly #pieces: Buffer[] = [];
  #block: Buffer | undefined;
  #blockFilled = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  add(piece: Buffer): void {
    this.#length += piece.length;
    if (piece.length >= SMALL_PIECE) {
      this.#closeBlock();
      this.#pieces.push(piece);
      return;
    }

    for (let offset = 0; offset < piece.length; ) {
      this.#block ??= Buffer.allocUnsafe(SMALL_PIECE);
      const copied = piece.copy(this.#block, this.#blockFilled, offset);
      this.#blockFilled += copied;
      offset += copied;
      if (this.#blockFilled === SMALL_PIECE) this.#closeBlock();
    }
  }

  /** The pieces in order; adding afterwards is a mistake. */
  finish(): Buffer[] {
    this.#closeBlock();
    return this.#pieces;
  }

  #closeBlock(): void {
    if (this.#block === undefined || this.#blockFilled === 0) return;
    this.#pieces.push(this.#block.subarray(0, this.#blockFilled));
    this.#block = undefined;
    this.#blockFilled = 0;
  }
}
