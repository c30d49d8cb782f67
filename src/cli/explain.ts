/**
 * `--explain` on listings (`dbx events`, `dbx aggregate list`, `dbx aggregate events`): asks the
 * server how it served each page (`explain=true`) and prints that on stderr, so the listing on
 * stdout stays what it was (a table, lines or JSON a script reads). With `--json` each page's
 * explain is one JSON line `{"explain":{…}}` in the API's naming; otherwise a few readable lines.
 */
import type { Command } from 'commander';
import { toWire, type Page, type QueryExplain } from '../client/index.js';

export interface ExplainFlags {
  explain?: boolean;
  json?: boolean;
  format?: string;
}

export function withExplainOption(command: Command): Command {
  return command.option('--explain', 'print on stderr how the server served each page: index or scan, ranges, records read, filter fields no record has');
}

/** The options to add to a list call. */
export function explainOption(flags: ExplainFlags): { explain?: true } {
  return flags.explain ? { explain: true } : {};
}

/** Wraps a page fetch: prints its explain (when asked for) and passes the page on. */
export function explained<T>(flags: ExplainFlags, fetch: Promise<Page<T>>): Promise<Page<T>> {
  if (!flags.explain) return fetch;
  return fetch.then((page) => {
    if (page.explain) printExplain(page.explain, flags.json === true || flags.format === 'json');
    return page;
  });
}

export function printExplain(explain: QueryExplain, json: boolean): void {
  if (json) {
    process.stderr.write(`${JSON.stringify({ explain: toWire(explain) })}\n`);
    return;
  }
  const lines = [
    `plan=${explain.plan} index=${explain.index} order=${explain.order} sort=${explain.sort}`,
    ...explain.ranges.map((r) => `range: ${r}`),
    `read: index_entries=${explain.indexEntriesRead} records=${explain.recordsRead} rejected=${explain.rowsRejected} (listing ${explain.rowsRejectedListing}${explain.maxScan !== null ? ` of max_scan ${explain.maxScan}` : ''})`,
    ...(explain.indexedFields.length > 0 ? [`indexed fields: ${explain.indexedFields.join(', ')}`] : []),
    ...(explain.unindexedFields.length > 0 ? [`unindexed fields (evaluated per record): ${explain.unindexedFields.join(', ')}`] : []),
    ...(explain.missingFields.length > 0 ? [`missing fields (no record read has them): ${explain.missingFields.join(', ')}`] : []),
    ...explain.notes.map((n) => `note: ${n}`),
  ];
  process.stderr.write(lines.map((l) => `explain: ${l}\n`).join(''));
}
