import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { initRun, openReadOnly, readSeries, readSeriesColumns, Store } from '@tidemark/core';
import Database from 'better-sqlite3';
import { median, type Suite } from './suite.js';

const POINTS = 1_000_000;
const SERIES = 20;
const BATCH = 10_000;
const ROUNDS = 5;
const DURABLE_CALLS = 2_000;

/**
 * The local store's write and read paths against better-sqlite3 doing the same work by hand
 * on the same table layout, measured side by side in the same process and on the same disk,
 * alternating rounds so that noise from a shared machine falls on both sides alike.
 */
export const storeSuite: Suite = {
  name: 'store',
  async run(workDir) {
    const values = pseudoRandom(POINTS);
    const batched = await compareBatched(workDir, values);
    const durable = await compareDurable(workDir);
    const read = await measureRead(workDir, values);
    const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
    return {
      title: `Local store: logging and reading (${fmt(POINTS)} points)`,
      measurements: [
        {
          name: `batched run.log, ${SERIES} series, commits of ${fmt(BATCH)}`,
          value: batched.product,
          unit: 'points/s',
          reference: `raw better-sqlite3 inserts, same layout and commit size: ${fmt(batched.raw)} points/s`,
          ratio: batched.product / batched.raw,
          target: '≥ 500,000 points/s and ratio ≥ 0.8',
          met: batched.product >= 500_000 && batched.product / batched.raw >= 0.8,
        },
        {
          name: 'durable run.log, median of one call',
          value: durable.product,
          unit: 'µs',
          reference: `raw autocommit insert, same layout: ${durable.raw.toFixed(1)} µs`,
          ratio: durable.product / durable.raw,
          target: 'ratio ≤ 2 (lower is better)',
          met: durable.product / durable.raw <= 2,
        },
        {
          name: 'read one 1,000,000-point series as columns (readSeriesColumns)',
          value: read.columns,
          unit: 'ms',
          reference: `same points as rows through better-sqlite3: ${read.rows.toFixed(0)} ms`,
          ratio: read.columns / read.rows,
          target: '< 100 ms (lower is better)',
          met: read.columns < 100,
        },
        {
          name: 'read the same series as point objects (readSeries)',
          value: read.objects,
          unit: 'ms',
        },
      ],
      notes: [
        `batched: ${ROUNDS} rounds each after a warm-up, alternating product and reference, each into a fresh store; the reference inserts the same values with one prepared statement in immediate transactions of ${fmt(BATCH)} rows.`,
        `batched rounds (points/s): product ${batched.productRounds.map(fmt).join(', ')}; reference ${batched.rawRounds.map(fmt).join(', ')}.`,
        `batched by CPU time of the process (steadier on a shared machine): product ${fmt(batched.productCpu)} points per CPU-second, reference ${fmt(batched.rawCpu)}, ratio ${(batched.productCpu / batched.rawCpu).toFixed(2)}.`,
        `durable: ${ROUNDS} rounds of ${fmt(DURABLE_CALLS)} calls each side, alternating; every call commits (synchronous=NORMAL, WAL) before it returns, in the product with the series summary in the same transaction.`,
        'read: median of 5 reads after a warm-up; the series was written in batched mode, so most of it is read from its packed blocks and the rest row by row.',
      ],
    };
  },
};

interface Timing {
  wall: number;
  /** CPU seconds (user and system) of this process: steadier than wall time on a busy machine. */
  cpu: number;
}

interface BatchedComparison {
  product: number;
  raw: number;
  productCpu: number;
  rawCpu: number;
  productRounds: number[];
  rawRounds: number[];
}

async function compareBatched(workDir: string, values: Float64Array): Promise<BatchedComparison> {
  const paths = Array.from({ length: SERIES }, (_, i) => `metrics/series_${i}`);
  const product: Timing[] = [];
  const raw: Timing[] = [];
  for (let round = 0; round <= ROUNDS; round++) {
    const p = await timeProduct(join(workDir, `batched-${round}`), values, paths);
    const r = await timeRaw(join(workDir, `raw-${round}`), values);
    // Round 0 is the warm-up.
    if (round > 0) {
      product.push(p);
      raw.push(r);
    }
  }
  const rate = (timings: Timing[], key: keyof Timing): number =>
    median(timings.map((t) => POINTS / t[key]));
  return {
    product: rate(product, 'wall'),
    raw: rate(raw, 'wall'),
    productCpu: rate(product, 'cpu'),
    rawCpu: rate(raw, 'cpu'),
    productRounds: product.map((t) => POINTS / t.wall),
    rawRounds: raw.map((t) => POINTS / t.wall),
  };
}

function startTiming(): () => Timing {
  const wall = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(cpu);
    return {
      wall: Number(process.hrtime.bigint() - wall) / 1e9,
      cpu: (used.user + used.system) / 1e6,
    };
  };
}

