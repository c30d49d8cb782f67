/**
 * `dbx schema …` (reference §6.6): the original's create, add, remove, annotate, list, show,
 * `<aggregate>`, hide and validate with its outputs, plus what it lacks: `apply` (a whole schema
 * from a file), `field` (a column's type and rules, a field lock) and `versions` (the history).
 * Every command goes through the HTTP API (the server's, or the in-process one of direct mode);
 * an edit is read–modify–write guarded by `expected_version`, so two edits never lose one another.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { NOTE_CHARS_MAX } from '../core/index.js';
import { parseAggregateSchema } from '../core/schema/index.js';
import {
  EventDbxError,
  fromWire,
  toWire,
  type ColumnSettings as ClientColumnSettings,
  type EventDbxClient,
  type SchemaInput as ClientSchemaInput,
  type SchemaRecord as ClientSchemaRecord,
  type SchemaVersion as ClientSchemaVersion,
  type Wire,
} from '../client/index.js';
import { printListing, withFormatOptions, type FormatFlags, type ListingSpec } from './format.js';
import { pages } from './listing.js';
import { collect, parseJsonObjectFlag, parsePositiveInt, withConnectionOptions, type ConnectionFlags } from './options.js';
import { CliError, EXIT_FAILED, UsageError, keyValues, printJson, printLine } from './output.js';
import { withClient } from './session.js';

// Schemas here are the API's JSON (snake_case): what files hold and what --json prints.
type ColumnSettings = Wire<ClientColumnSettings>;
type SchemaInput = Wire<ClientSchemaInput>;
type SchemaRecord = Wire<ClientSchemaRecord>;
type SchemaVersion = Wire<ClientSchemaVersion>;
type Schema = SchemaRecord['schema'];
type Flags = ConnectionFlags & { json?: boolean };

/** Rust's Debug form of Option<u64>, as the original prints thresholds. */
const debugOption = (n: number | null | undefined): string => (n === null || n === undefined ? 'None' : `Some(${n})`);

/** `schema list`: the original's lines by default (reference §6.6), any --format. */
const SCHEMA_LISTING: ListingSpec<SchemaVersion['schema']> = {
  columns: [
    { name: 'schema', value: (s) => s.aggregate },
    { name: 'events', value: (s) => Object.keys(s.events).length },
    { name: 'locked', value: (s) => s.locked },
    { name: 'snapshot_threshold', value: (s) => s.snapshot_threshold ?? null },
  ],
  line: (s) => `schema=${s.aggregate} events=${Object.keys(s.events).length} locked=${s.locked} snapshot_threshold=${debugOption(s.snapshot_threshold)}`,
  empty: 'no schemas',
};

const SCHEMA_VERSION_LISTING: ListingSpec<SchemaVersion> = {
  columns: [
    { name: 'version', value: (v) => v.version },
    { name: 'recorded_at', value: (v) => v.recorded_at },
    { name: 'deleted', value: (v) => v.deleted },
    { name: 'events', value: (v) => Object.keys(v.schema.events).length },
    { name: 'locked', value: (v) => v.schema.locked },
  ],
};

/** Comma-delimited or repeated values, trimmed (the original's `value_delimiter = ','`). */
function splitList(values: string[]): string[] {
  return values.flatMap((v) => v.split(',')).map((v) => v.trim());
}

function editable(schema: Schema): SchemaInput {
  const { created_at: _c, updated_at: _u, ...rest } = structuredClone(schema);
  return rest;
}

/**
 * Applies `change` to the schema in force and stores it with `expected_version`; a concurrent edit
 * (409 version_conflict) is re-read and re-applied, a few times at most.
 */
async function edit(client: EventDbxClient, aggregate: string, change: (schema: SchemaInput) => void): Promise<SchemaRecord> {
  for (let attempt = 1; ; attempt++) {
    const current = toWire(await client.getSchema(aggregate));
    const next = editable(current.schema);
    change(next);
    try {
      return toWire(await client.putSchema(aggregate, fromWire(next), { expectedVersion: current.version }));
    } catch (err) {
      if (!(err instanceof EventDbxError) || err.code !== 'version_conflict' || attempt >= 3) throw err;
    }
  }
}

