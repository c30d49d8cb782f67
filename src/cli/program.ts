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
import { doctorCommand } from './commands-doctor.js';
import { completionCommand } from './completion.js';
import { normaliseConnectionFlags } from './options.js';
import { formatUsageError, setErrorFormat, wantsJson } from './output.js';
import { cliVersion } from './version.js';
import { tenantCommand } from './commands-tenant.js';

/** Commander copies these settings only to subcommands made with .command(); ours are added, so walk the tree. */
function configureTree(command: Command, json: boolean): void {
  command
    .exitOverride()
    // Under --json stderr carries one JSON document: no hint after it.
    .showHelpAfterError(json ? false : '(add --help for usage and an example)')
    .configureOutput({ outputError: (str, write) => write(formatUsageError(str)) });
  for (const sub of command.commands) configureTree(sub, json);
}

export function buildProgram(): Command {
  const program = new Command('dbx')
    .description('EventDBX server CLI: an event-sourced, write-side database server')
    .version(cliVersion(), '-V, --version')
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
    tenantCommand(),
  ]) {
    program.addCommand(command);
  }
  program.addCommand(doctorCommand());
  program.addCommand(completionCommand(() => program));
  // Before any action: errors become JSON when the output is (argv is read first, so that
  // commander's own usage errors follow too), and --url / $EVENTDBX_URL are resolved.
  const json = wantsJson(process.argv.slice(2));
  setErrorFormat(json);
  configureTree(program, json);
  program.hook('preAction', (_program, action) => {
    const opts = action.opts<{ json?: boolean; format?: string }>();
    setErrorFormat(opts.json === true || opts.format === 'json');
    normaliseConnectionFlags(action);
  });
  return program;
}