async function timeProduct(dir: string, values: Float64Array, paths: string[]): Promise<Timing> {
  const store = Store.open({ dir });
  const run = await initRun({
    project: 'bench/batched',
    store,
    logMode: 'batched',
    maxBufferedPoints: BATCH,
    flushIntervalMs: 3_600_000,
    captureContext: false,
    handleExit: false,
  });
  const stop = startTiming();
  for (let i = 0; i < POINTS; i++) {
    run.log(paths[i % SERIES] as string, values[i] as number, { step: Math.floor(i / SERIES) });
  }
  // POINTS is a multiple of BATCH: the last log call committed the last batch.
  const timing = stop();
  await run.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return timing;
}

async function timeRaw(dir: string, values: Float64Array): Promise<Timing> {
  const db = await layoutOnly(dir);
  const insert = db.prepare(
    'INSERT INTO points (series_id, step, ts, value, flag, text) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const commit = db.transaction((from: number) => {
    const now = Date.now();
    for (let i = from; i < from + BATCH; i++) {
      insert.run((i % SERIES) + 1, Math.floor(i / SERIES), now, values[i], 0, null);
    }
  });
  const stop = startTiming();
  for (let from = 0; from < POINTS; from += BATCH) commit.immediate(from);
  const timing = stop();
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return timing;
}

async function compareDurable(workDir: string): Promise<{ product: number; raw: number }> {
  const productDir = join(workDir, 'durable');
  const store = Store.open({ dir: productDir });
  const run = await initRun({
    project: 'bench/durable',
    store,
    captureContext: false,
    handleExit: false,
  });
  const rawDir = join(workDir, 'durable-raw');
  const db = await layoutOnly(rawDir);
  const insert = db.prepare(
    'INSERT INTO points (series_id, step, ts, value, flag, text) VALUES (?, ?, ?, ?, ?, ?)',
  );

  const productTimes: number[] = [];
  const rawTimes: number[] = [];
  let step = 0;
  for (let round = 0; round <= ROUNDS; round++) {
    for (let i = 0; i < DURABLE_CALLS; i++) {
      const start = process.hrtime.bigint();
      run.log('metrics/loss', i / 7, { step });
      const took = Number(process.hrtime.bigint() - start) / 1000;
      if (round > 0) productTimes.push(took);
      step += 1;
    }
    for (let i = 0; i < DURABLE_CALLS; i++) {
      const start = process.hrtime.bigint();
      insert.run(1, step + i, Date.now(), i / 7, 0, null);
      const took = Number(process.hrtime.bigint() - start) / 1000;
      if (round > 0) rawTimes.push(took);
    }
  }
  await run.stop();
  await store.close();
  db.close();
  rmSync(productDir, { recursive: true, force: true });
  rmSync(rawDir, { recursive: true, force: true });
  return { product: median(productTimes), raw: median(rawTimes) };
}

async function measureRead(
  workDir: string,
  values: Float64Array,
): Promise<{ columns: number; objects: number; rows: number }> {
  const dir = join(workDir, 'read');
  const run = await initRun({
    project: 'bench/read',
    dir,
    logMode: 'batched',
    maxBufferedPoints: 50_000,
    captureContext: false,
    handleExit: false,
  });
  for (let i = 0; i < POINTS; i++) run.log('metrics/loss', values[i] as number, { step: i });
  await run.stop();

  const db = openReadOnly(dir);
  const time = (fn: () => unknown, rounds: number): number => {
    fn();
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const start = process.hrtime.bigint();
      fn();
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    return median(times);
  };
  const seriesId = db
    .prepare("SELECT id FROM series WHERE path = 'metrics/loss'")
    .pluck()
    .get() as number;
  const rows = db
    .prepare('SELECT step, ts, value, flag FROM points WHERE series_id = ? ORDER BY step')
    .raw();
  const result = {
    columns: time(() => readSeriesColumns(db, run.id, 'metrics/loss'), 5),
    objects: time(() => readSeries(db, run.id, 'metrics/loss'), 3),
    rows: time(() => rows.all(seriesId), 3),
  };
  const check = readSeriesColumns(db, run.id, 'metrics/loss');
  db.close();
  if (check.values?.length !== POINTS || check.values[POINTS - 1] !== values[POINTS - 1]) {
    throw new Error('the series read back does not match what was written');
  }
  rmSync(dir, { recursive: true, force: true });
  return result;
}

/** A fresh store's schema with nothing written through tidemark: the reference's table. */
async function layoutOnly(dir: string): Promise<Database.Database> {
  mkdirSync(dir, { recursive: true });
  await Store.open({ dir }).close();
  const db = new Database(join(dir, 'store.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}

/** Deterministic values in [0, 1), so both sides insert the same numbers. */
function pseudoRandom(n: number): Float64Array {
  const out = new Float64Array(n);
  let seed = 12345;
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    out[i] = seed / 2 ** 31;
  }
  return out;
}
