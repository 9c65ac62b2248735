/**
 * Asynchronous work accepted and not yet settled, so that whatever closes a resource can first
 * wait for the work that still uses it: a run's uploads not awaited by its caller (`Run.stop`),
 * the tasks of a worker pool (`ArtifactStore.close`).
 */
export class PendingWork {
  readonly #settling = new Set<Promise<void>>();

  /** Tracks `work` until it settles and hands it back unchanged. */
  track<T>(work: Promise<T>): Promise<T> {
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.#settling.add(settled);
    void settled.then(() => this.#settling.delete(settled));
    return work;
  }

  /** Resolves once everything tracked has settled, including work tracked meanwhile. */
  async drain(): Promise<void> {
    while (this.#settling.size > 0) await Promise.all([...this.#settling]);
  }
}
