#!/usr/bin/env node
import { type Command, CommanderError } from 'commander';
import { ExitCode } from './exit-codes.js';
import { stringifyJson } from './output.js';
import { buildProgram } from './program.js';

const json = process.argv.includes('--json');
const program = buildProgram();
let failedCommand: string | undefined;

// With --json, a parsing error must still come out as the one envelope on stdout, naming the
// command it was meant for.
if (json) silenceErrors(program);
recordFailingCommand(program, []);

function silenceErrors(command: Command): void {
  command.configureOutput({ writeErr: () => {} });
  for (const sub of command.commands) silenceErrors(sub);
}

/** Commander reports a parsing error through the command that refused the arguments. */
function recordFailingCommand(command: Command, names: string[]): void {
  command.exitOverride((error) => {
    failedCommand = names.length > 0 ? names.join(' ') : undefined;
    throw error;
  });
  for (const sub of command.commands) recordFailingCommand(sub, [...names, sub.name()]);
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
      // An unknown command is named as typed: it is the command the caller asked for.
      command: failedCommand ?? process.argv.slice(2).find((a) => !a.startsWith('-')) ?? 'tidemark',
      error: { code: 'usage', message, hint: 'Run with --help for usage.', retryable: false },
    };
    process.stdout.write(`${stringifyJson(envelope)}\n`);
  }
}
