/**
 * `dbx plugin …` (reference §10.7): `config <kind>`, enable, disable, remove, list, test and
 * replay, each through the HTTP API (the running server's, or direct mode's in-process one).
 * `config` is read–modify–write: an existing plugin keeps every field the command does not give,
 * so `--payload` (or a header, or the tenants) changes only when given, as in the original.
 */
import { Command, Option } from 'commander';
import { EventDbxError, fromWire, toWire, type EventDbxClient, type PluginConfigInput, type PluginDefinition, type PluginKind, type PluginInfo, type PluginPayloadMode, type Wire } from '../client/index.js';
import { printListing, withFormatOptions, type FormatFlags, type ListingSpec } from './format.js';
import { collect, parsePort, parsePositiveInt, serverOption, withConnectionOptions, type ConnectionFlags } from './options.js';
import { CliError, UsageError, printJson, printLine } from './output.js';
import { withClient } from './session.js';

const PAYLOAD_MODES: readonly PluginPayloadMode[] = ['all', 'event-only', 'state-only', 'schema-only', 'event-and-schema', 'extensions-only'];
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];
/** The original's words for each kind in `<Kind> plugin '<n>' configured`. */
const KIND_LABEL: Record<PluginKind, string> = {
  http: 'HTTP',
  tcp: 'TCP',
  log: 'Log',
  process: 'Process',
  postgres: 'PostgreSQL',
  nats: 'NATS',
  csv: 'CSV',
  json: 'JSON',
};

type Flags = ConnectionFlags & { json?: boolean };
type KindFlags = Record<string, unknown>;

interface ConfigFlags {
  name: string;
  payload?: PluginPayloadMode;
  withProof?: boolean;
  tenant: string[];
  aggregate: string[];
  disable?: boolean;
  json?: boolean;
  dataDir?: string;
  token?: string;
  server?: unknown;
}

/** One kind of `plugin config`: its flags, the options they give, and which a new plugin needs. */
interface KindSpec {
  kind: PluginKind;
  summary: string;
  example: string;
  flags(command: Command): Command;
  /** Only the options given on the command line (undefined = keep the existing value). */
  options(flags: KindFlags): Record<string, unknown>;
  /** [flag, option key]: required when the plugin does not exist yet. */
  required: [string, string][];
}

/** `K=V` list → map; split at the first '=' (values may contain '='). */
function pairs(flag: string, values: string[]): Record<string, string> | undefined {
  if (values.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const value of values) {
    const at = value.indexOf('=');
    if (at <= 0) throw new UsageError(`${flag} ${value}: expected KEY=VALUE`);
    out[value.slice(0, at).trim()] = value.slice(at + 1);
  }
  return out;
}

const nonEmpty = (values: unknown): string[] | undefined => (Array.isArray(values) && values.length > 0 ? (values as string[]) : undefined);
const timeoutOption = (): Option => new Option('--timeout-ms <n>', 'per delivery, 100–600000 ms').argParser(parsePositiveInt);

