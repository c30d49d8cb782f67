/** Text forms of API results (tables and key=value lines); `--json` prints the results as they are. */
import type { AggregateView, EventRecord, Page } from '../client/index.js';
import { keyValues, printJson, printLine, printTable, short } from './output.js';

export function aggregateLine(a: AggregateView): string {
  return keyValues({ aggregate_type: a.aggregate_type, aggregate_id: a.aggregate_id, version: a.version, archived: a.archived });
}

export function eventLine(e: EventRecord): string {
  return keyValues({
    aggregate_type: e.aggregate_type,
    aggregate_id: e.aggregate_id,
    version: e.version,
    event_type: e.event_type,
    event_id: e.metadata.event_id,
  });
}

export function printAggregates(items: AggregateView[], showArchived: boolean): void {
  if (items.length === 0) return printLine('no aggregates');
  const head = ['aggregate_type', 'aggregate_id', 'version', ...(showArchived ? ['archived'] : []), 'updated_at', 'merkle_root'];
  printTable(
    head,
    items.map((a) => [a.aggregate_type, a.aggregate_id, a.version, ...(showArchived ? [a.archived] : []), a.updated_at, short(a.merkle_root)]),
  );
}

export function printEvents(items: EventRecord[]): void {
  if (items.length === 0) return printLine('no events');
  printTable(
    ['aggregate_type', 'aggregate_id', 'version', 'event_type', 'event_id', 'created_at', 'issued_by', 'note'],
    items.map((e) => [
      e.aggregate_type,
      e.aggregate_id,
      e.version,
      e.event_type,
      e.metadata.event_id,
      e.metadata.created_at,
      e.metadata.issued_by ? `${e.metadata.issued_by.group}:${e.metadata.issued_by.user}` : '-',
      e.metadata.note ?? '-',
    ]),
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