function requireEvent(schema: SchemaInput, aggregate: string, event: string): void {
  if (!schema.events || !(event in schema.events)) throw new CliError(`event ${event} is not defined for aggregate ${aggregate}`, 1, 'not_found');
}

function createCommand(): Command {
  return withConnectionOptions(new Command('create').argument('<aggregate>'))
    .description('Create a schema with its events')
    .option('-e, --events <list>', 'event names, comma-delimited (repeatable)', collect, [])
    .option('-s, --snapshot-threshold <n>', 'events between automatic snapshots (default: the config value)', parsePositiveInt)
    .option('--json', 'print the schema as JSON')
    .addHelpText('after', '\nExample:\n  dbx schema create person --events person_created,person_updated --snapshot-threshold 50\n')
    .action(async (aggregate: string, opts: Flags & { events: string[]; snapshotThreshold?: number }) => {
      if (aggregate.trim() === '') throw new UsageError('invalid schema: aggregate name must be provided');
      const events = splitList(opts.events);
      if (events.length === 0) throw new UsageError('at least one event must be provided');
      if (events.some((e) => e === '')) throw new UsageError('event names cannot be empty');
      const record = toWire(
        await withClient(opts, (c, ctx) =>
          c.createSchema({
            aggregate,
            snapshotThreshold: opts.snapshotThreshold ?? ctx.config.snapshot_threshold,
            events: Object.fromEntries(events.map((e) => [e, { fields: [] }])),
          }),
        ),
      );
      if (opts.json) return printJson(record.schema);
      printLine(`schema=${aggregate} events=${Object.keys(record.schema.events).length} snapshot_threshold=${debugOption(record.schema.snapshot_threshold)}`);
    });
}

function addCommand(): Command {
  return withConnectionOptions(new Command('add').argument('<aggregate>').argument('<events...>', 'event names (comma-delimited or repeated)'))
    .description('Add events to a schema (existing events are left as they are)')
    .addHelpText('after', '\nExample:\n  dbx schema add person person_moved,person_renamed\n')
    .action(async (aggregate: string, given: string[], opts: Flags) => {
      const events = splitList(given);
      if (events.some((e) => e === '')) throw new UsageError('event names cannot be empty');
      const record = await withClient(opts, (c) =>
        edit(c, aggregate, (s) => {
          s.events ??= {};
          for (const e of events) s.events[e] ??= { fields: [] };
        }),
      );
      printLine(`schema=${aggregate} added_events=${events.join(',')} total_events=${Object.keys(record.schema.events).length}`);
    });
}

function removeCommand(): Command {
  return withConnectionOptions(new Command('remove').argument('<aggregate>').argument('<event>'))
    .description('Remove an event from a schema (a schema keeps at least one)')
    .addHelpText('after', '\nExample:\n  dbx schema remove person person_moved\n')
    .action(async (aggregate: string, event: string, opts: Flags) => {
      const record = await withClient(opts, (c) =>
        edit(c, aggregate, (s) => {
          requireEvent(s, aggregate, event);
          const events = s.events as Record<string, unknown>;
          if (Object.keys(events).length === 1) throw new CliError(`aggregate ${aggregate} must define at least one event`);
          delete events[event];
        }),
      );
      printLine(`schema=${aggregate} removed_event=${event} remaining_events=${Object.keys(record.schema.events).length}`);
    });
}

function annotateCommand(): Command {
  return withConnectionOptions(new Command('annotate').argument('<aggregate>').argument('<event>'))
    .description("Set or clear an event's note")
    .option('--note <text>', `the note (≤ ${NOTE_CHARS_MAX} characters)`)
    .option('--clear', 'remove the note')
    .addHelpText('after', '\nExample:\n  dbx schema annotate person person_created --note "first contact"\n')
    .action(async (aggregate: string, event: string, opts: Flags & { note?: string; clear?: boolean }) => {
      if (opts.note === undefined && !opts.clear) throw new UsageError('either --note must be provided or use --clear');
      if (opts.note !== undefined && opts.clear) throw new UsageError('--note cannot be combined with --clear');
      if (opts.note !== undefined && [...opts.note].length > NOTE_CHARS_MAX) throw new UsageError(`note cannot exceed ${NOTE_CHARS_MAX} characters`);
      await withClient(opts, (c) =>
        edit(c, aggregate, (s) => {
          requireEvent(s, aggregate, event);
          const target = (s.events as Record<string, { fields: string[]; notes?: string }>)[event] as { fields: string[]; notes?: string };
          if (opts.note !== undefined) target.notes = opts.note;
          else delete target.notes;
        }),
      );
      printLine(opts.note !== undefined ? `aggregate=${aggregate} event=${event} note_set=${JSON.stringify(opts.note)}` : `aggregate=${aggregate} event=${event} note_cleared`);
    });
}