const SPECS: KindSpec[] = [
  {
    kind: 'http',
    summary: 'POST each event as JSON to an endpoint (Idempotency-Key = the event id)',
    example: 'dbx plugin config http --name hook --endpoint http://127.0.0.1:8080/events --header authorization="Bearer s3cret"',
    flags: (c) =>
      c
        .option('--endpoint <url>', 'URL (no scheme: https:// with --https, else http://)')
        .option('--header <key=value>', 'request header (repeatable; given ones replace the stored set)', collect, [])
        .option('--https', 'an endpoint without a scheme is https://')
        .option('--no-https', 'an endpoint without a scheme is http://')
        .option('--ca-file <pem>', "PEM CA to trust for an https endpoint (the server reads it; relative: under the data directory)")
        .addOption(timeoutOption()),
    options: (f) => ({ endpoint: f.endpoint, headers: pairs('--header', f.header as string[]), https: f.https, ca_file: f.caFile, timeout_ms: f.timeoutMs }),
    required: [['--endpoint', 'endpoint']],
  },
  {
    kind: 'tcp',
    summary: 'one JSON line per event over TCP, acknowledged by the receiver',
    example: 'dbx plugin config tcp --name feed --host 127.0.0.1 --port 9000',
    flags: (c) => c.option('--host <host>', 'receiver host').option('--port <port>', 'receiver port', parsePort).addOption(timeoutOption()),
    options: (f) => ({ host: f.host, port: f.port, timeout_ms: f.timeoutMs }),
    required: [
      ['--host', 'host'],
      ['--port', 'port'],
    ],
  },
  {
    kind: 'log',
    summary: "one log line per event (a file, or the server's stderr)",
    example: 'dbx plugin config log --name audit --level info --template "{aggregate}/{id} {event}" --file audit.log',
    flags: (c) =>
      c
        .addOption(new Option('--level <level>', 'log level').choices(LOG_LEVELS))
        .option('--template <text>', '{aggregate}, {id} and {event} are substituted')
        .option('--file <path>', "append to this file (relative: under the data directory); default the server's stderr"),
    options: (f) => ({ level: f.level, template: f.template, file: f.file }),
    required: [],
  },
  {
    kind: 'process',
    summary: 'a long-running child process fed one JSON line per event on stdin',
    example: 'dbx plugin config process --name indexer --command /usr/local/bin/indexer --arg --fast --env MODE=prod',
    flags: (c) =>
      c
        .option('--command <program>', 'the program (absolute path or on PATH)')
        .option('--arg <arg>', 'an argument (repeatable; given ones replace the stored list)', collect, [])
        .option('--env <key=value>', 'an environment variable (repeatable; given ones replace the stored set)', collect, [])
        .option('--working-dir <dir>', 'working directory (relative: under the data directory)')
        .addOption(timeoutOption()),
    options: (f) => ({ command: f.command, args: nonEmpty(f.arg), env: pairs('--env', f.env as string[]), working_dir: f.workingDir, timeout_ms: f.timeoutMs }),
    required: [['--command', 'command']],
  },
  {
    kind: 'postgres',
    summary: 'a PostgreSQL read model: one table per aggregate type, the state upserted per aggregate',
    example: 'dbx plugin config postgres --name readmodel --url postgres://app@127.0.0.1:5432/app --table-prefix edbx_',
    flags: (c) =>
      c
        .option('--url <url>', 'postgres://user@host:port/db')
        .option('--table-prefix <prefix>', 'tables are <prefix><aggregate_type> (default edbx_)')
        .option('--pg-schema <schema>', 'PostgreSQL schema (default public)'),
    options: (f) => ({ url: f.url, table_prefix: f.tablePrefix, pg_schema: f.pgSchema }),
    required: [['--url', 'url']],
  },
  {
    kind: 'nats',
    summary: 'publish each event to NATS (JetStream when --stream is given)',
    example: 'dbx plugin config nats --name bus --server nats://127.0.0.1:4222 --subject "eventdbx.{tenant}.{aggregate}.{event}"',
    flags: (c) =>
      c
        .option('--server <url>', 'NATS server URL (repeatable; here --server is NATS, not EventDBX)', collect, [])
        .option('--subject <subject>', '{tenant}, {aggregate} and {event} are substituted')
        .option('--stream <name>', 'JetStream stream to create when missing')
        .addOption(timeoutOption()),
    options: (f) => ({ servers: nonEmpty(f.server), subject: f.subject, stream: f.stream, timeout_ms: f.timeoutMs }),
    required: [['--server', 'servers']],
  },
  {
    kind: 'csv',
    summary: 'a CSV read model: <dir>/<aggregate_type>.csv',
    example: 'dbx plugin config csv --name sheet --dir exports',
    flags: (c) => c.option('--dir <dir>', 'directory (relative: under the data directory)'),
    options: (f) => ({ dir: f.dir }),
    required: [['--dir', 'dir']],
  },
  {
    kind: 'json',
    summary: 'a JSON Lines read model: <dir>/<aggregate_type>.jsonl',
    example: 'dbx plugin config json --name lines --dir exports --pretty',
    flags: (c) => c.option('--dir <dir>', 'directory (relative: under the data directory)').option('--pretty', 'indented JSON').option('--no-pretty', 'one line per record'),
    options: (f) => ({ dir: f.dir, pretty: f.pretty }),
    required: [['--dir', 'dir']],
  },
];

function withoutUndefined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined));
}

/** The stored definition in the API's naming, like the kind options the flags give. */
async function existing(client: EventDbxClient, name: string): Promise<Wire<PluginDefinition> | undefined> {
  try {
    return toWire(await client.plugin(name));
  } catch (err) {
    if (err instanceof EventDbxError && err.code === 'not_found') return undefined;
    throw err;
  }
}

/** The definition to store: the existing one with the given fields replaced. */
function merge(spec: KindSpec, flags: ConfigFlags & KindFlags, current: Wire<PluginDefinition> | undefined): Wire<PluginConfigInput> {
  if (current && current.options.kind !== spec.kind) {
    throw new CliError(`plugin name '${flags.name}' is already used by ${current.options.kind}`, 1, 'already_exists');
  }
  const given = withoutUndefined(spec.options(flags));
  if (!current) {
    const missing = spec.required.filter(([, key]) => given[key] === undefined).map(([flag]) => flag);
    if (missing.length > 0) throw new UsageError(`${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} required for a new ${spec.kind} plugin`);
  }
  return withoutUndefined({
    // As the original: config enables the plugin unless --disable (the server checks it can connect).
    enabled: !flags.disable,
    payload_mode: flags.payload ?? current?.payload_mode,
    with_proof: flags.withProof ?? current?.with_proof,
    tenants: nonEmpty(flags.tenant) ?? current?.tenants,
    aggregate_types: nonEmpty(flags.aggregate) ?? current?.aggregate_types,
    options: { ...(current?.options ?? {}), ...given, kind: spec.kind },
  }) as Wire<PluginConfigInput>;
}

