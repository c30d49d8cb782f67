/**
 * `dbx tenant export | import | remove | check` (issue 12 item 6): a tenant's data as one NDJSON
 * file, back into an empty tenant, removed, or checked offline. Export and import stream (memory
 * stays flat) with a progress bar on a terminal; like every command they go through the running
 * server or, with it stopped, the engine this command starts on the data directory (session.ts).
 *
 * The export is checked while it is written (tenant-check.ts): the file is kept only if every hash
 * and root in it recomputes, and its roots digest is printed — keep it to check the file later
 * with `dbx tenant check <file> --digest <hex>`.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { Command, InvalidArgumentError } from 'commander';
import { toWire } from '../client/index.js';
import { StreamOpener } from '../client/stream.js';
import { parseInput, tenantSchema } from '../core/index.js';
import { DurableFile } from './export-files.js';
import { withConnectionOptions, type ConnectionFlags } from './options.js';
import { CliError, UsageError, keyValues, printJson, printLine, progress, readableInputFile } from './output.js';
import { clientTrust, resolveToken, withClient } from './session.js';
import { ExportChecker, checkExport, describeCheck } from './tenant-check.js';

type Flags = ConnectionFlags & { json?: boolean };

/** A silence this long between two chunks of the export fails it. */
const STREAM_IDLE_MS = 300_000;
const HEX = /^[0-9a-f]{64}$/;

function parseTenant(value: string): string {
  try {
    return parseInput(tenantSchema, value, 'tenant');
  } catch {
    throw new InvalidArgumentError("a tenant id starts with a letter or digit and uses only letters, digits, '-' or '_' (at most 64)");
  }
}

function parseDigest(value: string): string {
  if (!HEX.test(value)) throw new InvalidArgumentError('must be 64 lowercase hex digits (the roots_digest the export printed)');
  return value;
}

const newlines = (chunk: Uint8Array): number => {
  let n = 0;
  for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) n++;
  return n;
};

function exportCommand(): Command {
  return withConnectionOptions(new Command('export'))
    .description("Write every aggregate of a tenant with its events, hashes and roots to one NDJSON file (the format `dbx import` reads), checked as it is written")
    .argument('<tenant>', 'tenant id', parseTenant)
    .requiredOption('-o, --output <file>', 'the file to write (replaced only once the export is complete and checked)')
    .option('--json', 'print the summary as JSON')
    .addHelpText('after', '\nKeep the printed roots_digest: `dbx tenant check <file> --digest <hex>` proves the file unchanged later.\n\nExample:\n  dbx tenant export acme --output acme.ndjson\n')
    .action(async (tenant: string, opts: Flags & { output: string }) => {
      const path = resolve(opts.output);
      const summary = await withClient(opts, async (client, ctx) => {
        const trust = ctx.mode === 'server' ? clientTrust(opts, ctx.dataDir, ctx.config, opts.server === undefined) : {};
        const ca = trust.ca ?? (trust.caFile !== undefined ? readFileSync(trust.caFile) : undefined);
        const opener = new StreamOpener({ url: new URL(client.url), token: resolveToken(opts, ctx.dataDir, opts.server), tenant, timeoutMs: STREAM_IDLE_MS, ...(ca !== undefined ? { ca } : {}) });
        const file = await DurableFile.create(path);
        const checker = new ExportChecker();
        let bar: ReturnType<typeof progress> | undefined;
        try {
          const view = (await opener.json(`/v1/tenants/${encodeURIComponent(tenant)}`)) as { events?: number };
          bar = progress(`exporting ${tenant}`, typeof view.events === 'number' ? view.events : 0);
          const { body } = await opener.open(`/v1/tenants/${encodeURIComponent(tenant)}/export`, {}, 'application/x-ndjson');
          for await (const raw of body) {
            const chunk = typeof raw === 'string' ? Buffer.from(raw) : (raw as Buffer);
            checker.push(chunk);
            await file.write(chunk);
            bar.increment(newlines(chunk));
          }
          const check = checker.finish();
          if (!check.consistent) throw new CliError(`the export does not check: ${describeCheck(check)}`);
          await file.commit();
          return check;
        } catch (err) {
          await file.abort();
          throw err;
        } finally {
          bar?.stop();
          await opener.close();
        }
      });
      const out = { tenant, file: path, aggregates: summary.aggregates, events: summary.events, sha256: summary.sha256, roots_digest: summary.roots_digest };
      if (opts.json) printJson(out);
      else printLine(keyValues(out));
    });
}

/** The file's lines as they are read, counted for the progress bar. */
async function* counted(path: string, onLines: (n: number) => void): AsyncGenerator<Uint8Array> {
  for await (const chunk of createReadStream(path, { highWaterMark: 256 * 1024 })) {
    onLines(newlines(chunk as Buffer));
    yield chunk as Buffer;
  }
}

