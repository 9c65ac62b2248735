/**
 * The chunk uploads a server is receiving, per project. A client killed mid-upload leaves its
 * last request to be drained and stored for a moment after it died; a presence answer given
 * meanwhile would call those chunks missing and have the next pass send them a second time. So
 * `missing` and `commit` first wait for the uploads of their project that were under way when
 * they were asked (not for later ones, so a busy project cannot hold them off), and for a few
 * seconds at most: an upload that stalls (a half-open connection, a body sent a byte at a time)
 * must not hold the project's answers until the request times out.
 */
export class UploadsInProgress {
  readonly #byProject = new Map<string, Set<Promise<unknown>>>();

  /** Runs an upload of `project`, counted as under way until it settles. */
  async track<T>(project: string, upload: () => Promise<T>): Promise<T> {
    const running = this.#byProject.get(project) ?? new Set<Promise<unknown>>();
    this.#byProject.set(project, running);
    const work = upload();
    running.add(work);
    try {
      return await work;
    } finally {
      running.delete(work);
      if (running.size === 0) this.#byProject.delete(project);
    }
  }

  /**
   * Resolves once the uploads of `project` under way now have settled, however they ended, or
   * after `patienceMs`, whichever comes first.
   */
  async settled(project: string, patienceMs: number): Promise<void> {
    const running = this.#byProject.get(project);
    if (running === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    const patience = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, patienceMs);
    });
    try {
      await Promise.race([Promise.allSettled([...running]), patience]);
    } finally {
      clearTimeout(timer);
    }
  }
}