function kindConfigCommand(spec: KindSpec): Command {
  const command = new Command(spec.kind).description(`Create or update a plugin of kind ${spec.kind}: ${spec.summary}`);
  spec.flags(command)
    .requiredOption('--name <name>', 'plugin name (letters, digits, _ . -)')
    .addOption(new Option('--payload <mode>', 'payload mode (default all; kept when updating)').choices(PAYLOAD_MODES))
    .option('--with-proof', "add the event's RFC 6962 inclusion proof to each delivery")
    .option('--no-with-proof', 'deliver without the proof')
    .option('--tenant <tenant>', "only this tenant's events (repeatable; default every tenant); the request is made in the first", collect, [])
    .option('--aggregate <type>', 'only this aggregate type (repeatable; default every type)', collect, [])
    .option('--disable', 'store it disabled (no connectivity check; its jobs wait)')
    .option('--json', 'print the stored definition as JSON')
    .option('--data-dir <dir>', 'data directory (default $EVENTDBX_DATA_DIR or ~/.eventdbx)')
    .option('--token <jwt>', 'token (default $EVENTDBX_TOKEN, else <data_dir>/cli.token)');
  // nats has its own --server; http has its own --ca-file (an https EventDBX takes $EVENTDBX_CA_FILE).
  if (spec.kind !== 'nats') command.addOption(serverOption('--server <url>', "talk to this EventDBX server instead of the data directory's own (default $EVENTDBX_URL)"));
  return command
    .addHelpText('after', `\nUpdating an existing plugin keeps every field not given.\n\nExample:\n  ${spec.example}\n`)
    .action(async (opts: ConfigFlags & KindFlags) => {
      const server = spec.kind === 'nats' ? undefined : (opts.server as string | undefined);
      const tenant = opts.tenant[0];
      const flags: ConnectionFlags = {
        ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}),
        ...(opts.token !== undefined ? { token: opts.token } : {}),
        ...(server !== undefined ? { server } : {}),
        ...(tenant !== undefined ? { tenant } : {}),
      };
      const stored = toWire(await withClient(flags, async (c) => c.configurePlugin(opts.name, fromWire(merge(spec, opts, await existing(c, opts.name))))));
      if (opts.json) return printJson(stored);
      printLine(`${KIND_LABEL[spec.kind]} plugin '${stored.name}' ${stored.enabled ? 'configured' : 'disabled'}`);
    });
}

function configCommand(): Command {
  const config = new Command('config')
    .description('Create or update a plugin of one kind (http, tcp, log, process, postgres, nats, csv, json)')
    .addHelpText('after', '\nExamples:\n  dbx plugin config http --name hook --endpoint http://127.0.0.1:8080/events\n  dbx plugin config tcp --name feed --host 127.0.0.1 --port 9000 --payload event-only --disable\n');
  for (const spec of SPECS) config.addCommand(kindConfigCommand(spec));
  return config;
}

function toggleCommand(op: 'enable' | 'disable'): Command {
  return withConnectionOptions(new Command(op).argument('<name>', 'plugin name'))
    .description(op === 'enable' ? 'Enable a plugin (the server checks it can connect first; refused with the reason)' : 'Disable a plugin (its jobs wait in the queue)')
    .addHelpText('after', `\nExample:\n  dbx plugin ${op} hook\n`)
    .action(async (name: string, opts: Flags) => {
      const enable = op === 'enable';
      const line = await withClient(opts, async (c) => {
        if ((await c.plugin(name)).enabled === enable) return `Plugin '${name}' is already ${op}d`;
        await (enable ? c.enablePlugin(name) : c.disablePlugin(name));
        return `Plugin '${name}' ${op}d`;
      });
      printLine(line);
    });
}

function removeCommand(): Command {
  return withConnectionOptions(new Command('remove').argument('<name>', 'plugin name'))
    .description('Remove a disabled plugin and its queued jobs')
    .option('--disable', 'disable it first if it is enabled')
    .addHelpText('after', '\nExample:\n  dbx plugin remove hook --disable\n')
    .action(async (name: string, opts: Flags & { disable?: boolean }) => {
      await withClient(opts, async (c) => {
        if ((await c.plugin(name)).enabled) {
          if (!opts.disable) throw new CliError(`disable plugin '${name}' before removing it (use plugin disable ${name} or pass --disable)`);
          await c.disablePlugin(name);
        }
        await c.removePlugin(name);
      });
      printLine(`Plugin '${name}' removed`);
    });
}

