/**
 * `dbx tenant …` (reference §12.3, issue 12): placement (assign, unassign, list, stats), aggregate
 * quotas, per-tenant write rates, and the per-tenant view. Every subcommand goes through the HTTP
 * API (`/v1/tenants…`): to the running server, or, with it stopped, to the engine this command
 * starts on the data directory (session.ts), so an assignment made either way is the one the
 * server places by — there is one code path and it always knows whether the tenant has data.
 * Outputs follow the original's wording.
 */
import { Command, InvalidArgumentError } from 'commander';
import { toWire, type EventDbxClient } from '../client/index.js';
import { parseInput, tenantSchema } from '../core/index.js';
import { withConnectionOptions, type ConnectionFlags } from './options.js';
import { withFormatOptions, type FormatFlags } from './format.js';
import { UsageError, printJson, printLine } from './output.js';
import { printTenantMeta, printTenantStats, printTenantViews } from './tenant-listings.js';
import { withClient } from './session.js';
import { tenantDataCommands } from './commands-tenant-data.js';

type Flags = ConnectionFlags & FormatFlags;

function parseTenant(value: string): string {
  try {
    return parseInput(tenantSchema, value, 'tenant');
  } catch {
    throw new InvalidArgumentError("a tenant id starts with a letter or digit and uses only letters, digits, '-' or '_' (at most 64)");
  }
}

function parsePositive(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError('must be a positive integer');
  return Number(value);
}

function parseRate(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0)) throw new InvalidArgumentError('must be a positive number of events per second');
  return n;
}

/** Runs against the server (or the stopped data dir) like every other command. */
function run<T>(flags: Flags, fn: (client: EventDbxClient) => Promise<T>): Promise<T> {
  return withClient(flags, (client) => fn(client));
}

function tenantCmd(name: string, description: string): Command {
  return withConnectionOptions(new Command(name)).description(description);
}

function assignCommand(): Command {
  return tenantCmd('assign', 'Pin a tenant to a shard (multi-tenant mode); a tenant with data is moved live, or refused while no move is possible')
    .argument('<tenant>', 'tenant id', parseTenant)
    .requiredOption('--shard <shard>', 'shard-0003 or 3 (below the configured shard count)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  dbx tenant assign acme --shard shard-0003\n')
    .action((tenant: string, opts: Flags & { shard: string }) =>
      run(opts, async (client) => {
        const result = await client.assignTenant(tenant, opts.shard);
        if (opts.json) return printJson(toWire(result));
        printLine(result.changed ? `Assigned tenant '${tenant}' to shard '${result.shard}'.` : `Tenant '${tenant}' is already assigned to shard '${result.shard}'.`);
        if (result.note) printLine(`note: ${result.note}`);
      }),
    );
}

function unassignCommand(): Command {
  return tenantCmd('unassign', 'Remove a tenant\'s explicit shard assignment (hash placement applies again)')
    .argument('<tenant>', 'tenant id', parseTenant)
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  dbx tenant unassign acme\n')
    .action((tenant: string, opts: Flags) =>
      run(opts, async (client) => {
        const result = await client.unassignTenant(tenant);
        if (opts.json) return printJson(toWire(result));
        printLine(
          result.changed
            ? `Removed explicit shard assignment for tenant '${tenant}'; default hashing will apply.`
            : `Tenant '${tenant}' was not explicitly assigned to a shard.`,
        );
      }),
    );
}

function listCommand(): Command {
  return withFormatOptions(
    tenantCmd('list', 'Tenants with an explicit shard, an aggregate quota or a write rate, by tenant')
      .option('--shard <shard>', 'only the tenants assigned to this shard')
      .option('--json', 'print JSON: [{ tenant, shard?, quota?, count?, writes_per_sec?, burst? }]'),
  )
    .addHelpText('after', '\nExample:\n  dbx tenant list --shard shard-0001 --json\n  dbx tenant list --format csv\n')
    .action((opts: Flags & { shard?: string }) =>
      run(opts, async (client) => {
        const list = await client.tenantMeta(opts.shard !== undefined ? { shard: opts.shard } : {});
        await printTenantMeta(opts, list.items.map((e) => toWire(e)), list.shardCount);
      }),
    );
}

function statsCommand(): Command {
  return withFormatOptions(tenantCmd('stats', 'Explicit tenant assignments per shard').option('--json', 'print JSON: { "shard-0001": 2, … }'))
    .addHelpText('after', '\nExample:\n  dbx tenant stats --json\n  dbx tenant stats --format csv\n')
    .action((opts: Flags) =>
      run(opts, async (client) => {
        const { shards } = await client.tenantStats();
        await printTenantStats(opts, shards);
      }),
    );
}

