/**
 * Pages of a list, from the rows a plan reads in its order. Two shapes: a page in the plan's own
 * order (bounded per request by scan_rows_max / scan_time_max_ms, and per listing by max_scan), and
 * a sorted page (the whole scope read, top-k kept, paged by keyset cursors).
 */
import { DbxError, type Page } from '../core/index.js';
import { withRejected } from './cursor.js';
import type { QueryTrace } from './explain.js';
import { ScanBudget, TopK, type ScanBounds, type ScanLimit } from './merge.js';

/** One row a plan visited: `item` when it is in the answer; `rejected` when the filter refused it. */
export interface Row<T> {
  item: T | undefined;
  rejected?: boolean;
  /** The cursor after this row (without the `~<rejected>` suffix). */
  cursor: () => string;
}

/** A filtered listing's running count of rejected rows, bounded by `[query] max_scan`. */
export interface Listing {
  rejectedBefore: number;
  /** null: not bounded (no filter). */
  maxScan: number | null;
  unindexed: string[];
}

/**
 * A page in plan order: up to `take` listed rows. A scan that reaches the request's budget first
 * answers what it found (maybe nothing) with a cursor after the last row read: a partial page the
 * caller continues, rather than an error or a stalled event loop. So a short page does not mean
 * the end; only a null `next_cursor` does. A listing whose filter has rejected more than max_scan
 * rows, over all its pages, is a 400 instead of a scan that goes on for minutes.
 */
export function boundedPage<T>(rows: Iterable<Row<T>>, take: number, bounds: ScanBounds, trace: QueryTrace, listing: Listing): Page<T> {
  const items: T[] = [];
  if (take === 0) return { items, next_cursor: null };
  const budget = new ScanBudget(bounds.scan_rows_max, bounds.scan_time_max_ms);
  for (const row of rows) {
    if (row.item !== undefined) items.push(row.item);
    else if (row.rejected) {
      trace.rejected += 1;
      if (listing.maxScan !== null && listing.rejectedBefore + trace.rejected > listing.maxScan) throw scanTooLong(listing);
    }
    if (items.length === take || budget.spend() !== undefined) return { items, next_cursor: withRejected(row.cursor(), listing.rejectedBefore + trace.rejected) };
  }
  return { items, next_cursor: null };
}

function scanTooLong(listing: Listing): DbxError {
  const fields = listing.unindexed.length > 0 ? `${listing.unindexed.map((f) => `'${f}'`).join(', ')} cannot use an index and ${listing.unindexed.length > 1 ? 'are' : 'is'} evaluated on every record` : 'the filter is evaluated on every record';
  return new DbxError(
    'invalid_input',
    `this listing's filter rejected more than ${listing.maxScan} rows without finishing ([query] max_scan): ${fields}; narrow the query with aggregate_type, event_type, created_at or event_id conditions (served by indexes), or raise [query] max_scan`,
    { max_scan: listing.maxScan, rows_rejected: (listing.maxScan ?? 0) + 1, unindexed_fields: listing.unindexed },
  );
}

export interface SortedPaging<S, T> {
  compare: (a: S, b: S) => number;
  /** The last row of the previous page (from the cursor): only rows after it are candidates. */
  after?: S;
  project: (row: S) => T;
  cursorOf: (row: S) => string;
  narrowing: string;
}

/**
 * A sorted page must see every row in scope before it can answer, so a partial answer would be
 * wrong: past `sort_scan_max` rows (or the time budget) it is a 400 naming how to narrow the query
 * and which key to raise. Memory is O(take) whatever the scan (TopK). Keyset paging: the next page
 * takes the rows strictly after the last one returned, in the same total order (ties fall back to
 * the natural key), so pages never overlap and never leave a gap.
 */
export function sortedPage<S, T>(rows: Iterable<Row<S>>, take: number, bounds: ScanBounds, trace: QueryTrace, paging: SortedPaging<S, T>): Page<T> {
  if (take === 0) return { items: [], next_cursor: null };
  const top = new TopK(paging.compare, take);
  const budget = new ScanBudget(bounds.sort_scan_max, bounds.scan_time_max_ms);
  const after = paging.after;
  let limit: ScanLimit | undefined;
  for (const row of rows) {
    // Checked on the next row, so a scope of exactly sort_scan_max rows still sorts.
    if (limit !== undefined) throw sortTooLarge(limit, bounds, paging.narrowing);
    if (row.item !== undefined) {
      if (after === undefined || paging.compare(after, row.item) < 0) top.add(row.item);
    } else if (row.rejected) trace.rejected += 1;
    limit = budget.spend();
  }
  const best = top.result();
  const last = best[best.length - 1];
  return { items: best.map(paging.project), next_cursor: top.added > take && last !== undefined ? paging.cursorOf(last) : null };
}

function sortTooLarge(limit: ScanLimit, bounds: ScanBounds, narrowing: string): DbxError {
  const reason =
    limit === 'rows'
      ? { what: `would read more than ${bounds.sort_scan_max} rows`, key: 'sort_scan_max' }
      : { what: `did not finish within ${bounds.scan_time_max_ms} ms`, key: 'scan_time_max_ms' };
  return new DbxError('invalid_input', `sort ${reason.what} ([query] ${reason.key}): narrow the query (${narrowing}) or raise [query] ${reason.key}`);
}
