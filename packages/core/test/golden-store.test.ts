import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type Digest,
  decodeField,
  encodeField,
  type FieldType,
  getRun,
  initRun,
  listRuns,
  type Op,
  openReadOnly,
  readSeries,
  type Seq,
  Store,
  toWireFloat,
  verifyStore,
} from '@tidemark/core';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const GOLDEN = fileURLToPath(new URL('./golden/', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));

interface GoldenRun {
  id: string;
  project: string;
  name: string | null;
  description: string | null;
  state: string;
  failure: string | null;
  forkOf: string | null;
  forkStep: number | null;
  createdAt: number;
  tags: string[];
  fields: Array<[string, FieldType, string]>;
  files: unknown[];
  series: Record<string, { type: string; points: Array<[number, number, unknown]> }>;
}

interface Golden {
  version: string;
  migrations: Array<[string, number]>;
  runs: GoldenRun[];
  ops: Op[];
}

const versions = readdirSync(GOLDEN)
  .filter((name) => /^store-v\d+\.json$/.test(name))
  .map((name) => name.slice('store-'.length, -'.json'.length));

describe('golden stores of every released schema', () => {
  it('has at least the first released schema under test', () => {
    expect(versions).toContain('v1');
  });

  for (const version of versions) {
    it(`opens store-${version} with this version and reads every value back exactly`, async () => {
      const golden = JSON.parse(
        readFileSync(join(GOLDEN, `store-${version}.json`), 'utf8'),
      ) as Golden;
      const dir = tempDir();
      cpSync(join(GOLDEN, `store-${version}`), dir, { recursive: true });

      const store = Store.open({ dir });
      const ops = store.journal.readAfter(0 as Seq, { maxEntries: 1e6, maxPoints: 1e9 });
      await store.close();
      expect(ops.map((e) => e.op)).toEqual(golden.ops);

      const db = openReadOnly(dir);
      const applied = db.prepare('SELECT hash, created_at FROM __drizzle_migrations').raw().all();
      expect(applied.slice(0, golden.migrations.length)).toEqual(golden.migrations);
      expect(listRuns(db).map((r) => r.id)).toEqual(golden.runs.map((r) => r.id));
      for (const expected of golden.runs) {
        const run = getRun(db, expected.id);
        expect(run).toMatchObject({
          project: expected.project,
          name: expected.name,
          description: expected.description,
          state: expected.state,
          failure: expected.failure,
          forkOf: expected.forkOf,
          forkStep: expected.forkStep,
          createdAt: expected.createdAt,
          tags: expected.tags,
          files: expected.files,
        });
        const raw = db
          .prepare('SELECT path, type, value FROM fields WHERE run_id = ? ORDER BY path')
          .raw()
          .all(expected.id);
        expect(raw).toEqual(expected.fields);
        for (const [path, type, text] of expected.fields) {
          const value = decodeField(type, text);
          expect(encodeField(value, path)).toMatchObject({ text });
        }
        expect(run.series.map((s) => s.path).sort()).toEqual(Object.keys(expected.series).sort());
        for (const [path, series] of Object.entries(expected.series)) {
          const points = readSeries(db, expected.id, path).map((p) => [
            p.step,
            p.ts,
            typeof p.value === 'number' ? toWireFloat(p.value) : p.value,
          ]);
          expect(points, path).toEqual(series.points);
        }
      }
      db.close();

      const report = await verifyStore({ dir });
      expect(report.findings.filter((f) => f.severity !== 'info')).toEqual([]);

      // Logged files restore byte for byte from the golden objects.
      const store2 = Store.open({ dir });
      const manifests = store2.db
        .prepare(
          `SELECT manifest FROM files UNION SELECT p.text FROM points p
           JOIN series s ON s.id = p.series_id WHERE s.type = 'file'`,
        )
        .pluck()
        .all() as Digest[];
      expect(manifests.length).toBeGreaterThan(0);
      for (const manifest of manifests) {
        const out = join(tempDir(), 'restored');
        await store2.objects.restore(manifest, out);
        expect(readFileSync(out, 'utf8')).toBe('golden artifact bytes\n'.repeat(100));
      }
      await store2.close();

      // The migrated store takes new writes.
      const run = await initRun({
        project: 'golden/values',
        dir,
        captureContext: false,
        handleExit: false,
      });
      run.log('metrics/val_accuracy', 0.99);
      await run.stop();
    });
  }

  it('reads a fork of the v1 store with its parent points up to the fork step', () => {
    const golden = JSON.parse(readFileSync(join(GOLDEN, 'store-v1.json'), 'utf8')) as Golden;
    const fork = golden.runs.find((r) => r.name === 'fork') as GoldenRun;
    const dir = tempDir();
    cpSync(join(GOLDEN, 'store-v1'), dir, { recursive: true });
    const db = openReadOnly(dir);
    const steps = readSeries(db, fork.id, 'metrics/val_accuracy', { includeForkParents: true }).map(
      (p) => p.step,
    );
    expect(steps).toEqual([0, 1, 2, 3, 4]);
    db.close();
  });

  it('refuses a store whose applied migration differs from the shipped one, and leaves it as it was', () => {
    const dir = tempDir();
    cpSync(join(GOLDEN, 'store-v1'), dir, { recursive: true });
    const db = new Database(join(dir, 'store.db'));
    db.prepare(
      "UPDATE __drizzle_migrations SET hash = 'edited' WHERE created_at = (SELECT min(created_at) FROM __drizzle_migrations)",
    ).run();
    db.close();
    const before = readFileSync(join(dir, 'store.db'));
    expect(() => Store.open({ dir })).toThrow(/different 0000_initial/);
    expect(readFileSync(join(dir, 'store.db')).equals(before)).toBe(true);
  });

  it('fails the migration check when a shipped migration is edited', () => {
    const ok = spawnSync('bash', [join(REPO, 'scripts/check-migrations.sh')], { encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);

    const copy = tempDir();
    cpSync(join(REPO, 'scripts'), join(copy, 'scripts'), { recursive: true });
    cpSync(join(REPO, 'migrations'), join(copy, 'migrations'), { recursive: true });
    appendFileSync(join(copy, 'migrations/0001_views.sql'), '\n-- a harmless-looking edit\n');
    const edited = spawnSync('bash', [join(copy, 'scripts/check-migrations.sh')], {
      encoding: 'utf8',
    });
    expect(edited.status).toBe(1);
    expect(edited.stderr).toMatch(/0001_views\.sql was edited/);
  });
});
