/** Assembles the `dbx` program from its command groups. */
import { Command } from 'commander';
import { aggregateCommand } from './commands-aggregate.js';
import { configCommand } from './commands-config.js';
import { eventsCommand } from './commands-events.js';
import { importCommand } from './commands-import.js';
import { pluginCommand } from './commands-plugin.js';
import { proofCommand } from './commands-proof.js';
import { queueCommand } from './commands-queue.js';
import { schemaCommand } from './commands-schema.js';
import { destroyCommand, restartCommand, startCommand, statusCommand, stopCommand } from './commands-server.js';
import { tokenCommand } from './commands-token.js';

/** Commander copies these settings only to subcommands made with .command(); ours are added, so walk the tree. */
function configureTree(command: Command): void {
  command
    .exitOverride()
    .showHelpAfterError('(add --help for usage and an example)')
    .configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, 'error: invalid_input: ')) });
  for (const sub of command.commands) configureTree(sub);
}

export function buildProgram(): Command {
  const program = new Command('dbx')
    .description('EventDBX server CLI: an event-sourced, write-side database server')
    .version('0.1.0', '-V, --version')
    // Program options only before the subcommand: `aggregate get … --version 3` is get's flag.
    .enablePositionalOptions()
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 1 failed, 2 usage. With the server running every command goes through its HTTP API;\nwith it stopped, commands open the data directory directly.\n\nExample:\n  dbx start && dbx aggregate create person p-1 --event person_created --field name=Ada\n',
    );
  for (const command of [
    startCommand(),
    stopCommand(),
    statusCommand(),
    restartCommand(),
    destroyCommand(),
    configCommand(),
    tokenCommand(),
    aggregateCommand(),
    eventsCommand(),
    importCommand(),
    proofCommand(),
    schemaCommand(),
    pluginCommand(),
    queueCommand(),
  ]) {
    program.addCommand(command);
  }
  configureTree(program);
  return program;
}
