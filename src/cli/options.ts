/** Options and parsers shared by several commands. Parser failures are usage errors (exit 2). */
import { Command, InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import { defaultDataDir, jsonTextProblem } from '../core/index.js';
import { UsageError } from './output.js';

export function resolveDataDir(flag: string | undefined): string {
  return flag ? resolve(flag) : defaultDataDir();
}

export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new InvalidArgumentError('port must be an integer from 0 to 65535');
  return port;
}

export function parsePositiveInt(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError('must be a non-negative integer');
  return Number(value);
}

export function parseBool(value: string): boolean {
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new InvalidArgumentError('must be true or false');
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Flags that say which data directory, token and tenant a command works with. */
export interface ConnectionFlags {
  dataDir?: string;
  token?: string;
  tenant?: string;
  /** A server URL (http:// or https://) instead of the data directory's own server. */
  server?: string;
  /** PEM CA file trusted for https:// (else $EVENTDBX_CA_FILE). */
  caFile?: string;
}

/**
 * The options that name the EventDBX server to talk to (`--url`, `--server`). Marked, because a
 * command may own a `--url` or `--server` of its own (`plugin config postgres --url postgres://…`,
 * `plugin config nats --server nats://…`) that the preAction hook must leave alone.
 */
const SERVER_OPTIONS = new WeakSet<Option>();

export function serverOption(flags: '--url <url>' | '--server <url>', description: string): Option {
  const option = new Option(flags, description);
  SERVER_OPTIONS.add(option);
  return option;
}

export function withConnectionOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'data directory (default $EVENTDBX_DATA_DIR or ~/.eventdbx)')
    .addOption(serverOption('--url <url>', "talk to this server (http://host:port or https://…) instead of the data directory's own (default $EVENTDBX_URL)"))
    .addOption(serverOption('--server <url>', 'the same as --url').hideHelp())
    .option('--token <jwt>', 'token (default $EVENTDBX_TOKEN, else <data_dir>/cli.token)')
    .option('--tenant <tenant>', 'tenant (default $EVENTDBX_TENANT, else the checked-out domain)')
    .option('--ca-file <path>', 'PEM CA certificate(s) to trust for https:// (default $EVENTDBX_CA_FILE)');
}

/**
 * Commander's preAction hook (program.ts): `--url`, else `$EVENTDBX_URL`, becomes `server`, the one
 * name the sessions read, so `--url`, `--server` and the variable mean the same everywhere.
 */
export function normaliseConnectionFlags(command: Command): void {
  const opts = command.opts<{ url?: string; server?: string }>();
  const names = (flag: string): boolean => command.options.some((o) => o.long === flag && SERVER_OPTIONS.has(o));
  if (!names('--url') && !names('--server')) return;
  const url = (names('--url') ? opts.url : undefined) ?? (names('--server') ? opts.server : undefined) ?? (process.env.EVENTDBX_URL || undefined);
  if (url === undefined) return;
  if (!/^https?:\/\/[^/]/i.test(url)) throw new UsageError(`--url ${url}: expected http://host:port or https://host:port`);
  command.setOptionValue('server', url.replace(/\/+$/, ''));
}

export function jsonOption(): Option {
  return new Option('--json', 'print JSON for machines instead of text');
}

/** `--field KEY=VALUE`: split at the first '=', both sides trimmed; values stay strings (as the original). */
export function parseFields(fields: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const field of fields) {
    const at = field.indexOf('=');
    if (at < 0) throw new UsageError(`--field ${field}: missing value (expected KEY=VALUE)`);
    const key = field.slice(0, at).trim();
    if (!key) throw new UsageError(`--field ${field}: field key cannot be empty`);
    out[key] = field.slice(at + 1).trim();
  }
  return out;
}

/**
 * A JSON flag is held to the API's I-JSON rules before it is parsed (json-text.ts): JSON.parse
 * would keep the last of two equal member names and turn 1e400 into Infinity (sent as null), so
 * the server would receive, and store, something other than what was typed.
 */
export function parseJsonFlag(flag: string, text: string): unknown {
  const problem = jsonTextProblem(text);
  if (problem) throw new UsageError(`${flag}${problem.path ? ` at ${problem.path}` : ''}: ${problem.message}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${flag} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const overflow = nonFiniteAt(value, '');
  if (overflow !== undefined) throw new UsageError(`${flag}${overflow ? ` at ${overflow}` : ''}: a number is too large for a double (it would be sent as null)`);
  return value;
}

/** The path of the first number JSON.parse made infinite, or undefined. */
function nonFiniteAt(value: unknown, path: string): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : path;
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, item] of Object.entries(value)) {
    const found = nonFiniteAt(item, path ? `${path}.${key}` : key);
    if (found !== undefined) return found;
  }
  return undefined;
}

export function parseJsonObjectFlag(flag: string, text: string): Record<string, unknown> {
  const value = parseJsonFlag(flag, text);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new UsageError(`${flag} must be a JSON object`);
  return value as Record<string, unknown>;
}

/** `--payload` or `--field …` (never both); no fields → `{}`. */
export function payloadFrom(opts: { payload?: string; field?: string[] }): Record<string, unknown> {
  const fields = opts.field ?? [];
  if (opts.payload !== undefined && fields.length > 0) throw new UsageError('--payload cannot be used together with --field');
  if (opts.payload !== undefined) return parseJsonObjectFlag('--payload', opts.payload);
  return parseFields(fields);
}
