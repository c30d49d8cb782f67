/** `dbx events [type] [id]` and `dbx events --event <id>` (reference §7.5). */
import { Command } from 'commander';
import { toWire } from '../client/index.js';
import { aggregateIdSchema, aggregateTypeSchema, parseInput } from '../core/index.js';
import { printListing } from './format.js';
import { listOptions, pages, withPageOptions, type ListFlags } from './listing.js';
import { withConnectionOptions, type ConnectionFlags } from './options.js';
import { CliError, UsageError, printJson } from './output.js';
import { EVENT_LISTING, printEventDetail } from './render.js';
import { withClient } from './session.js';
import { follow } from './follow.js';
import { explainOption, explained, withExplainOption } from './explain.js';

type EventsFlags = ListFlags & ConnectionFlags & { event?: string; follow?: boolean; from?: string; explain?: boolean };

function hasListingFlags(f: EventsFlags): boolean {
  return [f.take, f.cursor, f.filter, f.sort, f.includeArchived, f.archivedOnly, f.all].some((v) => v !== undefined);
}

async function showEvent(eventId: string, opts: EventsFlags): Promise<void> {
  if (!/^\d{1,20}$/.test(eventId)) throw new UsageError(`invalid snowflake id '${eventId}'`);
  const event = toWire(await withClient(opts, (c) => c.event(eventId)));
  if (opts.json || opts.format === 'json') printJson(event);
  else printEventDetail(event);
}

/** Scope by type (and id) as a filter, so sort and archive scope still apply; names are validated first. */
function scopedFilter(type: string | undefined, id: string | undefined, filter: string | undefined): string | undefined {
  const parts: string[] = [];
  if (type !== undefined) parts.push(`aggregate_type = "${parseInput(aggregateTypeSchema, type, 'aggregate_type')}"`);
  if (id !== undefined) parts.push(`aggregate_id = "${parseInput(aggregateIdSchema, id, 'aggregate_id')}"`);
  if (filter !== undefined) {
    // Wrapped in parentheses a blank filter would read as `()` and fail as a missing field name;
    // refuse it as the parser and the server do.
    if (filter.trim() === '') throw new CliError('filter cannot be empty');
    parts.push(`(${filter})`);
  }
  return parts.length ? parts.join(' AND ') : undefined;
}

export function eventsCommand(): Command {
  return withConnectionOptions(
    withPageOptions(
      withExplainOption(new Command('events')).argument('[aggregate]', 'aggregate type, or an event id to show one event').argument('[aggregate_id]', 'aggregate id'),
      { sort: true, scope: true },
    ),
  )
    .description('List events in the store or inspect a specific event')
    .option('-e, --event <event_id>', 'show one event by its Snowflake id')
    .option('-f, --follow', 'print events as they commit (the global stream), until Ctrl-C')
    .option('--from <position>', 'with --follow: start after this position (start, end = default, or a printed position)')
    .addHelpText(
      'after',
      '\nExamples:\n  dbx events\n  dbx events person p-1 --json\n  dbx events --filter \'payload.status = "open"\' --sort version:desc\n  dbx events --event 123456789012345678\n  dbx events --follow --from start --filter \'event_type = "order_paid"\'\n',
    )
    .action(async (target: string | undefined, id: string | undefined, opts: EventsFlags) => {
      if (opts.from !== undefined && !opts.follow) throw new UsageError('--from needs --follow');
      if (opts.follow) {
        if (opts.event !== undefined) throw new UsageError('--follow cannot be combined with --event');
        if ([opts.take, opts.cursor, opts.sort, opts.includeArchived, opts.archivedOnly, opts.all].some((v) => v !== undefined)) {
          throw new UsageError('--follow takes only --from, --filter and --json (a stream has no pages, sort or archive scope)');
        }
        const filter = scopedFilter(target, id, opts.filter);
        return withClient(opts, (c, ctx) => follow(c, ctx, opts, filter));
      }
      if (opts.event !== undefined) {
        if (target !== undefined) throw new UsageError('aggregate filters cannot be combined with --event');
        if (hasListingFlags(opts)) throw new UsageError('listing options cannot be combined with --event');
        return showEvent(opts.event, opts);
      }
      if (target !== undefined && id === undefined && /^\d+$/.test(target)) {
        if (hasListingFlags(opts)) throw new UsageError('event inspection cannot be combined with listing filters');
        return showEvent(target, opts);
      }
      const { cursor: _c, take: _t, filter, ...rest } = listOptions(opts);
      await withClient(opts, (c) =>
        printListing(opts, EVENT_LISTING, pages(opts, (cursor, take) => {
          const paging = { ...(cursor !== undefined ? { cursor } : {}), ...(take !== undefined ? { take } : {}), ...explainOption(opts) };
          // One aggregate in version order: its own range scan, no filter over the whole store.
          if (target !== undefined && id !== undefined && rest.sort === undefined) {
            return explained(opts, c.events(target, id, { ...paging, ...(filter !== undefined ? { filter } : {}) }));
          }
          const scoped = scopedFilter(target, id, filter);
          return explained(opts, c.listEvents({ ...rest, ...paging, ...(scoped !== undefined ? { filter: scoped } : {}) }));
        })),
      );
    });
}
