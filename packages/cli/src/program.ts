import { Command } from 'commander';
import { registerDaemon } from './commands/daemon.js';
import { registerGc } from './commands/gc.js';
import { registerGet } from './commands/get.js';
import { registerInit } from './commands/init.js';
import { registerQuery } from './commands/query.js';
import { registerRuns } from './commands/runs.js';
import { registerServe } from './commands/serve.js';
import { registerShow } from './commands/show.js';
import { registerSync } from './commands/sync.js';
import { registerToken } from './commands/token.js';
import { registerVerify } from './commands/verify.js';
import { EXIT_CODE_HELP } from './exit-codes.js';

/** Builds the `tidemark` command tree. Parsing and printing only; the work is in the packages. */
export function buildProgram(): Command {
  const program = new Command('tidemark')
    .description('record ML runs offline, query them with SQL, sync them to a team server')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      '\nEnvironment: TIDEMARK_DIR, TIDEMARK_REMOTE, TIDEMARK_API_TOKEN, DEBUG=tidemark:*',
    );

  program.exitOverride();
  registerInit(program);
  registerRuns(program);
  registerShow(program);
  registerQuery(program);
  registerVerify(program);
  registerSync(program);
  registerGet(program);
  registerGc(program);
  registerDaemon(program);
  registerServe(program);
  registerToken(program);
  addExitCodeHelp(program);
  return program;
}

/** Every command's `--help` ends with the exit codes, so scripts can be written from any page. */
function addExitCodeHelp(command: Command): void {
  command.addHelpText('after', `\n${EXIT_CODE_HELP}`);
  for (const sub of command.commands) addExitCodeHelp(sub);
}
