#!/usr/bin/env node
import { type Command, CommanderError } from 'commander';
import { ExitCode } from './exit-codes.js';
import { stringifyJson } from './output.js';
import { buildProgram } from './program.js';

const json = process.argv.includes('--json');
const program = buildProgram();

// With --json, a parsing error must still come out as the one envelope on stdout.
if (json) silenceErrors(program);

function silenceErrors(command: Command): void {
  command.configureOutput({ writeErr: () => {} });
  for (const sub of command.commands) silenceErrors(sub);
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (!(error instanceof CommanderError)) throw error;
  const helpShown = error.exitCode === 0;
  process.exitCode = helpShown ? ExitCode.ok : ExitCode.usage;
  if (json && !helpShown) {
    const message = error.message.replace(/^error: /, '');
    const envelope = {
      ok: false,
      command: null,
      error: { code: 'usage', message, hint: 'Run with --help for usage.', retryable: false },
    };
    process.stdout.write(`${stringifyJson(envelope)}\n`);
  }
}
