/** One measured figure: the product's number beside the physical reference taken in the same run. */
export interface Measurement {
  name: string;
  value: number;
  unit: string;
  /** What the product reached divided by the reference (higher is better unless stated). */
  ratio?: number;
  reference?: string;
  target?: string;
  /** Whether the target is met; undefined where there is no target. */
  met?: boolean;
}

export interface SuiteResult {
  title: string;
  measurements: Measurement[];
  notes?: string[];
}

/** A benchmark suite: runs its warm-up and repeated rounds and returns its figures. */
export interface Suite {
  name: string;
  run(workDir: string): Promise<SuiteResult>;
}

/** Median of several rounds after warm-up: shared machines are noisy, one run proves little. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Runs `fn` `warmup` times unmeasured, then `rounds` times, returning each round's seconds. */
export async function rounds(
  fn: () => Promise<void> | void,
  options: { warmup?: number; rounds?: number } = {},
): Promise<number[]> {
  for (let i = 0; i < (options.warmup ?? 1); i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < (options.rounds ?? 5); i++) {
    const start = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  return times;
}
