/**
 * `dbx token …`: issue, list, revoke and refresh tokens, and rotate the signing keys. The ledger is
 * an LMDB environment in the data directory that the server reads too, so these commands work on
 * it directly whether or not a server runs, and a running server sees each change within a second
 * (see TokenLedger). Only `rotate-keys` goes through a running server: it must swap its keys.
 */
import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { ConfigError, isActionPattern, loadDataCipher, readConfig, tokenIssueSchema, tokenRefreshSchema, type Config, type IssueInput } from '../core/index.js';
import type { TokenLedger, TokenView } from '../coordinator/index.js';
import { collect, parsePositiveInt, resolveDataDir } from './options.js';
import { printListing, withFormatOptions, type FormatFlags, type ListingSpec } from './format.js';
import { CliError, UsageError, printJson } from './output.js';
import { probeServer, resolveToken } from './session.js';
import { missingDataDirError } from './direct.js';

interface LedgerContext {
  dataDir: string;
  config: Config;
  ledger: TokenLedger;
}

/** Opens the data directory's ledger for one command (the coordinator loads only here). */
async function withLedger<T>(dataDirFlag: string | undefined, fn: (ctx: LedgerContext) => Promise<T>): Promise<T> {
  const dataDir = resolveDataDir(dataDirFlag);
  if (!existsSync(dataDir)) throw missingDataDirError(dataDir);
  const { config, exists } = readConfig(dataDir);
  if (!exists || !config.auth.private_key) throw new ConfigError(`no signing key in ${dataDir}/config.toml; start the server once first`);
  const { TokenLedger } = await import('../coordinator/index.js');
  const ledger = new TokenLedger(dataDir, loadDataCipher(config, dataDir));
  try {
    return await fn({ dataDir, config, ledger });
  } finally {
    await ledger.close();
  }
}

const when = (iso: string | null): string => iso ?? 'never';

const TOKEN_LISTING: ListingSpec<TokenView> = {
  empty: 'no issued tokens',
  columns: [
    { name: 'jti', value: (r) => r.jti },
    { name: 'subject', value: (r) => r.subject },
    { name: 'status', value: (r) => statusText(r) },
    { name: 'expires', value: (r) => when(r.expires_at) },
    { name: 'writes left', value: (r) => (r.writes_remaining === null ? 'unlimited' : `${r.writes_remaining}/${r.limits.write_events}`) },
    { name: 'actions', value: (r) => r.actions.join(',') },
    { name: 'tenants', value: (r) => tenantsText(r) },
  ],
};

/**
 * The tenants a token opens, as core/tokens.ts allowsTenant decides: no list means the default
 * tenant only, except for a `*` action, which makes it server-wide.
 */
function tenantsText(record: Pick<TokenView, 'tenants' | 'actions'>): string {
  if (record.tenants.length > 0) return record.tenants.join(',');
  return record.actions.some((a) => a === '*' || a === '*.*') ? '*' : 'default';
}

