import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SuiteResult } from './suite.js';
import { SUITES } from './suites.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Runs the benchmark suites (all, or those named on the command line) and writes
 * docs/benchmarks.md with the machine they ran on. Work files live in a temp folder under the
 * repository's disk so that disk references and the product measure the same device.
 */
async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((name) => !SUITES.some((suite) => suite.name === name));
  if (unknown.length > 0) {
    process.stderr.write(
      `unknown suite(s): ${unknown.join(', ')}; known: ${SUITES.map((s) => s.name).join(', ')}\n`,
    );
    process.exitCode = 2;
    return;
  }
  const selected =
    wanted.length === 0 ? SUITES : SUITES.filter((suite) => wanted.includes(suite.name));

  const base = join(REPO, '.bench-tmp');
  mkdirSync(base, { recursive: true });
  const results: SuiteResult[] = [];
  for (const suite of selected) {
    const work = mkdtempSync(join(base, `${suite.name}-`));
    process.stderr.write(`event=bench_start suite=${suite.name}\n`);
    try {
      const result = await suite.run(work);
      results.push(result);
      for (const m of result.measurements) {
        process.stderr.write(
          `event=measured suite=${suite.name} name=${JSON.stringify(m.name)} value=${m.value} unit=${m.unit} ratio=${m.ratio ?? ''}\n`,
        );
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  const path = join(
    REPO,
    'docs',
    wanted.length === 0 ? 'benchmarks.md' : `benchmarks-${wanted.join('-')}.md`,
  );
  writeFileSync(path, render(results));
  process.stderr.write(`event=bench_written path=${path}\n`);
}

function render(results: SuiteResult[]): string {
  const cpu = cpus()[0]?.model ?? 'unknown cpu';
  const lines = [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} × ${cpu}, ` +
      `${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${process.platform}. Each figure is a median of several rounds after a warm-up; ` +
      'ratios compare against a physical reference measured in the same run on the same disk.',
    '',
  ];
  for (const result of results) {
    lines.push(
      `## ${result.title}`,
      '',
      '| measurement | value | reference | ratio | target | met |',
      '| --- | --- | --- | --- | --- | --- |',
    );
    for (const m of result.measurements) {
      lines.push(
        `| ${m.name} | ${formatNumber(m.value)} ${m.unit} | ${m.reference ?? ''} | ${m.ratio === undefined ? '' : m.ratio.toFixed(2)} | ${m.target ?? ''} | ${m.met === undefined ? '' : m.met ? 'yes' : 'no'} |`,
      );
    }
    if (result.notes !== undefined && result.notes.length > 0)
      lines.push('', ...result.notes.map((n) => `- ${n}`));
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

function formatNumber(value: number): string {
  return Math.abs(value) >= 100 ? Math.round(value).toLocaleString('en-US') : value.toPrecision(3);
}

await main();
