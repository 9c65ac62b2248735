import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { initRun, openReadOnly, runQuery, Store } from '@tidemark/core';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const DOC = readFileSync(
  fileURLToPath(new URL('../../../docs/store-schema.md', import.meta.url)),
  'utf8',
);

/** The views table of docs/store-schema.md: view name to its documented columns. */
function documentedViews(): Map<string, string[]> {
  const section = DOC.slice(DOC.indexOf('## Views'), DOC.indexOf('## Values'));
  const out = new Map<string, string[]>();
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    const name = /^`(\w+)`$/.exec(cells[1] ?? '')?.[1];
    const columns = /^`([^`]+)`$/.exec(cells[3] ?? '')?.[1];
    if (name !== undefined && columns !== undefined) out.set(name, columns.split(', '));
  }
  return out;
}

describe('docs/store-schema.md', () => {
  it('lists every view with exactly the columns the store has', async () => {
    const dir = tempDir();
    const store = Store.open({ dir });
    const views = store.db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name")
      .pluck()
      .all() as string[];
    const actual = new Map(
      views.map((view) => [
        view,
        store.db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all(view) as string[],
      ]),
    );
    await store.close();
    expect(Object.fromEntries(documentedViews())).toEqual(Object.fromEntries(actual));
  });

  it('gives a "best runs by val_accuracy" query that never lets a NaN run win', async () => {
    const sql = /### Best runs[\s\S]*?```sql\n([\s\S]*?)```/.exec(DOC)?.[1];
    expect(sql).toBeDefined();
    const dir = tempDir();
    const store = Store.open({ dir });
    for (const [name, values] of [
      ['steady', [0.6, 0.8, 0.79]],
      ['spiky', [0.1, 0.95, Number.NaN]],
      ['nan', [Number.NaN]],
      ['inf-loss-only', [0.2]],
    ] as const) {
      const run = await initRun({
        project: 'p',
        name,
        store,
        captureContext: false,
        handleExit: false,
      });
      for (const [step, v] of values.entries()) run.log('metrics/val_accuracy', v, { step });
      await run.stop();
    }
    await store.close();

    const db = openReadOnly(dir);
    const rows = runQuery(db, sql as string).rows.map((row) => [row[1], row[2]]);
    expect(rows).toEqual([
      ['spiky', 0.95],
      ['steady', 0.8],
      ['inf-loss-only', 0.2],
    ]);
    db.close();
  });
});
