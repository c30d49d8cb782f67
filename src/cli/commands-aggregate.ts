/**
 * `dbx aggregate …` (reference §1.1): positional `<type> <id>` like the original. Writes print a
 * key=value line (`--json`: the API's result); get, select and snapshot print JSON documents.
 */
import { Command } from 'commander';
import { explainOption, explained, withExplainOption } from './explain.js';
import { EventDbxError, toWire, type EventDbxClient, type PatchOperation, type WriteOptions } from '../client/index.js';
import { aggregateReadCommands } from './commands-aggregate-read.js';
import { exportCommand, replayCommand } from './commands-export.js';
import { commitCommand, printStage, stageEvent } from './commands-stage.js';
import { printListing } from './format.js';
import { listOptions, pages, withPageOptions, type ListFlags } from './listing.js';
import { collect, parseJsonFlag, parseJsonObjectFlag, parsePositiveInt, payloadFrom, resolveDataDir, withConnectionOptions, type ConnectionFlags } from './options.js';
import { UsageError, keyValues, printJson, printLine } from './output.js';
import { aggregateLine, aggregateListing, eventLine } from './render.js';
import { withClient } from './session.js';

interface WriteFlags extends ConnectionFlags {
  field?: string[];
  payload?: string;
  metadata?: string;
  note?: string;
  expectedVersion?: number;
  idempotencyKey?: string;
  json?: boolean;
}

function writeOptions(command: Command, { payload = true, expected = true } = {}): Command {
  if (payload) {
    command
      .option('--field <key=value>', 'payload field (repeatable; values are strings)', collect, [])
      .option('--payload <json>', 'payload as a JSON object (not with --field)');
  }
  command.option('--metadata <json>', 'extensions: a JSON object whose keys start with @').option('--note <text>', 'note stored with the event (≤ 128 chars)');
  if (expected) command.option('--expected-version <n>', 'refuse unless the aggregate is at this version', parsePositiveInt);
  return withConnectionOptions(command.option('--idempotency-key <key>', 'a retry with the same key returns the first result').option('--json', 'print the API result as JSON'));
}

function writeFields(opts: WriteFlags): WriteOptions {
  return {
    ...(opts.metadata !== undefined ? { metadata: parseJsonObjectFlag('--metadata', opts.metadata) } : {}),
    ...(opts.note !== undefined ? { note: opts.note } : {}),
    ...(opts.expectedVersion !== undefined ? { expectedVersion: opts.expectedVersion } : {}),
    ...(opts.idempotencyKey !== undefined ? { idempotencyKey: opts.idempotencyKey } : {}),
  };
}

/**
 * A write through the session. With `verbose_responses = false` in config.toml a write prints `Ok`
 * instead of its line, as the original's (`--json` still prints the API's result).
 */
async function written<T>(opts: WriteFlags, write: (client: EventDbxClient) => Promise<T>): Promise<{ result: T; quiet: boolean }> {
  return withClient(opts, async (client, ctx) => ({ result: await write(client), quiet: !ctx.config.verbose_responses }));
}

function createCommand(): Command {
  return writeOptions(new Command('create').argument('<aggregate>', 'aggregate type').argument('<aggregate_id>', 'aggregate id'), { expected: false })
    .description('Create an aggregate with its first event')
    .requiredOption('--event <name>', 'event type of the first event')
    .addHelpText('after', '\nExample:\n  dbx aggregate create person p-1 --event person_created --field name=Ada\n')
    .action(async (type: string, id: string, opts: WriteFlags & { event: string }) => {
      const payload = payloadFrom(opts);
      const { result, quiet } = await written(opts, (c) => c.create(type, id, opts.event, { payload, ...writeFields(opts) }));
      const aggregate = toWire(result);
      if (opts.json) printJson(aggregate);
      else printLine(quiet ? 'Ok' : aggregateLine(aggregate));
    });
}

function applyCommand(): Command {
  return writeOptions(new Command('apply').argument('<aggregate>').argument('<aggregate_id>').argument('<event>', 'event type'))
    .description('Append an event (creates the aggregate if it does not exist)')
    .option('--stage', 'queue the event in <data_dir>/staged_events.json for `dbx aggregate commit`')
    .addHelpText('after', '\nExamples:\n  dbx aggregate apply person p-002 person_updated --field name="Jane Doe"\n  dbx aggregate apply order o-1 order_paid --payload \'{"amount":12.5}\' --stage\n')
    .action(async (type: string, id: string, event: string, opts: WriteFlags & { stage?: boolean }) => {
      const payload = payloadFrom(opts);
      const fields = writeFields(opts);
      if (opts.stage) {
        await stageEvent(resolveDataDir(opts.dataDir), {
          aggregate_type: type,
          aggregate_id: id,
          event_type: event,
          payload,
          ...(fields.metadata !== undefined ? { metadata: fields.metadata } : {}),
          ...(fields.note !== undefined ? { note: fields.note } : {}),
          ...(fields.expectedVersion !== undefined ? { expected_version: fields.expectedVersion } : {}),
          ...(fields.idempotencyKey !== undefined ? { idempotency_key: fields.idempotencyKey } : {}),
        }, opts);
        return printLine('event staged for later commit');
      }
      const { result, quiet } = await written(opts, (c) => c.apply(type, id, event, { payload, ...fields }));
      const record = toWire(result);
      if (opts.json) printJson(record);
      else printLine(quiet ? 'Ok' : eventLine(record));
    });
}

