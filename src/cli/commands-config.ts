/**
 * `dbx config`: print config.toml, or change settings. Every change is validated with the same
 * configSchema the server loads with, before anything is written: an invalid value leaves the file
 * untouched. Changing the shard layout (shard_count, multi_tenant) needs an empty store.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { stringify as stringifyToml } from 'smol-toml';
import { configPath, configSchema, decodeDataKey, readConfig, writeConfig, type Config } from '../core/index.js';
import { parseBool, parsePort, parsePositiveInt, resolveDataDir, type ConnectionFlags } from './options.js';
import { UsageError, CliError, printJson, printLine } from './output.js';
import { probeServer, withClient } from './session.js';
import { changeKeys, wantsKeyChange } from './config-keys.js';

interface Setting {
  option: Option;
  path: readonly [string] | readonly [string, string];
  /** Changing it moves data between shards: refused unless the store is empty. */
  layout?: boolean;
  /** Read by the CLI on every command, never by the server: saving it needs no restart. */
  cliOnly?: boolean;
}

const int = (flags: string, description: string): Option => new Option(flags, description).argParser(parsePositiveInt);

const SETTINGS: Setting[] = [
  { option: new Option('--port <port>', 'HTTP port').argParser(parsePort), path: ['port'] },
  { option: int('--cache-threshold <n>', 'aggregate heads cached per shard worker'), path: ['cache_threshold'] },
  { option: int('--list-page-size <n>', 'default take for lists'), path: ['list_page_size'] },
  { option: int('--page-limit <n>', 'maximum take'), path: ['page_limit'] },
  { option: int('--plugin-max-attempts <n>', 'plugin delivery attempts before a job is dead'), path: ['plugin_max_attempts'] },
  { option: int('--snapshot-threshold <n>', 'automatic snapshot every N events (0 = never)'), path: ['snapshot_threshold'] },
  { option: int('--snowflake-worker-id <n>', "this node's part of every event id (0..1023)"), path: ['snowflake_worker_id'] },
  { option: new Option('--verbose-responses <bool>', 'true or false').argParser(parseBool), path: ['verbose_responses'], cliOnly: true },
  { option: new Option('--domain <name>', 'the CLI\'s active domain (its tenant)'), path: ['domain'], cliOnly: true },
  { option: int('--shard-count <n>', 'LMDB shard environments (refused on a non-empty store)'), path: ['tenants', 'shard_count'], layout: true },
  { option: new Option('--multi-tenant <bool>', 'one shard per tenant (refused on a non-empty store)').argParser(parseBool), path: ['tenants', 'multi_tenant'], layout: true },
  { option: new Option('--durability <mode>', 'sync: ack after flush; async: ack once committed').choices(['sync', 'async']), path: ['storage', 'durability'] },
  { option: int('--flush-interval-ms <ms>', 'async durability: flush at least this often'), path: ['storage', 'flush_interval_ms'] },
  { option: int('--workers <n>', 'shard worker threads (0 = one per CPU)'), path: ['storage', 'workers'] },
  { option: new Option('--host <host>', 'listen address'), path: ['http', 'host'] },
  { option: new Option('--metrics-public <bool>', '/metrics without a token').argParser(parseBool), path: ['metrics', 'public'] },
];

function get(config: Config, path: Setting['path']): unknown {
  const [a, b] = path;
  const head = (config as Record<string, unknown>)[a];
  return b === undefined ? head : (head as Record<string, unknown>)[b];
}

function set(config: Record<string, unknown>, path: Setting['path'], value: unknown): void {
  const [a, b] = path;
  if (b === undefined) config[a] = value;
  else (config[a] as Record<string, unknown>)[b] = value;
}

function flagOf(setting: Setting): string {
  return setting.option.long ?? setting.option.flags;
}

async function storeIsEmpty(dataDir: string, flags: ConnectionFlags): Promise<boolean> {
  if (!existsSync(join(dataDir, 'shards'))) return true;
  return withClient(flags, async (client) => (await client.status()).aggregates === 0);
}

const HIDDEN = '<hidden; dbx config --show-secrets prints it>';

/** The signing key and the data encryption keys are printed only with --show-secrets. */
function printConfig(dataDir: string, config: Config, showSecrets: boolean, json: boolean): void {
  // JSON round trip drops undefined keys, which TOML cannot express.
  const shown = JSON.parse(JSON.stringify({ data_dir: dataDir, ...config })) as Config & { data_dir: string };
  if (!showSecrets) {
    if (shown.auth.private_key) shown.auth.private_key = HIDDEN;
    if (shown.data_encryption_key) shown.data_encryption_key = HIDDEN;
    shown.data_encryption_keys_retired = shown.data_encryption_keys_retired.map(() => HIDDEN);
  }
  if (json) printJson(shown);
  else process.stdout.write(`${stringifyToml(shown)}\n`);
}

