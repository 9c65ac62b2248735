/**
 * Turns to put a request body on the wire, one at a time in the order asked for; `acquire`
 * resolves with the function that ends the turn (calling it again does nothing). Uploads read
 * and wait for answers side by side, but only one body is being sent, so a pass killed at any
 * moment has at most one object half sent.
 */
export class WireTurn {
  #tail: Promise<void> = Promise.resolve();

  async acquire(): Promise<() => void> {
    let end: () => void = () => {};
    const turn = new Promise<void>((resolve) => {
      end = resolve;
    });
    const before = this.#tail;
    this.#tail = before.then(() => turn);
    await before;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      end();
    };
  }
}