type PluginRow = Wire<PluginInfo>;

/** `plugin list`: `plugin=<n> kind=… enabled=…` lines by default (the original's), any --format. */
const PLUGIN_LISTING: ListingSpec<PluginRow> = {
  empty: '(no plugins configured)',
  columns: [
    { name: 'plugin', value: (p) => p.name },
    { name: 'kind', value: (p) => p.options.kind },
    { name: 'enabled', value: (p) => p.enabled },
    { name: 'payload', value: (p) => p.payload_mode },
    { name: 'pending', value: (p) => p.counts?.pending ?? 0 },
    { name: 'processing', value: (p) => p.counts?.processing ?? 0 },
    { name: 'dead', value: (p) => p.counts?.dead ?? 0 },
    { name: 'lag_ms', value: (p) => p.counts?.lag_ms ?? 0 },
  ],
};

function listCommand(): Command {
  return withFormatOptions(withConnectionOptions(new Command('list')).option('--json', 'print the definitions (with counts) as JSON'), 'lines')
    .description('List the configured plugins with their queue counts and delivery lag')
    .addHelpText('after', '\nExample:\n  dbx plugin list --json\n')
    .action(async (opts: Flags & FormatFlags) => {
      const plugins = toWire(await withClient(opts, (c) => c.plugins()));
      await printListing(opts, PLUGIN_LISTING, plugins, 'lines');
    });
}

function testCommand(): Command {
  return withConnectionOptions(new Command('test').argument('<name>', 'plugin name'))
    .description('Send a synthetic event through the plugin now (not queued) and report the outcome')
    .option('--json', 'print the outcome and the body sent as JSON')
    .addHelpText('after', '\nExit code 1 when the plugin did not take the event.\n\nExample:\n  dbx plugin test hook\n')
    .action(async (name: string, opts: Flags) => {
      const { definition, result } = await withClient(opts, async (c) => ({ definition: await c.plugin(name), result: await c.testPlugin(name) }));
      if (!result.ok) process.exitCode = 1;
      if (opts.json) return printJson(result);
      const label = `${definition.options.kind} (${name})`;
      printLine(result.ok ? `${label} - ok (${Math.round(result.ms * 10) / 10} ms)` : `${label} - FAILED (${result.error ?? 'no answer'})`);
    });
}

function replayCommand(): Command {
  return withConnectionOptions(
    new Command('replay').argument('<plugin>', 'plugin name').argument('<aggregate>', 'aggregate type').argument('[aggregate_id]', 'only this aggregate'),
  )
    .description("Queue the stored events of an aggregate type (or one aggregate) of the tenant again for one plugin")
    .addOption(new Option('--payload-mode <mode>', "the plugin's own mode (another is refused: reconfigure the plugin first)").choices(PAYLOAD_MODES))
    .option('--json', 'print the answer as JSON')
    .addHelpText('after', '\nDelivery is at least once: receivers deduplicate on event_id.\n\nExample:\n  dbx plugin replay hook person p-1\n')
    .action(async (plugin: string, aggregate: string, id: string | undefined, opts: Flags & { payloadMode?: PluginPayloadMode }) => {
      const result = await withClient(opts, (c) =>
        c.replayPlugin(plugin, {
          aggregateType: aggregate,
          ...(id !== undefined ? { aggregateId: id } : {}),
          ...(opts.payloadMode !== undefined ? { payloadMode: opts.payloadMode } : {}),
        }),
      );
      if (opts.json) return printJson(result);
      if (result.queued === 0) return printLine(id !== undefined ? `no events found for ${aggregate}::${id}` : `no events found for '${aggregate}'`);
      printLine(`queued ${result.queued} event(s) for ${plugin}`);
    });
}

export function pluginCommand(): Command {
  const plugin = new Command('plugin')
    .description('Manage plugins: deliver every committed event to HTTP, TCP, a log, a process, PostgreSQL, NATS, CSV or JSON files')
    .enablePositionalOptions()
    .addHelpText(
      'after',
      '\nExamples:\n  dbx plugin config http --name hook --endpoint http://127.0.0.1:8080/events\n  dbx plugin list\n  dbx plugin replay hook person\n',
    );
  for (const command of [configCommand(), toggleCommand('enable'), toggleCommand('disable'), removeCommand(), listCommand(), testCommand(), replayCommand()]) {
    plugin.addCommand(command);
  }
  return plugin;
}