export function configCommand(): Command {
  const command = new Command('config')
    .description('Update system configuration')
    .option('--data-dir <dir>', 'data directory whose config.toml to read or change')
    .option('--token <jwt>', 'token, when the running server must be asked whether the store is empty')
    .option('--clear-snapshot-threshold', 'turn automatic snapshots off (snapshot_threshold = 0)')
    .option('--show-secrets', 'print auth.private_key and the data encryption keys too')
    .option('--dek, --data-encryption-key <base64>', 'set the data encryption key (32 bytes, base64); refused if it would drop a key in use')
    .option('--rotate-dek', 'new data encryption key for new writes (with --dek: that one); older keys stay for reading')
    .option('--dek-file <path>', 'move the data encryption keys into <path> (keep it outside the data dir)')
    .option('--json', 'print the settings as JSON');
  for (const setting of SETTINGS) command.addOption(setting.option);
  return command
    .addHelpText(
      'after',
      '\nWithout a setting flag, prints config.toml (private key and data encryption keys hidden). With flags,\nvalidates and saves them; the server reads config.toml when it starts (dbx restart applies changes).\n\nExamples:\n  dbx config\n  dbx config --port 8080 --durability async --list-page-size 50\n  dbx config --rotate-dek\n  dbx config --dek-file /etc/eventdbx/dek\n',
    )
    .action(async (opts: Record<string, unknown> & ConnectionFlags & { clearSnapshotThreshold?: boolean; showSecrets?: boolean; json?: boolean; dataEncryptionKey?: string; rotateDek?: boolean; dekFile?: string }) => {
      // A malformed key is a usage error (exit 2), found before the data dir is touched.
      if (opts.dataEncryptionKey !== undefined) {
        try {
          decodeDataKey(opts.dataEncryptionKey, '--dek');
        } catch (err) {
          throw new UsageError(err instanceof Error ? err.message : String(err));
        }
      }
      const dataDir = resolveDataDir(opts.dataDir);
      const { config } = readConfig(dataDir);
      const keyChange = { ...(opts.dataEncryptionKey !== undefined ? { dek: opts.dataEncryptionKey } : {}), rotate: opts.rotateDek === true, ...(opts.dekFile !== undefined ? { dekFile: opts.dekFile } : {}) };
      const changes = SETTINGS.flatMap((s) => {
        const value = opts[s.option.attributeName()];
        return value === undefined ? [] : [{ setting: s, value }];
      });
      if (opts.clearSnapshotThreshold) {
        if (opts.snapshotThreshold !== undefined) throw new UsageError('--clear-snapshot-threshold cannot be combined with --snapshot-threshold');
        changes.push({ setting: SETTINGS.find((s) => s.path[0] === 'snapshot_threshold') as Setting, value: 0 });
      }
      if (wantsKeyChange(keyChange)) {
        if (changes.length > 0) throw new UsageError('--dek, --rotate-dek and --dek-file cannot be combined with other settings');
        changeKeys(dataDir, config, keyChange);
        const probe = await probeServer(dataDir, config);
        if (probe.state !== 'stopped') printLine('The running server reads its keys at start: run `dbx restart` to apply.');
        return;
      }
      if (changes.length === 0) return printConfig(dataDir, config, opts.showSecrets === true, opts.json === true);

      const next = structuredClone(config) as Record<string, unknown>;
      for (const { setting, value } of changes) set(next, setting.path, value);
      const parsed = configSchema.safeParse(next);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const key = issue?.path.map(String).join('.') ?? '';
        const culprit = changes.find((c) => c.setting.path.join('.') === key);
        throw new UsageError(`invalid value for ${culprit ? flagOf(culprit.setting) : key}: ${issue?.message ?? 'invalid'}; ${configPath(dataDir)} was not changed`);
      }
      const updated = parsed.data;
      if (updated.list_page_size > updated.page_limit) {
        throw new UsageError(`list_page_size (${updated.list_page_size}) cannot exceed page_limit (${updated.page_limit}); ${configPath(dataDir)} was not changed`);
      }
      const layoutChange = changes.find((c) => c.setting.layout && get(config, c.setting.path) !== c.value);
      if (layoutChange && !(await storeIsEmpty(dataDir, opts))) {
        throw new CliError(`${flagOf(layoutChange.setting)} is refused: the store is not empty (changing the shard layout would strand existing data)`);
      }
      updated.updated_at = new Date().toISOString();
      writeConfig(dataDir, updated);
      printLine(`Configuration saved to ${configPath(dataDir)}`);
      if (changes.every((c) => c.setting.cliOnly)) return;
      const probe = await probeServer(dataDir, updated);
      if (probe.state !== 'stopped') printLine('The running server reads config.toml at start: run `dbx restart` to apply.');
    });
}