function listCommand(): Command {
  return withFormatOptions(withConnectionOptions(new Command('list')), 'lines')
    .description('List the schemas (sorted by aggregate)')
    .addHelpText('after', '\nExample:\n  dbx schema list --json\n')
    .action(async (opts: Flags & FormatFlags) => {
      const records = toWire(await withClient(opts, (c) => c.listSchemas()));
      await printListing(opts, SCHEMA_LISTING, records.map((r) => r.schema), 'lines');
    });
}

function showCommand(): Command {
  return withConnectionOptions(new Command('show').argument('<aggregate>'))
    .description('Print one schema as JSON (also: dbx schema <aggregate>)')
    .addHelpText('after', '\nExample:\n  dbx schema show person\n')
    .action(async (aggregate: string, opts: Flags) => printJson(toWire(await withClient(opts, (c) => c.getSchema(aggregate))).schema));
}

function hideCommand(): Command {
  return withConnectionOptions(new Command('hide'))
    .description('Leave a field out of every server answer that carries state')
    .requiredOption('--aggregate <name>', 'aggregate type')
    .requiredOption('--field <name>', 'field to hide')
    .addHelpText('after', '\nExample:\n  dbx schema hide --aggregate person --field ssn\n')
    .action(async (opts: Flags & { aggregate: string; field: string }) => {
      if (opts.aggregate.trim() === '') throw new UsageError('aggregate name cannot be empty');
      if (opts.field.trim() === '') throw new UsageError('field name cannot be empty');
      await withClient(opts, (c) =>
        edit(c, opts.aggregate, (s) => {
          s.hidden_fields = [...new Set([...(s.hidden_fields ?? []), opts.field])].sort();
        }),
      );
      printLine(`aggregate=${opts.aggregate} field=${opts.field} hidden`);
    });
}

function validateCommand(): Command {
  return withConnectionOptions(new Command('validate'))
    .description("Check a payload against the server's schema without writing (no schema: ok)")
    .requiredOption('--aggregate <name>', 'aggregate type')
    .requiredOption('--event <name>', 'event type')
    .requiredOption('--payload <json>', 'the payload, a JSON object')
    .option('--json', 'print the normalised payload and the violations as JSON')
    .addHelpText('after', '\nExample:\n  dbx schema validate --aggregate person --event person_created --payload \'{"age":"42"}\'\n')
    .action(async (opts: Flags & { aggregate: string; event: string; payload: string }) => {
      const payload = parseJsonObjectFlag('--payload', opts.payload);
      const result = toWire(await withClient(opts, (c) => c.validateSchema(opts.aggregate, opts.event, payload)));
      if (opts.json) printJson(result);
      if (!result.valid) {
        const details = result.violations.map((v) => ({ path: v.field, message: `${v.message} (${v.rule})` }));
        throw new EventDbxError('validation_failed', `schema violation: ${result.violations[0]?.message ?? 'invalid payload'}`, { details });
      }
      if (!opts.json) printLine(`aggregate=${opts.aggregate} event=${opts.event} validation=ok`);
    });
}

