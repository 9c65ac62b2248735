import type Database from 'better-sqlite3';

/** The statements a run writes with, prepared once per run. */
export interface RunStatements {
  upsertField: Database.Statement;
  insertSeries: Database.Statement;
  findSeries: Database.Statement;
  upsertFile: Database.Statement;
  addTag: Database.Statement;
  removeTag: Database.Statement;
}

export function prepareStatements(db: Database.Database): RunStatements {
  return {
    upsertField: db.prepare(
      `INSERT INTO fields (run_id, path, type, value, num, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(run_id, path) DO UPDATE SET type = excluded.type, value = excluded.value,
       num = excluded.num, updated_at = excluded.updated_at`,
    ),
    insertSeries: db.prepare('INSERT OR IGNORE INTO series (run_id, path, type) VALUES (?, ?, ?)'),
    findSeries: db.prepare(
      `SELECT id, type, last_step, point_count - packed_count AS unpacked, packed_through
       FROM series WHERE run_id = ? AND path = ?`,
    ),
    upsertFile: db.prepare(
      `INSERT INTO files (run_id, path, kind, manifest, size, file_count, logged_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(run_id, path) DO UPDATE SET kind = excluded.kind, manifest = excluded.manifest,
       size = excluded.size, file_count = excluded.file_count, logged_at = excluded.logged_at`,
    ),
    addTag: db.prepare('INSERT OR IGNORE INTO tags (run_id, tag) VALUES (?, ?)'),
    removeTag: db.prepare('DELETE FROM tags WHERE run_id = ? AND tag = ?'),
  };
}
