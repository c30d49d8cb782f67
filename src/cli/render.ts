/**
 * Text forms of API results (tables and key=value lines); `--json` prints the results as they are.
 * Results come in the API's own naming (commands turn client results back with `toWire`).
 */
import type { AggregateView, EventRecord, Page } from '../core/index.js';
import type { ListingSpec } from './format.js';
import { keyValues, printJson, printLine, printTable, short } from './output.js';

export function aggregateLine(a: AggregateView): string {
  return keyValues({ aggregate_type: a.aggregate_type, aggregate_id: a.aggregate_id, version: a.version, archived: a.archived });
}

export function eventLine(e: Omit<EventRecord, 'payload'>): string {
  return keyValues({
    aggregate_type: e.aggregate_type,
    aggregate_id: e.aggregate_id,
    version: e.version,
    event_type: e.event_type,
    event_id: e.metadata.event_id,
  });
}

/** `aggregate list` in every --format (format.ts); the table shows short roots, json and csv whole ones. */
export function aggregateListing(showArchived: boolean): ListingSpec<AggregateView> {
  return {
    empty: 'no aggregates',
    columns: [
      { name: 'aggregate_type', value: (a) => a.aggregate_type },
      { name: 'aggregate_id', value: (a) => a.aggregate_id },
      { name: 'version', value: (a) => a.version },
      ...(showArchived ? [{ name: 'archived', value: (a: AggregateView) => a.archived }] : []),
      { name: 'updated_at', value: (a) => a.updated_at },
      { name: 'merkle_root', value: (a) => a.merkle_root, brief: (a) => short(a.merkle_root) },
    ],
    line: (a) => keyValues({ aggregate_type: a.aggregate_type, aggregate_id: a.aggregate_id, version: a.version, archived: a.archived, updated_at: a.updated_at, merkle_root: a.merkle_root }),
  };
}

/** `events` and `aggregate events` in every --format. */
export const EVENT_LISTING: ListingSpec<Omit<EventRecord, 'payload'>> = {
  empty: 'no events',
  columns: [
    { name: 'aggregate_type', value: (e) => e.aggregate_type },
    { name: 'aggregate_id', value: (e) => e.aggregate_id },
    { name: 'version', value: (e) => e.version },
    { name: 'event_type', value: (e) => e.event_type },
    { name: 'event_id', value: (e) => e.metadata.event_id },
    { name: 'created_at', value: (e) => e.metadata.created_at },
    { name: 'issued_by', value: (e) => (e.metadata.issued_by ? `${e.metadata.issued_by.group}:${e.metadata.issued_by.user}` : null), brief: (e) => (e.metadata.issued_by ? `${e.metadata.issued_by.group}:${e.metadata.issued_by.user}` : '-') },
    { name: 'note', value: (e) => e.metadata.note ?? null, brief: (e) => e.metadata.note ?? '-' },
  ],
  // The columns the table shows (reference §7.5); a note is JSON-quoted, so a line stays one line.
  line: (e) =>
    `${eventLine(e)} ${keyValues({
      created_at: e.metadata.created_at,
      issued_by: e.metadata.issued_by ? `${e.metadata.issued_by.group}:${e.metadata.issued_by.user}` : null,
      ...(e.metadata.note !== undefined && e.metadata.note !== null ? { note: JSON.stringify(e.metadata.note) } : {}),
    })}`,
};

export function printAggregates(items: AggregateView[], showArchived: boolean): void {
  if (items.length === 0) return printLine('no aggregates');
  const head = ['aggregate_type', 'aggregate_id', 'version', ...(showArchived ? ['archived'] : []), 'updated_at', 'merkle_root'];
  printTable(
    head,
    items.map((a) => [a.aggregate_type, a.aggregate_id, a.version, ...(showArchived ? [a.archived] : []), a.updated_at, short(a.merkle_root)]),
  );
}

/** One event in full, as the original's `dbx events <id>` prints it. */
export function printEventDetail(e: EventRecord): void {
  printLine(
    [
      `aggregate_type=${e.aggregate_type}`,
      `aggregate_id=${e.aggregate_id}`,
      `version=${e.version}`,
      `event_type=${e.event_type}`,
      `event_id=${e.metadata.event_id}`,
      `created_at=${e.metadata.created_at}`,
      ...(e.metadata.issued_by ? [`issued_by=${e.metadata.issued_by.group}:${e.metadata.issued_by.user}`] : []),
      ...(e.metadata.note !== undefined ? [`note=${e.metadata.note}`] : []),
      `hash=${e.hash}`,
      `merkle_root=${e.merkle_root}`,
      `payload=${JSON.stringify(e.payload, null, 2)}`,
      ...(Object.keys(e.extensions).length > 0 ? [`extensions=${JSON.stringify(e.extensions, null, 2)}`] : []),
    ].join('\n'),
  );
}

/** A listing's items; the next cursor goes after a table, or to stderr under --json (stdout stays one JSON array). */
export function printPage<T>(page: Page<T>, json: boolean, text: (items: T[]) => void): void {
  if (json) {
    printJson(page.items);
    if (page.next_cursor) process.stderr.write(`next cursor: ${page.next_cursor}\n`);
    return;
  }
  text(page.items);
  if (page.next_cursor) printLine(`next cursor: ${page.next_cursor}`);
}