/** `schema.json` holds one schema (with `aggregate`) or the original's `schemas.json` map of them. */
function schemasInFile(text: string, path: string): [string, SchemaInput][] {
  const value = parseJsonObjectFlag(path, text);
  if (typeof value.aggregate === 'string') return [[value.aggregate, value as SchemaInput]];
  const entries = Object.entries(value);
  if (entries.length === 0 || entries.some(([, v]) => v === null || typeof v !== 'object' || Array.isArray(v))) {
    throw new UsageError(`${path}: expected a schema (with "aggregate") or an object of schemas by aggregate name`);
  }
  // A key and an `aggregate` that disagree are refused, as PUT /v1/schemas/{a} refuses a body
  // naming another aggregate: storing it under either name would guess.
  const mismatched = entries.filter(([name, schema]) => (schema as { aggregate?: unknown }).aggregate !== undefined && (schema as { aggregate?: unknown }).aggregate !== name);
  if (mismatched.length > 0) {
    throw new UsageError(`${path}: ${mismatched.map(([name, schema]) => `entry '${name}' names aggregate '${String((schema as { aggregate?: unknown }).aggregate)}'`).join('; ')}; the key and "aggregate" must agree`);
  }
  return entries.map(([name, schema]) => [name, { ...(schema as SchemaInput), aggregate: name }]);
}

/**
 * Every entry checked before any is stored (the model's own check, as the server runs it), so a
 * file with one bad schema changes nothing; every bad entry is named, each with all its problems.
 */
function checkEveryEntry(schemas: [string, SchemaInput][], path: string): void {
  const bad: string[] = [];
  for (const [name, schema] of schemas) {
    try {
      parseAggregateSchema(schema);
    } catch (err) {
      const details = (err as { details?: unknown }).details;
      const problems = Array.isArray(details) ? details.map((d: { field?: string; message?: string }) => `${d.field ? `${d.field}: ` : ''}${d.message ?? ''}`) : [(err as Error).message];
      bad.push(`${name}: ${problems.join('; ')}`);
    }
  }
  if (bad.length > 0) throw new CliError(`${path}: nothing was applied; ${bad.length} of ${schemas.length} schema(s) are invalid: ${bad.join(' | ')}`, EXIT_FAILED, 'validation_failed');
}

