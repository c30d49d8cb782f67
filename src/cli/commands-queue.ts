/**
 * `dbx queue` (reference §10.6): the plugin delivery queue — counts, the jobs not yet done with
 * their last errors, `retry` (dead → pending now) and `clear` (dead jobs only, after a typed
 * confirmation on a terminal). The queue is server-wide: these need a server administrator token.
 */
import { createInterface } from 'node:readline/promises';
import { Command, InvalidArgumentError } from 'commander';
import { toWire, type QueueJob as ClientQueueJob, type QueueStatus as ClientQueueStatus, type Wire } from '../client/index.js';
import { formatOf, printListing, withFormatOptions, type FormatFlags, type ListingSpec } from './format.js';
import { withConnectionOptions, type ConnectionFlags } from './options.js';
import { CliError, UsageError, keyValues, printJson, printLine } from './output.js';
import { withClient } from './session.js';

type Flags = ConnectionFlags & FormatFlags;
/** The queue as the API names it (what --json prints). */
type QueueJob = Wire<ClientQueueJob>;
type QueueStatus = Wire<ClientQueueStatus>;

function parseEventId(value: string): string {
  if (!/^\d{1,20}$/.test(value)) throw new InvalidArgumentError('an event id is a decimal snowflake id');
  return value;
}

function nextRetry(job: QueueJob): string {
  return job.status === 'pending' && job.next_attempt_at > 0 ? new Date(job.next_attempt_at).toISOString() : '-';
}

function printJobs(title: string, jobs: QueueJob[], withRetry: boolean): void {
  if (jobs.length === 0) return;
  printLine('');
  printLine(title);
  for (const job of jobs) {
    const base = `  plugin=${job.plugin} event_id=${job.event_id} attempts=${job.attempts}`;
    printLine(withRetry ? `${base} next_retry=${nextRetry(job)} last_error=${job.last_error ?? '-'}` : `${base} last_error=${job.last_error ?? '-'}`);
  }
}

function printQueue(queue: QueueStatus): void {
  const total = { pending: 0, processing: 0, done: 0, dead: 0 };
  for (const p of queue.plugins) for (const state of Object.keys(total) as (keyof typeof total)[]) total[state] += p[state];
  printLine(keyValues(total));
  if (queue.plugins.length > 0) {
    printLine('');
    printLine('Plugins:');
    for (const p of queue.plugins) {
      printLine(`  ${keyValues({ plugin: p.plugin, enabled: p.enabled, pending: p.pending, processing: p.processing, done: p.done, dead: p.dead, lag_ms: p.lag_ms })}`);
    }
  }
  printJobs('Pending jobs:', queue.jobs.filter((j) => j.status === 'pending'), true);
  printJobs('Processing jobs:', queue.jobs.filter((j) => j.status === 'processing'), true);
  printJobs('Dead jobs:', queue.jobs.filter((j) => j.status === 'dead'), false);
  if (queue.jobs_total > queue.jobs.length) printLine(`\n(${queue.jobs_total - queue.jobs.length} more open job(s) not shown)`);
}

function retryCommand(): Command {
  return withConnectionOptions(new Command('retry'))
    .description('Put dead jobs (all, or the one of an event) back to pending now')
    .option('--event-id <id>', 'only the dead job(s) of this event', parseEventId)
    .option('--json', 'print the counts as JSON')
    .addHelpText('after', '\nExample:\n  dbx queue retry --event-id 7263544239124123648\n')
    .action(async (opts: Flags & { eventId?: string }) => {
      const result = toWire(await withClient(opts, (c) => c.retryQueue(opts.eventId)));
      if (opts.json) return printJson(result);
      if (result.retried === 0) return printLine(opts.eventId !== undefined && result.still_dead > 0 ? 'no dead plugin jobs match the provided id' : 'no dead plugin jobs to retry');
      printLine(`retry summary: retried ${result.retried} job(s), ${result.still_dead} still dead`);
    });
}

async function confirmClear(count: number): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  // Ctrl-D (closed stdin) must cancel, not hang.
  const closed = new Promise<string>((resolve) => rl.once('close', () => resolve('')));
  try {
    const answer = await Promise.race([rl.question(`This will remove ${count} dead plugin job(s). Type 'clear' to confirm: `), closed]);
    return answer.trim().toLowerCase() === 'clear';
  } catch {
    return false;
  } finally {
    rl.close();
  }
}