function patchCommand(): Command {
  return writeOptions(new Command('patch').argument('<aggregate>').argument('<aggregate_id>').argument('<event>', 'event type'), { payload: false })
    .description('Apply an RFC 6902 JSON Patch to the state (the patch is stored as the event payload)')
    .requiredOption('--patch <json>', 'a JSON array of operations')
    .option('--stage', 'queue the patch in <data_dir>/staged_events.json; it applies at commit, after the events staged before it')
    .addHelpText('after', '\nExamples:\n  dbx aggregate patch person p-1 person_renamed --patch \'[{"op":"replace","path":"/name","value":"Grace"}]\'\n  dbx aggregate patch person p-1 person_renamed --patch \'[{"op":"add","path":"/age","value":37}]\' --stage\n')
    .action(async (type: string, id: string, event: string, opts: WriteFlags & { patch: string; stage?: boolean }) => {
      const operations = parseJsonFlag('--patch', opts.patch);
      if (!Array.isArray(operations)) throw new UsageError('--patch must be a JSON array of operations');
      if (opts.stage) {
        const fields = writeFields(opts);
        await stageEvent(resolveDataDir(opts.dataDir), {
          aggregate_type: type,
          aggregate_id: id,
          event_type: event,
          patch: operations,
          ...(fields.metadata !== undefined ? { metadata: fields.metadata } : {}),
          ...(fields.note !== undefined ? { note: fields.note } : {}),
          ...(fields.expectedVersion !== undefined ? { expected_version: fields.expectedVersion } : {}),
          ...(fields.idempotencyKey !== undefined ? { idempotency_key: fields.idempotencyKey } : {}),
        }, opts);
        return printLine('patch staged for later commit');
      }
      const { result, quiet } = await written(opts, (c) => c.patch(type, id, event, operations as PatchOperation[], writeFields(opts)));
      const record = toWire(result);
      if (opts.json) printJson(record);
      else printLine(quiet ? 'Ok' : eventLine(record));
    });
}

function lifecycleCommand(op: 'archive' | 'restore'): Command {
  return writeOptions(new Command(op).argument('<aggregate>').argument('<aggregate_id>'), { payload: false })
    .description(op === 'archive' ? 'Archive an aggregate (further writes are refused)' : 'Restore an archived aggregate')
    .option('--comment <text>', 'reason, stored with the event')
    .addHelpText('after', `\nExample:\n  dbx aggregate ${op} person p-1 --comment "${op === 'archive' ? 'left the company' : 'came back'}"\n`)
    .action(async (type: string, id: string, opts: WriteFlags & { comment?: string }) => {
      const options = { ...writeFields(opts), ...(opts.comment !== undefined ? { comment: opts.comment } : {}) };
      const { result, quiet } = await written(opts, (c) => (op === 'archive' ? c.archive(type, id, options) : c.restore(type, id, options)));
      const aggregate = toWire(result);
      if (opts.json) printJson(aggregate);
      else if (quiet) printLine('Ok');
      else printLine(`${keyValues({ aggregate_type: type, aggregate_id: id, archived: aggregate.archived, version: aggregate.version })} comment=${opts.comment ?? ''}`);
    });
}

function removeCommand(): Command {
  return withConnectionOptions(new Command('remove').argument('<aggregate>').argument('<aggregate_id>'))
    .description('Remove an aggregate that has no events')
    .addHelpText(
      'after',
      '\nOnly an aggregate without events can be removed; the API never creates one, so this reports\nnot_found or that events exist (history is never deleted).\n\nExample:\n  dbx aggregate remove person p-1\n',
    )
    .action(async (type: string, id: string, opts: ConnectionFlags) => {
      const aggregate = await withClient(opts, (c) => c.get(type, id));
      throw new EventDbxError('invalid_input', `aggregate ${type}:${id} cannot be removed while events exist (version ${aggregate.version})`);
    });
}

function listCommand(): Command {
  return withConnectionOptions(withPageOptions(withExplainOption(new Command('list')).argument('[aggregate]', 'only this aggregate type'), { sort: true, scope: true }))
    .description('List aggregates (or, with --stage, the staged events)')
    .option('--stage', 'list the staged events instead')
    .addHelpText(
      'after',
      '\nExamples:\n  dbx aggregate list person --take 20\n  dbx aggregate list --filter \'status = "active"\' --sort version:desc --json\n  dbx aggregate list --all --include-archived\n',
    )
    .action(async (type: string | undefined, opts: ListFlags & ConnectionFlags & { stage?: boolean; explain?: boolean }) => {
      if (opts.stage) return printStage(resolveDataDir(opts.dataDir), type, opts);
      const options = listOptions(opts);
      const { cursor: _c, take: _t, ...rest } = options;
      await withClient(opts, (c) =>
        printListing(
          opts,
          aggregateListing(opts.includeArchived === true || opts.archivedOnly === true),
          pages(opts, (cursor, take) =>
            explained(opts, c.list(type, { ...rest, ...(cursor !== undefined ? { cursor } : {}), ...(take !== undefined ? { take } : {}), ...explainOption(opts) })),
          ),
        ),
      );
    });
}

export function aggregateCommand(): Command {
  const aggregate = new Command('aggregate').description('Manage aggregates');
  aggregate.addHelpText('after', '\nExamples:\n  dbx aggregate create person p-1 --event person_created --field name=Ada\n  dbx aggregate get person p-1 --include-events\n');
  for (const command of [
    createCommand(),
    applyCommand(),
    patchCommand(),
    ...aggregateReadCommands(),
    replayCommand(),
    exportCommand(),
    listCommand(),
    lifecycleCommand('archive'),
    lifecycleCommand('restore'),
    removeCommand(),
    commitCommand(),
  ]) {
    aggregate.addCommand(command);
  }
  return aggregate;
}
