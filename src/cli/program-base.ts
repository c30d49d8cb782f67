/**
 * The `dbx` root command without its subcommands, and what every assembled program gets: usage
 * errors in our form (JSON under --json), no help hint under --json, connection flags resolved
 * before any action. Shared by the whole program (program.ts) and the one-group programs that
 * `dbx <command>` builds (command-groups.ts), so both behave alike.
 */
import { Command } from 'commander';
import { normaliseConnectionFlags } from './options.js';
import { formatUsageError, setErrorFormat, wantsJson } from './output.js';
import { cliVersion } from './version.js';

/** Commander copies these settings only to subcommands made with .command(); ours are added, so walk the tree. */
function configureTree(command: Command, json: boolean): void {
  command
    .exitOverride()
    // Under --json stderr carries one JSON document: no hint after it.
    .showHelpAfterError(json ? false : '(add --help for usage and an example)')
    .configureOutput({ outputError: (str, write) => write(formatUsageError(str)) });
  for (const sub of command.commands) configureTree(sub, json);
}

export function baseProgram(): Command {
  return (
    new Command('dbx')
      .description('EventDBX server CLI: an event-sourced, write-side database server')
      .version(cliVersion(), '-V, --version')
      // Program options only before the subcommand: `aggregate get … --version 3` is get's flag.
      .enablePositionalOptions()
      .addHelpText(
        'after',
        '\nExit codes: 0 ok, 1 failed, 2 usage. With the server running every command goes through its HTTP API;\nwith it stopped, commands open the data directory directly.\n\nExample:\n  dbx start && dbx aggregate create person p-1 --event person_created --field name=Ada\n',
      )
  );
}

/** Adds the commands, then the settings every command of the tree shares. */
export function finishProgram(program: Command, commands: Command[]): Command {
  for (const command of commands) program.addCommand(command);
  // Before any action: errors become JSON when the output is (argv is read first, so that
  // commander's own usage errors follow too), and --url / $EVENTDBX_URL are resolved.
  const json = wantsJson(process.argv.slice(2));
  setErrorFormat(json);
  configureTree(program, json);
  program.hook('preAction', (_program, action) => {
    const opts = action.opts<{ json?: boolean; format?: string }>();
    // `--format json` asks for JSON output (and errors) only where it is a listing's output format;
    // `aggregate export --format json` names the file's format and keeps text errors.
    const listing = action.options.some((o) => o.long === '--format' && o.argChoices?.includes('table') === true);
    setErrorFormat(opts.json === true || (listing && opts.format === 'json'));
    normaliseConnectionFlags(action);
  });
  return program;
}
