/** `dbx token …`: issue Ed25519-signed tokens with the data directory's key. */
import { Command } from 'commander';
import { issueToken, readConfig, ConfigError } from '../core/index.js';
import { collect, parsePositiveInt, resolveDataDir } from './options.js';
import { UsageError, printJson } from './output.js';

export function tokenCommand(): Command {
  const token = new Command('token')
    .description('Manage access tokens')
    .addHelpText('after', '\nExample:\n  dbx token generate --group ops --user ada --action aggregate.read --json\n');
  token
    .command('generate')
    .description('Issue a token signed with this data directory\'s key')
    .requiredOption('-g, --group <group>', 'group claim')
    .requiredOption('-u, --user <user>', 'user claim')
    .option('--action <action>', 'allowed action, e.g. aggregate.read (repeatable; default *)', collect, [])
    .option('--resource <resource>', 'allowed resource: <type> or <type>/<id> (repeatable; default *)', collect, [])
    .option('--tenant <tenant>', 'tenant the token is bound to (repeatable)', collect, [])
    .option('--subject <subject>', 'subject (default <group>:<user>)')
    .option('--expiration <secs>', 'lifetime in seconds (0 = never)', parsePositiveInt)
    .option('--ttl <secs>', 'alias of --expiration', parsePositiveInt)
    .option('--limit <writes>', 'number of writes the token may make', parsePositiveInt)
    .option('--issued-by <who>', 'issuer recorded in the token', 'cli')
    .option('--data-dir <dir>', 'data directory')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  dbx token generate --group ops --user ada --action aggregate.read --tenant default --json\n')
    .action((opts: {
      group: string; user: string; action: string[]; resource: string[]; tenant: string[]; subject?: string;
      expiration?: number; ttl?: number; limit?: number; issuedBy: string; dataDir?: string; json?: boolean;
    }) => {
      const dataDir = resolveDataDir(opts.dataDir);
      const { config, exists } = readConfig(dataDir);
      if (!exists || !config.auth.private_key) throw new ConfigError(`no signing key in ${dataDir}/config.toml; start the server once first`);
      const ttl = opts.expiration ?? opts.ttl;
      const { token: value, claims } = issueToken(config.auth, {
        group: opts.group,
        user: opts.user,
        ...(opts.subject !== undefined ? { subject: opts.subject } : {}),
        actions: opts.action.length ? opts.action.map(checkAction) : ['*'],
        resources: opts.resource,
        tenants: opts.tenant,
        issued_by: opts.issuedBy,
        ...(ttl !== undefined ? { ttl_secs: ttl } : {}),
        ...(opts.limit !== undefined ? { write_events: opts.limit } : {}),
      });
      const record = {
        token: value,
        jti: claims.jti,
        subject: claims.sub,
        group: claims.group,
        user: claims.user,
        actions: claims.actions,
        resources: claims.resources,
        tenants: claims.tenants,
        issued_by: claims.issued_by,
        issued_at: new Date(claims.iat * 1000).toISOString(),
        expires_at: claims.exp !== undefined ? new Date(claims.exp * 1000).toISOString() : null,
        limits: claims.limits,
      };
      if (opts.json) printJson(record);
      else process.stdout.write(`token=${value}\n  jti=${record.jti}\n  subject=${record.subject}\n  expires_at=${record.expires_at ?? 'never'}\n  actions=[${record.actions.join(',')}]\n  tenants=[${record.tenants.join(',') || 'default'}]\n`);
    });
  return token;
}

/** DESIGN §7 actions: `resource.verb` (either side may be `*`), or `*`. */
const ACTION_PATTERN = /^(\*|\*\.\*|[a-z][a-z_]*\.(\*|[a-z][a-z_]*))$/;
const KNOWN_RESOURCES = new Set(['aggregate', 'schema', 'events', 'plugin', 'tenant', 'token', 'metrics', '*']);

function checkAction(action: string): string {
  const [resource] = action.split('.');
  if (action === 'replicate' || (ACTION_PATTERN.test(action) && KNOWN_RESOURCES.has(resource ?? ''))) return action;
  throw new UsageError(`--action '${action}' is not an action: use resource.verb (e.g. aggregate.read, aggregate.*), replicate or *`);
}
