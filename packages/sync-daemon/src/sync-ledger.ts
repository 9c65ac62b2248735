import type { RunId, Seq, Store } from '@tidemark/core';

/**
 * What the local store remembers about one remote: how far it confirmed the journal (the
 * cursor), how far it confirmed each project synced on its own (`only` passes), and which
 * runs it will not receive (quarantine).
 *
 * Cursor keys live in core's `sync_cursors` table. The remote's own key is its normal URL;
 * a project cursor is `<url>#only=<project>`, which no normal URL can equal (they carry no
 * fragment). Invariant of both: every entry at or below the key's seq that the key covers
 * (all entries, or the project's) has been confirmed by the server.
 */
export class SyncLedger {
  readonly remote: string;
  readonly #store: Store;
  readonly #clock: () => number;

  constructor(store: Store, remote: string, clock: () => number) {
    this.#store = store;
    this.remote = remote;
    this.#clock = clock;
  }

  cursor(): Seq {
    return this.#store.journal.getCursor(this.remote);
  }

  advance(seq: Seq): void {
    this.#store.journal.setCursor(this.remote, seq, this.#clock());
  }

  projectCursor(project: string): Seq {
    return this.#store.journal.getCursor(this.#projectKey(project));
  }

  advanceProject(project: string, seq: Seq): void {
    this.#store.journal.setCursor(this.#projectKey(project), seq, this.#clock());
  }

  /** Every project cursor of this remote, by project. */
  projectCursors(): Map<string, Seq> {
    const prefix = this.#projectKey('');
    const rows = this.#store.db
      .prepare('SELECT remote, seq FROM sync_cursors WHERE substr(remote, 1, ?) = ?')
      .all(prefix.length, prefix) as Array<{ remote: string; seq: number }>;
    return new Map(rows.map((row) => [row.remote.slice(prefix.length), row.seq as Seq]));
  }

  /** Forgets project cursors the remote's own cursor has passed: they say nothing more. */
  dropProjectCursorsUpTo(seq: Seq): void {
    const prefix = this.#projectKey('');
    this.#store.db
      .prepare('DELETE FROM sync_cursors WHERE substr(remote, 1, ?) = ? AND seq <= ?')
      .run(prefix.length, prefix, seq);
  }

  quarantined(): Map<RunId, string> {
    const rows = this.#store.db
      .prepare('SELECT run_id AS runId, reason FROM quarantine WHERE remote = ?')
      .all(this.remote) as Array<{ runId: RunId; reason: string }>;
    return new Map(rows.map((row) => [row.runId, row.reason]));
  }

  /** Records that `runId` is held back from this remote. The first reason recorded stays. */
  quarantine(runId: RunId, reason: string): void {
    this.#store.db
      .prepare('INSERT OR IGNORE INTO quarantine (remote, run_id, reason, at) VALUES (?, ?, ?, ?)')
      .run(this.remote, runId, reason, this.#clock());
  }

  /** Forgets that `runId` is held back from this remote; answers whether it was. */
  release(runId: RunId): boolean {
    const result = this.#store.db
      .prepare('DELETE FROM quarantine WHERE remote = ? AND run_id = ?')
      .run(this.remote, runId);
    return result.changes > 0;
  }

  /** Journal entries after `after`, all of them or only those of `project`. */
  countAfter(after: Seq, project?: string): number {
    if (project === undefined) return this.#store.journal.countAfter(after);
    const row = this.#store.db
      .prepare(
        `SELECT count(*) AS n FROM journal j
         JOIN runs r ON r.id = j.run_id JOIN projects p ON p.id = r.project_id
         WHERE j.seq > ? AND p.name = ?`,
      )
      .get(after, project) as { n: number };
    return row.n;
  }

  #projectKey(project: string): string {
    return `${this.remote}#only=${project}`;
  }
}