function applyCommand(): Command {
  return withConnectionOptions(new Command('apply').argument('<file>', 'a JSON file ("-" for stdin)'))
    .description('Create or replace whole schemas (column types and rules included) from a JSON file')
    .option('--json', 'print the stored records as JSON')
    .addHelpText(
      'after',
      '\nThe file holds one schema (the JSON `dbx schema show` prints) or an object of schemas by\naggregate name (the original\'s schemas.json). An unchanged schema keeps its version.\n\nExample:\n  dbx schema apply person.schema.json\n',
    )
    .action(async (file: string, opts: Flags) => {
      let text: string;
      try {
        text = readFileSync(file === '-' ? 0 : file, 'utf8');
      } catch (err) {
        throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      const schemas = schemasInFile(text, file);
      if (schemas.length > 1) checkEveryEntry(schemas, file);
      const records = await withClient(opts, async (c) => {
        const out: SchemaRecord[] = [];
        for (const [aggregate, schema] of schemas) {
          try {
            out.push(toWire(await c.putSchema(aggregate, fromWire(schema))));
          } catch (err) {
            // The server refused one the local check passed (a permission, a concurrent change):
            // say which were stored before it, so the file is not taken for unapplied.
            if (out.length === 0 || !(err instanceof Error)) throw err;
            err.message = `${err.message} (schema '${aggregate}' not applied; already applied from this file: ${out.map((r) => `${r.schema.aggregate} version ${r.version}`).join(', ')})`;
            throw err;
          }
        }
        return out;
      });
      if (opts.json) return printJson(records);
      for (const { version, schema } of records) {
        printLine(keyValues({ schema: schema.aggregate, version, events: Object.keys(schema.events).length, column_types: Object.keys(schema.column_types).length }));
      }
    });
}

interface FieldFlags extends Flags {
  type?: string;
  required?: boolean;
  format?: string;
  length?: string;
  range?: string;
  regex: string[];
  contains: string[];
  doesNotContain: string[];
  lock?: boolean;
  unlock?: boolean;
}

/** `MIN:MAX`, `MIN:`, `:MAX`; `MIN..MAX` for bounds that hold colons (timestamps). */
function parseBounds(flag: string, text: string): { min?: string; max?: string } {
  const sep = text.includes('..') ? '..' : ':';
  const parts = text.split(sep);
  if (parts.length !== 2) throw new UsageError(`${flag} must be MIN:MAX (or MIN..MAX when a bound holds ':'), either side may be empty`);
  const [min = '', max = ''] = parts.map((p) => p.trim());
  if (min === '' && max === '') throw new UsageError(`${flag} needs a minimum, a maximum or both`);
  return { ...(min !== '' ? { min } : {}), ...(max !== '' ? { max } : {}) };
}

function lengthBounds(text: string): { min?: number; max?: number } {
  const bounds = parseBounds('--length', text);
  const out: { min?: number; max?: number } = {};
  for (const side of ['min', 'max'] as const) {
    const value = bounds[side];
    if (value === undefined) continue;
    if (!/^\d+$/.test(value)) throw new UsageError(`--length ${side} must be a non-negative integer`);
    out[side] = Number(value);
  }
  return out;
}

function columnFrom(opts: FieldFlags): ColumnSettings {
  return {
    type: opts.type as string,
    ...(opts.required ? { required: true } : {}),
    ...(opts.format !== undefined ? { format: opts.format as ColumnSettings['format'] } : {}),
    ...(opts.length !== undefined ? { length: lengthBounds(opts.length) } : {}),
    ...(opts.range !== undefined ? { range: parseBounds('--range', opts.range) } : {}),
    ...(opts.regex.length > 0 ? { regex: opts.regex } : {}),
    ...(opts.contains.length > 0 ? { contains: opts.contains } : {}),
    ...(opts.doesNotContain.length > 0 ? { does_not_contain: opts.doesNotContain } : {}),
  };
}

/** Sets `column` at a dotted path: `address.zip` goes into the `address` object column's properties. */
function setColumn(schema: SchemaInput, path: string, column: ColumnSettings): void {
  const parts = path.split('.');
  let columns = (schema.column_types ??= {});
  for (const [i, part] of parts.slice(0, -1).entries()) {
    const parent = columns[part];
    const parentType = typeof parent === 'string' ? parent : parent?.type;
    if (parentType?.toLowerCase() !== 'object') {
      throw new CliError(`field ${parts.slice(0, i + 1).join('.')} must be declared with --type object before its nested fields`);
    }
    const settings: ColumnSettings = typeof parent === 'string' ? { type: parent } : (parent as ColumnSettings);
    columns[part] = settings;
    columns = (settings.properties ??= {}) as Record<string, ColumnSettings | string>;
  }
  columns[parts.at(-1) as string] = column;
}

/** The stored (canonical) settings at a dotted path, if declared. */
function columnAt(schema: Schema, path: string): ColumnSettings | undefined {
  let columns: Record<string, ColumnSettings> | undefined = schema.column_types;
  let found: ColumnSettings | undefined;
  for (const part of path.split('.')) {
    found = columns?.[part];
    columns = found?.properties;
  }
  return found;
}

function fieldCommand(): Command {
  return withConnectionOptions(new Command('field').argument('<aggregate>').argument('<field>', 'field name; a dotted path for a nested field of an object column'))
    .description("Declare a field's type and rules (replacing its previous ones), and lock or unlock it")
    .option('--type <type>', 'integer, float, decimal(p,s), boolean, text, timestamp, date, json, binary, object')
    .option('--required', 'the field must be present')
    .option('--format <name>', 'email, url, credit_card, country_code, iso_8601, wgs_84, camel_case, snake_case, kebab_case, pascal_case, upper_case_snake_case')
    .option('--length <min:max>', 'text length in characters, binary length in bytes (either side may be empty)')
    .option('--range <min:max>', 'numeric or temporal bounds; MIN..MAX when a bound holds ":"')
    .option('--regex <pattern>', 'a pattern the text must match (repeatable)', collect, [])
    .option('--contains <text>', 'a substring the text must contain (repeatable)', collect, [])
    .option('--does-not-contain <text>', 'a substring the text must not contain (repeatable)', collect, [])
    .option('--lock', 'refuse payloads that set this field')
    .option('--unlock', 'allow payloads to set this field again')
    .addHelpText(
      'after',
      '\nExamples:\n  dbx schema field person age --type integer --required --range 0:150\n  dbx schema field person email --type text --format email --length :254\n  dbx schema field person ssn --lock\n',
    )
    .action(async (aggregate: string, field: string, opts: FieldFlags) => {
      if (opts.lock && opts.unlock) throw new UsageError('--lock cannot be combined with --unlock');
      const ruled = opts.required || opts.format !== undefined || opts.length !== undefined || opts.range !== undefined || opts.regex.length + opts.contains.length + opts.doesNotContain.length > 0;
      if (opts.type === undefined && ruled) throw new UsageError('--type is required with --required, --format, --length, --range, --regex, --contains or --does-not-contain');
      if (opts.type === undefined && !opts.lock && !opts.unlock) throw new UsageError('give --type (with its rules), --lock or --unlock');
      if ((opts.lock || opts.unlock) && field.includes('.')) throw new UsageError('field locks apply to top-level fields');
      const column = opts.type !== undefined ? columnFrom(opts) : undefined;
      const record = await withClient(opts, (c) =>
        edit(c, aggregate, (s) => {
          if (column) setColumn(s, field, column);
          if (opts.lock) s.field_locks = [...new Set([...(s.field_locks ?? []), field])].sort();
          if (opts.unlock) s.field_locks = (s.field_locks ?? []).filter((f) => f !== field);
        }),
      );
      if (opts.json) return printJson(record);
      printLine(keyValues({ schema: aggregate, field, type: columnAt(record.schema, field)?.type ?? null, field_locked: record.schema.field_locks.includes(field), version: record.version }));
    })
    .option('--json', 'print the stored record as JSON');
}

function versionsCommand(): Command {
  return withFormatOptions(withConnectionOptions(new Command('versions').argument('<aggregate>')), 'lines')
    .description("A schema's history: every change a numbered version, a delete a tombstone")
    .addHelpText('after', '\nExample:\n  dbx schema versions person --all\n')
    .option('--take <n>', 'versions per page (default list_page_size)', parsePositiveInt)
    .option('--cursor <version>', 'resume after this version')
    .option('--all', 'every version (printed page by page)')
    .action(async (aggregate: string, opts: Flags & FormatFlags & { take?: number; cursor?: string; all?: boolean }) => {
      if (opts.take === 0) throw new UsageError('--take must be greater than zero');
      await withClient(opts, (c) =>
        printListing(
          opts,
          SCHEMA_VERSION_LISTING,
          pages(opts, (cursor, take) => c.schemaVersions(aggregate, { ...(take !== undefined ? { take } : {}), ...(cursor !== undefined ? { cursor } : {}) })),
          'lines',
        ),
      );
    });
}

function deleteCommand(): Command {
  return withConnectionOptions(new Command('delete').argument('<aggregate>'))
    .description('Remove a schema (its history stays)')
    .addHelpText('after', '\nExample:\n  dbx schema delete person\n')
    .option('--json', 'print the tombstone version as JSON')
    .action(async (aggregate: string, opts: Flags) => {
      const tombstone = toWire(await withClient(opts, (c) => c.deleteSchema(aggregate)));
      if (opts.json) return printJson(tombstone);
      printLine(`schema=${aggregate} deleted version=${tombstone.version}`);
    });
}

export function schemaCommand(): Command {
  const schema = withConnectionOptions(new Command('schema').argument('[aggregate]', 'show this schema (same as `schema show`)'))
    .description('Manage schemas: the events, field types and rules each aggregate type accepts')
    // Options after a subcommand's name are the subcommand's (both carry --data-dir and friends).
    .enablePositionalOptions()
    .addHelpText(
      'after',
      '\nExamples:\n  dbx schema create person --events person_created,person_updated\n  dbx schema field person age --type integer --range 0:150\n  dbx schema person\n',
    )
    .action(async (aggregate: string | undefined, opts: Flags) => {
      if (aggregate === undefined) throw new UsageError('missing aggregate name; try `dbx schema <aggregate>`');
      printJson(toWire(await withClient(opts, (c) => c.getSchema(aggregate))).schema);
    });
  for (const command of [
    createCommand(),
    addCommand(),
    removeCommand(),
    annotateCommand(),
    listCommand(),
    showCommand(),
    hideCommand(),
    validateCommand(),
    applyCommand(),
    fieldCommand(),
    versionsCommand(),
    deleteCommand(),
  ]) {
    schema.addCommand(command);
  }
  return schema;
}