function printRecord(token: string | undefined, record: TokenView): void {
  const lines = [
    `token=${token ?? '<hidden>'}`,
    `  jti=${record.jti}`,
    `  subject=${record.subject}`,
    `  group=${record.group}`,
    `  user=${record.user}`,
    `  status=${statusText(record)}`,
    `  issued_by=${record.issued_by}`,
    `  issued_at=${record.issued_at}`,
    `  expires_at=${when(record.expires_at)}${record.limits.keep_alive ? ' (keep-alive: this expiry is not enforced)' : ''}`,
    `  actions=[${record.actions.join(',')}]`,
    `  resources=[${record.resources.join(',')}]`,
    `  tenants=[${tenantsText(record)}]`,
    `  writes=${record.limits.write_events === null ? 'unlimited' : `${record.writes_remaining} of ${record.limits.write_events} left`}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function statusText(record: TokenView): string {
  if (record.status === 'revoked') return `revoked${record.revoke_reason ? ` (${record.revoke_reason})` : ''}`;
  return record.expired ? 'expired' : 'active';
}

function checkAction(action: string): string {
  if (isActionPattern(action)) return action;
  throw new UsageError(`--action '${action}' is not an action: use resource.verb (e.g. aggregate.read, aggregate.*), replicate or *`);
}

/** The flag each field of the API's token body comes from, for the error line. */
const TOKEN_FLAGS: Record<string, string> = {
  group: '--group',
  user: '--user',
  subject: '--subject',
  actions: '--action',
  resources: '--resource',
  tenants: '--tenant',
  expiration_secs: '--expiration',
  write_limit: '--limit',
};

/** The same validation as `POST /v1/tokens` (core/token-input.ts): a usage error naming the flag. */
function checkTokenFlags<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = String(issue?.path[0] ?? '');
  const value = issue && issue.path.length > 1 ? ` '${String((body as Record<string, unknown[]>)[field]?.[issue.path[1] as number])}'` : '';
  throw new UsageError(`${TOKEN_FLAGS[field] ?? field}${value}: ${issue?.message ?? 'invalid'}`);
}

/** `--token` or the positional argument (the original took it positionally). */
function tokenArgument(positional: string | undefined, flag: string | undefined): string {
  const value = flag ?? positional;
  if (!value) throw new UsageError('name the token: --token <token|jti>');
  return value;
}

export function tokenCommand(): Command {
  const token = new Command('token')
    .description('Manage access tokens (recorded in the data directory\'s token ledger)')
    .addHelpText('after', '\nExample:\n  dbx token generate --group ops --user ada --action aggregate.read --json\n  dbx token list\n  dbx token revoke --token <jti>\n');

  token
    .command('generate')
    .description('Issue a token signed with this data directory\'s key and record it in the ledger')
    .requiredOption('-g, --group <group>', 'group claim')
    .requiredOption('-u, --user <user>', 'user claim')
    .option('--action <action>', 'allowed action, e.g. aggregate.read (repeatable; default *)', collect, [])
    .option('--resource <resource>', 'allowed resource: <type> or <type>/<id> (repeatable; default *)', collect, [])
    .option('--tenant <tenant>', 'tenant the token is bound to (repeatable)', collect, [])
    .option('--subject <subject>', 'subject (default <group>:<user>)')
    .option('--expiration <secs>', 'lifetime in seconds (0 = never; default [auth] default_ttl_secs)', parsePositiveInt)
    .option('--ttl <secs>', 'alias of --expiration', parsePositiveInt)
    .option('--limit <writes>', 'accepted writes the token may make (each event of a batch counts)', parsePositiveInt)
    .option('--write-limit <writes>', 'alias of --limit', parsePositiveInt)
    .option('--keep-alive', 'exempt from expiry (not from revocation)')
    .option('--issued-by <who>', 'issuer recorded in the token', 'cli')
    .option('--data-dir <dir>', 'data directory')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  dbx token generate --group ops --user ada --action aggregate.read --tenant default --limit 100 --json\n')
    .action(async (opts: {
      group: string; user: string; action: string[]; resource: string[]; tenant: string[]; subject?: string; expiration?: number;
      ttl?: number; limit?: number; writeLimit?: number; keepAlive?: boolean; issuedBy: string; dataDir?: string; json?: boolean;
    }) => {
      const ttl = opts.expiration ?? opts.ttl;
      const limit = opts.limit ?? opts.writeLimit;
      const body = checkTokenFlags(tokenIssueSchema, {
        group: opts.group,
        user: opts.user,
        ...(opts.subject !== undefined ? { subject: opts.subject } : {}),
        actions: opts.action.length ? opts.action.map(checkAction) : ['*'],
        resources: opts.resource,
        tenants: opts.tenant,
        ...(ttl !== undefined ? { expiration_secs: ttl } : {}),
        ...(limit !== undefined ? { write_limit: limit } : {}),
      });
      const input: IssueInput = {
        group: body.group,
        user: body.user,
        ...(body.subject !== undefined ? { subject: body.subject } : {}),
        actions: body.actions,
        resources: body.resources ?? [],
        tenants: body.tenants ?? [],
        issued_by: opts.issuedBy,
        ...(body.expiration_secs !== undefined ? { ttl_secs: body.expiration_secs } : {}),
        ...(body.write_limit !== undefined ? { write_events: body.write_limit } : {}),
        ...(opts.keepAlive ? { keep_alive: true } : {}),
      };
      await withLedger(opts.dataDir, async ({ config, ledger }) => {
        const { issueRecorded } = await import('../coordinator/index.js');
        const issued = await issueRecorded(config.auth, ledger, input);
        if (opts.json) printJson({ token: issued.token, ...issued.record });
        else printRecord(issued.token, issued.record);
      });
    });

  withFormatOptions(token.command('list'))
    .description('List recorded tokens: status, expiry, remaining writes (never a token value)')
    .option('--data-dir <dir>', 'data directory')
    .addHelpText('after', '\nExample:\n  dbx token list --json\n')
    .action(async (opts: { dataDir?: string } & FormatFlags) => {
      await withLedger(opts.dataDir, async ({ ledger }) => printListing(opts, TOKEN_LISTING, ledger.list()));
    });

  token
    .command('revoke')
    .description('Revoke a token: a running server refuses it within a second')
    .argument('[token-or-jti]', 'the token, or its jti')
    .option('--token <value>', 'the token, or its jti')
    .option('--reason <text>', 'why (recorded)')
    .option('--data-dir <dir>', 'data directory')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  dbx token revoke --token 1f0c…-jti --reason "laptop lost"\n')
    .action(async (positional: string | undefined, opts: { token?: string; reason?: string; dataDir?: string; json?: boolean }) => {
      const value = tokenArgument(positional, opts.token);
      await withLedger(opts.dataDir, async ({ config, ledger }) => {
        const { resolveJti } = await import('../coordinator/index.js');
        const record = await ledger.revoke(resolveJti(config.auth, ledger, value), opts.reason ?? null);
        if (opts.json) printJson({ jti: record.jti, revoked: true, reason: record.revoke_reason, revoked_at: record.revoked_at });
        else process.stdout.write(`revoked ${record.jti}\n`);
      });
    });

  token
    .command('refresh')
    .description('Issue a replacement with the same grants; the old token stops working')
    .argument('[token-or-jti]', 'the token, or its jti')
    .option('--token <value>', 'the token, or its jti')
    .option('--expiration <secs>', 'new lifetime (default: the old one)', parsePositiveInt)
    .option('--ttl <secs>', 'alias of --expiration', parsePositiveInt)
    .option('--limit <writes>', 'lower write allowance (default and most: what the old token had left)', parsePositiveInt)
    .option('--data-dir <dir>', 'data directory')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  dbx token refresh --token <jti> --expiration 86400\n')
    .action(async (positional: string | undefined, opts: { token?: string; expiration?: number; ttl?: number; limit?: number; dataDir?: string; json?: boolean }) => {
      const value = tokenArgument(positional, opts.token);
      const ttl = opts.expiration ?? opts.ttl;
      await withLedger(opts.dataDir, async ({ config, ledger }) => {
        const { refreshToken } = await import('../coordinator/index.js');
        const issued = await refreshToken(
          config.auth,
          ledger,
          value,
          checkTokenFlags(tokenRefreshSchema, {
            ...(ttl !== undefined ? { expiration_secs: ttl } : {}),
            ...(opts.limit !== undefined ? { write_limit: opts.limit } : {}),
          }),
        );
        if (opts.json) printJson({ token: issued.token, ...issued.record });
        else {
          process.stdout.write('issued replacement token:\n');
          printRecord(issued.token, issued.record);
        }
      });
    });

  token
    .command('rotate-keys')
    .description('Replace the signing key pair: every token is revoked, cli.token is re-issued')
    .option('--data-dir <dir>', 'data directory')
    .option('--token <token>', 'a server administrator token, when a server runs (default cli.token)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  dbx token rotate-keys\n')
    .action(async (opts: { dataDir?: string; token?: string; json?: boolean }) => {
      const dataDir = resolveDataDir(opts.dataDir);
      const probe = await probeServer(dataDir);
      let result: { public_key: string; key_id: string; revoked: number; rotated_at: string };
      if (probe.state === 'running') {
        // The running server must switch keys itself, or it would keep accepting the old tokens.
        const { createClient, toWire } = await import('../client/index.js');
        const client = createClient({ url: probe.url, token: resolveToken({ ...(opts.token ? { token: opts.token } : {}) }, dataDir), retry: { attempts: 1 } });
        try {
          result = toWire(await client.rotateSigningKeys());
        } finally {
          await client.close();
        }
      } else if (probe.state === 'unresponsive') {
        throw new CliError(`the server (pid ${probe.info.pid}) owns ${dataDir} but does not answer: rotate the keys once it does`, 1, 'unavailable');
      } else {
        result = await withLedger(opts.dataDir, async ({ config, ledger }) => {
          const { rotateSigningKeys } = await import('../coordinator/index.js');
          return rotateSigningKeys(dataDir, config.auth, ledger);
        });
      }
      if (opts.json) printJson(result);
      else process.stdout.write(`rotated signing keys (key id ${result.key_id}); revoked ${result.revoked} tokens; new ${dataDir}/cli.token written\n`);
    });
  return token;
}