function importCommand(): Command {
  return withConnectionOptions(new Command('import'))
    .description('Load a tenant export into an empty tenant (every hash and root recomputed, here first and again by the server)')
    .argument('<file>', 'an NDJSON file written by `dbx tenant export`')
    .argument('[tenant]', 'the tenant to load it into (default: the CLI tenant, --tenant / $EVENTDBX_TENANT)', parseTenant)
    .option('--resume', 're-run an import that failed part-way (versions already stored with the same hash are skipped)')
    .option('--json', 'print the summary as JSON')
    .addHelpText('after', '\nRefused (tenant_not_empty) when the tenant already holds aggregates.\n\nExample:\n  dbx tenant import acme.ndjson acme-restored\n')
    .action(async (fileArg: string, tenantArg: string | undefined, opts: Flags & { resume?: boolean }) => {
      const path = resolve(readableInputFile(fileArg));
      const local = await checkExport(createReadStream(path));
      if (!local.consistent) throw new CliError(`${fileArg} does not check: ${describeCheck(local)}`);
      const result = await withClient(opts, async (client) => {
        const tenant = tenantArg ?? client.tenant;
        const bar = progress(`importing into ${tenant}`, local.lines);
        try {
          return await client.importTenant(tenant, counted(path, (n) => bar.increment(n)), { resume: opts.resume ?? false });
        } finally {
          bar.stop();
        }
      });
      const wire = toWire(result) as Record<string, unknown>;
      if (opts.json) printJson(wire);
      else printLine(keyValues({ ...wire, roots_digest: local.roots_digest }));
    });
}

async function confirmRemove(tenant: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const closed = new Promise<string>((done) => rl.once('close', () => done('')));
  try {
    const answer = await Promise.race([rl.question(`This removes every aggregate and event of tenant '${tenant}'. Type the tenant id to confirm: `), closed]);
    return answer.trim().toLowerCase() === tenant;
  } catch {
    return false;
  } finally {
    rl.close();
  }
}

function removeCommand(): Command {
  return withConnectionOptions(new Command('remove'))
    .description("Remove a tenant: every data range on every shard, its assignment, quota and write limit (schemas and tokens stay)")
    .argument('<tenant>', 'tenant id', parseTenant)
    .option('-y, --yes', 'do not ask for confirmation (needed off a terminal)')
    .option('--force', 'remove even while the tenant has undelivered plugin jobs (they are dropped)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nNeeds a token valid for every tenant. Refused while a move, export or import holds the tenant.\n\nExample:\n  dbx tenant remove acme --yes\n')
    .action(async (tenant: string, opts: Flags & { yes?: boolean; force?: boolean }) => {
      if (!opts.yes && !process.stdin.isTTY) throw new UsageError('dbx tenant remove asks for confirmation on a terminal; pass --yes to remove without asking');
      if (!opts.yes && !(await confirmRemove(tenant))) throw new CliError('remove cancelled');
      const result = toWire(await withClient(opts, (client) => client.removeTenant(tenant, { force: opts.force ?? false }))) as {
        aggregates: number;
        events: number;
        jobs_dropped: number;
        shards: string[];
      };
      if (opts.json) return printJson(result);
      printLine(`Removed tenant '${tenant}': ${result.aggregates} aggregate(s), ${result.events} event(s) from ${result.shards.join(', ')}${result.jobs_dropped > 0 ? `; dropped ${result.jobs_dropped} plugin job(s)` : ''}.`);
    });
}

function checkCommand(): Command {
  return new Command('check')
    .description('Check a tenant export offline: every hash and Merkle root recomputed from the records (no server, no key)')
    .argument('<file>', "an NDJSON file written by `dbx tenant export` ('-' reads standard input)")
    .option('--digest <hex>', 'the roots_digest printed by the export: the verdict is valid only if it matches', parseDigest)
    .option('--json', 'print the verdict as JSON')
    .addHelpText('after', '\nExit status 1 when a hash or root does not recompute, or the digest differs.\n\nExample:\n  dbx tenant check acme.ndjson --digest <roots_digest from the export>\n')
    .action(async (file: string, opts: { digest?: string; json?: boolean }) => {
      const source = readableInputFile(file) === '-' ? (process.stdin as AsyncIterable<Buffer>) : createReadStream(resolve(file));
      const check = await checkExport(source, opts.digest);
      if (opts.json) printJson(check);
      else printLine(describeCheck(check));
      if (!check.valid) process.exitCode = 1;
    });
}

/** The tenant data subcommands, added to `dbx tenant` (commands-tenant.ts). */
export function tenantDataCommands(): Command[] {
  return [exportCommand(), importCommand(), removeCommand(), checkCommand()];
}
