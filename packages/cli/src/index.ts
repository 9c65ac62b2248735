export { EXIT_CODE_HELP, ExitCode } from './exit-codes.js';
export { buildProgram } from './program.js';
