/** Flags shared by `aggregate list`, `aggregate events` and `events`, and `--all` paging. */
import { Command } from 'commander';
import { paginate, toWire, type ListOptions, type Page, type Wire } from '../client/index.js';
import { withFormatOptions, type Format, type WirePage } from './format.js';
import { parsePositiveInt } from './options.js';
import { UsageError, progress } from './output.js';

export interface ListFlags {
  take?: number;
  cursor?: string;
  filter?: string;
  sort?: string;
  includeArchived?: boolean;
  archivedOnly?: boolean;
  all?: boolean;
  json?: boolean;
  format?: Format;
}

export function withPageOptions(command: Command, options: { sort: boolean; scope: boolean }): Command {
  command
    .option('--take <n>', 'items per page (default list_page_size, at most page_limit)', parsePositiveInt)
    .option('--cursor <cursor>', 'resume after this cursor (printed as "next cursor")')
    .option('--filter <expr>', 'filter, e.g. \'version > 1 AND status = "active"\'')
    .option('--all', 'follow the cursor through every page');
  if (options.sort) command.option('--sort <keys>', 'field[:asc|desc],… (sorted lists page with cursors too)');
  if (options.scope) {
    command.option('--include-archived', 'include archived aggregates').option('--archived-only', 'only archived aggregates');
  }
  return withFormatOptions(command.option('--json', 'print a JSON array (the same as --format json)'));
}

/** Checks the combinations the server would refuse, before any request. */
export function listOptions(flags: ListFlags): ListOptions {
  if (flags.take === 0) throw new UsageError('--take must be greater than zero');
  if (flags.includeArchived && flags.archivedOnly) throw new UsageError('--include-archived cannot be combined with --archived-only');
  return {
    ...(flags.take !== undefined ? { take: flags.take } : {}),
    ...(flags.cursor !== undefined ? { cursor: flags.cursor } : {}),
    ...(flags.filter !== undefined ? { filter: flags.filter } : {}),
    ...(flags.sort !== undefined ? { sort: flags.sort } : {}),
    ...(flags.includeArchived ? { includeArchived: true } : {}),
    ...(flags.archivedOnly ? { archivedOnly: true } : {}),
  };
}

/**
 * A listing's pages as they arrive, in the API's naming, for printListing (format.ts): one page,
 * or with --all every page (the largest the server allows), each yielded as soon as it is fetched,
 * so it is printed before the next is asked for and memory holds one page whatever the total.
 *
 *   await withClient(opts, (c) => printListing(opts, SPEC, pages(opts, (cursor, take) => c.list(type, { cursor, take }))));
 */
export async function* pages<T>(flags: ListFlags, fetchPage: (cursor: string | undefined, take: number | undefined) => Promise<Page<T>>): AsyncGenerator<WirePage<Wire<T>>> {
  if (!flags.all) {
    const page = await fetchPage(flags.cursor, flags.take);
    yield { items: toWire(page.items), next_cursor: page.nextCursor };
    return;
  }
  // The server caps take at page_limit, so asking for 1000 gets the largest page it allows.
  let cursor = flags.cursor;
  for (;;) {
    const page = await fetchPage(cursor, flags.take ?? 1000);
    yield { items: toWire(page.items), next_cursor: null };
    if (!page.nextCursor || page.items.length === 0) return;
    cursor = page.nextCursor;
  }
}

/** One page, or with --all every page, gathered (for callers that need them all; listings stream with `pages`). */
export async function fetchListing<T>(flags: ListFlags, label: string, fetchPage: (cursor: string | undefined, take: number | undefined) => Promise<Page<T>>): Promise<Page<T>> {
  if (!flags.all) return fetchPage(flags.cursor, flags.take);
  const items: T[] = [];
  const bar = progress(label);
  try {
    // The server caps take at page_limit, so asking for 1000 gets the largest page it allows.
    for await (const page of paginate((cursor) => fetchPage(cursor, flags.take ?? 1000), flags.cursor)) {
      items.push(...page.items);
      bar.increment(page.items.length);
    }
  } finally {
    bar.stop();
  }
  return { items, nextCursor: null };
}
