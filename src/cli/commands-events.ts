/** `dbx events [type] [id]` and `dbx events --event <id>` (reference §7.5). */
import { Command } from 'commander';
import { aggregateIdSchema, aggregateTypeSchema, parseInput } from '../core/index.js';
import { fetchListing, listOptions, withPageOptions, type ListFlags } from './listing.js';
import { withConnectionOptions, type ConnectionFlags } from './options.js';
import { UsageError, printJson } from './output.js';
import { printEventDetail, printEvents, printPage } from './render.js';
import { withClient } from './session.js';

type EventsFlags = ListFlags & ConnectionFlags & { event?: string };

function hasListingFlags(f: EventsFlags): boolean {
  return [f.take, f.cursor, f.filter, f.sort, f.includeArchived, f.archivedOnly, f.all].some((v) => v !== undefined);
}

async function showEvent(eventId: string, opts: EventsFlags): Promise<void> {
  if (!/^\d{1,20}$/.test(eventId)) throw new UsageError(`invalid snowflake id '${eventId}'`);
  const event = await withClient(opts, (c) => c.event(eventId));
  if (opts.json) printJson(event);
  else printEventDetail(event);
}

/** Scope by type (and id) as a filter, so sort and archive scope still apply; names are validated first. */
function scopedFilter(type: string | undefined, id: string | undefined, filter: string | undefined): string | undefined {
  const parts: string[] = [];
  if (type !== undefined) parts.push(`aggregate_type = "${parseInput(aggregateTypeSchema, type, 'aggregate_type')}"`);
  if (id !== undefined) parts.push(`aggregate_id = "${parseInput(aggregateIdSchema, id, 'aggregate_id')}"`);
  if (filter !== undefined) parts.push(`(${filter})`);
  return parts.length ? parts.join(' AND ') : undefined;
}

export function eventsCommand(): Command {
  return withConnectionOptions(
    withPageOptions(
      new Command('events').argument('[aggregate]', 'aggregate type, or an event id to show one event').argument('[aggregate_id]', 'aggregate id'),
      { sort: true, scope: true },
    ),
  )
    .description('List events in the store or inspect a specific event')
    .option('-e, --event <event_id>', 'show one event by its Snowflake id')
    .addHelpText(
      'after',
      '\nExamples:\n  dbx events\n  dbx events person p-1 --json\n  dbx events --filter \'payload.status = "open"\' --sort version:desc\n  dbx events --event 123456789012345678\n',
    )
    .action(async (target: string | undefined, id: string | undefined, opts: EventsFlags) => {
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
      const page = await withClient(opts, (c) =>
        fetchListing(opts, 'events', (cursor, take) => {
          const paging = { ...(cursor !== undefined ? { cursor } : {}), ...(take !== undefined ? { take } : {}) };
          // One aggregate in version order: its own range scan, no filter over the whole store.
          if (target !== undefined && id !== undefined && rest.sort === undefined) {
            return c.events(target, id, { ...paging, ...(filter !== undefined ? { filter } : {}) });
          }
          const scoped = scopedFilter(target, id, filter);
          return c.listEvents({ ...rest, ...paging, ...(scoped !== undefined ? { filter: scoped } : {}) });
        }),
      );
      printPage(page, opts.json === true, printEvents);
    });
}