function quotaCommand(): Command {
  const quota = new Command('quota')
    .description('Aggregate quotas: creating an aggregate beyond one is refused (403 quota_exceeded)')
    .addHelpText('after', '\nExample:\n  dbx tenant quota set acme --max-aggregates 10000\n  dbx tenant quota recalc acme\n');
  quota.addCommand(
    tenantCmd('set', 'Set the most aggregates a tenant may hold')
      .argument('<tenant>', 'tenant id', parseTenant)
      .requiredOption('--max-aggregates <n>', 'a positive integer', parsePositive)
      .addHelpText('after', '\nExample:\n  dbx tenant quota set acme --max-aggregates 10000\n')
      .action((tenant: string, opts: Flags & { maxAggregates: number }) =>
        run(opts, async (client) => {
          await client.setTenantQuota(tenant, opts.maxAggregates);
          printLine(`Set aggregate quota for tenant '${tenant}' to ${opts.maxAggregates}.`);
        }),
      ),
  );
  quota.addCommand(
    tenantCmd('clear', "Remove a tenant's aggregate quota")
      .argument('<tenant>', 'tenant id', parseTenant)
      .addHelpText('after', '\nExample:\n  dbx tenant quota clear acme\n')
      .action((tenant: string, opts: Flags) =>
        run(opts, async (client) => {
          const { cleared } = await client.clearTenantQuota(tenant);
          printLine(cleared ? `Cleared aggregate quota for tenant '${tenant}'.` : `No aggregate quota configured for tenant '${tenant}'.`);
        }),
      ),
  );
  quota.addCommand(
    tenantCmd('recalc', "Recount a tenant's aggregates from the stored heads")
      .argument('<tenant>', 'tenant id', parseTenant)
      .addHelpText('after', '\nExample:\n  dbx tenant quota recalc acme\n')
      .action((tenant: string, opts: Flags) =>
        run(opts, async (client) => {
          const { count } = await client.recalcTenantQuota(tenant);
          printLine(`Recalculated aggregate count for tenant '${tenant}' (${count} aggregate(s)).`);
        }),
      ),
  );
  return quota;
}

function limitCommand(): Command {
  return tenantCmd('limit', "Limit a tenant's writes (a token bucket in events per second); beyond it writes get 429 rate_limited with Retry-After")
    .argument('<tenant>', 'tenant id', parseTenant)
    .option('--writes-per-sec <n>', 'events per second', parseRate)
    .option('--burst <n>', 'events accepted at once after idling (default: one second\'s worth)', parsePositive)
    .option('--clear', 'remove the limit')
    .addHelpText('after', '\nExample:\n  dbx tenant limit acme --writes-per-sec 500 --burst 2000\n  dbx tenant limit acme --clear\n')
    .action((tenant: string, opts: Flags & { writesPerSec?: number; burst?: number; clear?: boolean }) =>
      run(opts, async (client) => {
        if (opts.clear) {
          if (opts.writesPerSec !== undefined || opts.burst !== undefined) throw new UsageError('--clear takes no --writes-per-sec or --burst');
          const { cleared } = await client.clearTenantLimit(tenant);
          return printLine(cleared ? `Cleared write limit for tenant '${tenant}'.` : `No write limit configured for tenant '${tenant}'.`);
        }
        if (opts.writesPerSec === undefined) throw new UsageError('give --writes-per-sec <n> (or --clear)');
        const entry = await client.setTenantLimit(tenant, { writesPerSec: opts.writesPerSec, ...(opts.burst !== undefined ? { burst: opts.burst } : {}) });
        printLine(`Limited tenant '${tenant}' to ${entry.writesPerSec} events/s (burst ${entry.burst}).`);
      }),
    );
}

function showCommand(): Command {
  return withFormatOptions(
    tenantCmd('show', 'One tenant (or every tenant): shard, aggregates, events, approximate bytes, quota, write rate, plugin lag')
      .argument('[tenant]', 'tenant id (default: every tenant the token may see)', parseTenant)
      .option('--json', 'print JSON (a named tenant: its object; else an array)'),
  )
    .addHelpText('after', '\nExample:\n  dbx tenant show acme\n  dbx tenant show --format csv\n')
    .action((tenant: string | undefined, opts: Flags) =>
      run(opts, async (client) => {
        const views = tenant === undefined ? await client.tenants() : [await client.tenantView(tenant)];
        await printTenantViews(opts, views.map((v) => toWire(v)), tenant !== undefined);
      }),
    );
}

/** `extra`: subcommands other modules add (export, import, remove). */
export function tenantCommand(extra: Command[] = []): Command {
  const tenant = new Command('tenant')
    .description('Tenant placement, quotas, write limits and usage (multi-tenant hosting)')
    .addHelpText('after', '\nExample:\n  dbx tenant assign acme --shard 3\n  dbx tenant quota set acme --max-aggregates 1000\n  dbx tenant list\n');
  for (const command of [assignCommand(), unassignCommand(), listCommand(), statsCommand(), quotaCommand(), limitCommand(), showCommand(), ...tenantDataCommands(), ...extra]) {
    tenant.addCommand(command);
  }
  return tenant;
}
