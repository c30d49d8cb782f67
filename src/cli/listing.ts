/** Flags shared by `aggregate list`, `aggregate events` and `events`, and `--all` paging. */
import { Command } from 'commander';
import { paginate, type ListOptions, type Page } from '../client/index.js';
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
}

export function withPageOptions(command: Command, options: { sort: boolean; scope: boolean }): Command {
  command
    .option('--take <n>', 'items per page (default list_page_size, at most page_limit)', parsePositiveInt)
    .option('--cursor <cursor>', 'resume after this cursor (printed as "next cursor")')
    .option('--filter <expr>', 'filter, e.g. \'version > 1 AND status = "active"\'')
    .option('--all', 'follow the cursor through every page');
  if (options.sort) command.option('--sort <keys>', 'field[:asc|desc],… (not with --cursor or --all)');
  if (options.scope) {
    command.option('--include-archived', 'include archived aggregates').option('--archived-only', 'only archived aggregates');
  }
  return command.option('--json', 'print a JSON array');
}

/** Checks the combinations the server would refuse, before any request. */
export function listOptions(flags: ListFlags): ListOptions {
  if (flags.take === 0) throw new UsageError('--take must be greater than zero');
  if (flags.cursor !== undefined && flags.sort !== undefined) throw new UsageError('--cursor cannot be combined with --sort');
  if (flags.all && flags.sort !== undefined) throw new UsageError('--all cannot be combined with --sort (a sorted listing is one page)');
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

/** One page, or with --all every page (large pages; a progress count on a terminal). */
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
  return { items, next_cursor: null };
}