function clearCommand(): Command {
  return withConnectionOptions(new Command('clear'))
    .description('Remove dead jobs (all, or one plugin\'s); pending and done jobs are never touched')
    .option('--plugin <name>', "only this plugin's dead jobs")
    .option('-y, --yes', 'do not ask for confirmation (needed off a terminal)')
    .option('--json', 'print the count as JSON')
    .addHelpText('after', '\nExample:\n  dbx queue clear --plugin hook --yes\n')
    .action(async (opts: Flags & { plugin?: string; yes?: boolean }) => {
      // Refused before any request: a script must say --yes, never be left waiting for an answer.
      if (!opts.yes && !process.stdin.isTTY) throw new UsageError('dbx queue clear asks for confirmation on a terminal; pass --yes to clear without asking');
      const result = await withClient(opts, async (c) => {
        const dead = (await c.queue()).plugins.filter((p) => opts.plugin === undefined || p.plugin === opts.plugin).reduce((n, p) => n + p.dead, 0);
        if (dead === 0) return undefined;
        if (!opts.yes && !(await confirmClear(dead))) throw new CliError('clear cancelled');
        return c.clearQueue(opts.plugin);
      });
      if (opts.json) return printJson(result ?? { cleared: 0 });
      printLine(result === undefined || result.cleared === 0 ? 'no dead plugin jobs to clear' : `cleared ${result.cleared} dead job(s) from the plugin queue`);
    });
}

/** `--format table`: the counts per plugin, then the open jobs (psql's aligned tables). */
const PLUGIN_COUNTS: ListingSpec<QueueStatus['plugins'][number]> = {
  empty: 'no plugins',
  columns: (['plugin', 'enabled', 'pending', 'processing', 'done', 'dead', 'lag_ms'] as const).map((name) => ({ name, value: (p) => p[name] })),
};

/** The open jobs (table, and csv's one row per job); next_attempt_at stays epoch ms outside a table. */
const JOB_LISTING: ListingSpec<QueueJob> = {
  empty: 'no open jobs',
  columns: [
    ...(['plugin', 'event_id', 'tenant', 'aggregate_type', 'aggregate_id', 'version', 'status', 'attempts'] as const).map((name) => ({ name, value: (j: QueueJob) => j[name] })),
    { name: 'next_attempt_at', value: (j) => j.next_attempt_at, brief: (j) => nextRetry(j) },
    { name: 'last_error', value: (j) => j.last_error, brief: (j) => j.last_error ?? '-' },
  ],
};

async function printQueueAs(flags: Flags, status: QueueStatus): Promise<void> {
  const more = status.jobs_total - status.jobs.length;
  switch (formatOf(flags, 'lines')) {
    case 'json':
      return printJson(status);
    case 'lines':
      return printQueue(status);
    case 'csv':
      await printListing(flags, JOB_LISTING, status.jobs);
      if (more > 0) process.stderr.write(`(${more} more open job(s) not shown)\n`);
      return;
    case 'table':
      await printListing(flags, PLUGIN_COUNTS, status.plugins);
      printLine('');
      await printListing(flags, JOB_LISTING, status.jobs);
      if (more > 0) printLine(`(${more} more open job(s) not shown)`);
  }
}

export function queueCommand(): Command {
  const queue = withFormatOptions(
    withConnectionOptions(new Command('queue'))
      .description('Show the plugin delivery queue: counts, lag, and the jobs not yet done with their last errors')
      .option('--json', 'print the queue as JSON'),
    'lines',
  )
    // Options after a subcommand's name are the subcommand's (both carry --data-dir and friends).
    .enablePositionalOptions()
    .addHelpText(
      'after',
      '\nFormats: lines (the default: totals, then per plugin and per job), table (a table of plugins, one of jobs),\ncsv (one row per open job), json (the API\'s answer).\n\nExamples:\n  dbx queue\n  dbx queue --format table\n  dbx queue retry\n  dbx queue clear --yes\n',
    )
    .action(async (opts: Flags) => {
      await printQueueAs(opts, toWire(await withClient(opts, (c) => c.queue())));
    });
  queue.addCommand(retryCommand());
  queue.addCommand(clearCommand());
  return queue;
}
