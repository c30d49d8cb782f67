/** Assembles the `dbx` program from its command groups. */
import { Command } from 'commander';
import { startCommand } from './commands-server.js';
import { tokenCommand } from './commands-token.js';

export function buildProgram(): Command {
  const program = new Command('dbx')
    .description('EventDBX: an event-sourced, write-side database server')
    .version('0.1.0', '-V, --version')
    .exitOverride()
    .showHelpAfterError();
  program.configureOutput({ outputError: (str, write) => write(str) });
  program.addCommand(startCommand());
  program.addCommand(tokenCommand());
  return program;
}
