/** Read subcommands of `dbx aggregate`: get, select, events, verify, snapshot. */
import { Command } from 'commander';
import { explainOption, explained, withExplainOption } from './explain.js';
import { toWire } from '../client/index.js';
import { printListing } from './format.js';
import { listOptions, pages, withPageOptions, type ListFlags } from './listing.js';
import { parsePositiveInt, withConnectionOptions, type ConnectionFlags } from './options.js';
import { keyValues, printJson, printLine } from './output.js';
import { EVENT_LISTING } from './render.js';
import { withClient } from './session.js';

function getCommand(): Command {
  return withConnectionOptions(new Command('get').argument('<aggregate>').argument('<aggregate_id>'))
    .description('Show an aggregate (state, version, Merkle root) as JSON')
    .option('--version <n>', 'the state as of this version (rebuilt from the nearest snapshot)', parsePositiveInt)
    .option('--include-events', 'include the events up to that version')
    .option('--json', 'JSON (the default for get)')
    .addHelpText('after', '\nExample:\n  dbx aggregate get person p-1 --version 3 --include-events\n')
    .action(async (type: string, id: string, opts: ConnectionFlags & { version?: number; includeEvents?: boolean }) => {
      const aggregate = toWire(
        await withClient(opts, (c) =>
          c.get(type, id, { ...(opts.version !== undefined ? { version: opts.version } : {}), ...(opts.includeEvents ? { includeEvents: true } : {}) }),
        ),
      );
      printJson(aggregate);
    });
}

function selectCommand(): Command {
  return withConnectionOptions(new Command('select').argument('<aggregate>').argument('<aggregate_id>').argument('<field...>', 'dot paths into the state'))
    .description('Select fields of the state by dot path (missing → null)')
    .option('--json', 'JSON (the default for select)')
    .addHelpText('after', '\nExample:\n  dbx aggregate select person p-1 name address.city\n')
    .action(async (type: string, id: string, fields: string[], opts: ConnectionFlags) => {
      const selection = await withClient(opts, (c) => c.select(type, id, fields));
      printJson({ aggregate_type: type, aggregate_id: id, selection });
    });
}

function eventsCommand(): Command {
  return withConnectionOptions(withPageOptions(withExplainOption(new Command('events')).argument('<aggregate>').argument('<aggregate_id>'), { sort: false, scope: false }))
    .description("An aggregate's events in version order")
    .addHelpText('after', '\nExample:\n  dbx aggregate events person p-1 --take 50 --filter \'event_type = "person_updated"\'\n')
    .action(async (type: string, id: string, opts: ListFlags & ConnectionFlags & { explain?: boolean }) => {
      const { cursor: _c, take: _t, ...options } = listOptions(opts);
      await withClient(opts, (c) =>
        printListing(
          opts,
          EVENT_LISTING,
          pages(opts, (cursor, take) =>
            explained(opts, c.events(type, id, { ...options, ...(cursor !== undefined ? { cursor } : {}), ...(take !== undefined ? { take } : {}), ...explainOption(opts) })),
          ),
        ),
      );
    });
}

function verifyCommand(): Command {
  return withConnectionOptions(new Command('verify').argument('<aggregate>').argument('<aggregate_id>'))
    .description('Recompute every event hash and the Merkle root; exit 1 if they do not match')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  dbx aggregate verify person p-1 --json\n')
    .action(async (type: string, id: string, opts: ConnectionFlags & { json?: boolean }) => {
      const result = toWire(await withClient(opts, (c) => c.verify(type, id)));
      if (opts.json) printJson(result);
      else printLine(keyValues({ ...result }));
      if (!result.valid) {
        process.stderr.write(`error: verification failed${result.first_invalid_version !== undefined ? ` at version ${result.first_invalid_version}` : ''}\n`);
        process.exitCode = 1;
      }
    });
}

function snapshotCommand(): Command {
  return withConnectionOptions(new Command('snapshot').argument('<aggregate>').argument('<aggregate_id>'))
    .description('Take a snapshot of the current state now (printed as JSON)')
    .option('--comment <text>', 'stored with the snapshot')
    .option('--json', 'JSON (the default for snapshot)')
    .addHelpText('after', '\nExample:\n  dbx aggregate snapshot person p-1 --comment "before migration"\n')
    .action(async (type: string, id: string, opts: ConnectionFlags & { comment?: string }) => {
      printJson(toWire(await withClient(opts, (c) => c.snapshot(type, id, opts.comment !== undefined ? { comment: opts.comment } : {}))));
    });
}

export function aggregateReadCommands(): Command[] {
  return [getCommand(), selectCommand(), eventsCommand(), verifyCommand(), snapshotCommand()];
}
