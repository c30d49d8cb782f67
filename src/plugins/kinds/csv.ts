/**
 * The `csv` kind (the 1.1.0 file read model: "appends state snapshots into `<aggregate>.csv`,
 * expanding columns as new fields appear").
 *
 * Layout: `<dir>/<aggregate_type>.csv`, one file per type for every tenant (the `tenant` column
 * tells them apart; tenant names never become paths). A relative `dir` is under the data
 * directory. RFC 4180: CRLF line ends, a cell quoted when it holds `"`, `,`, CR or LF, quotes
 * doubled. One row per event; the columns are
 *   event_id, tenant, aggregate_id, version, event_type, created_at, <field>…
 * where the fields are the top-level keys of the state after the event (payload modes with state),
 * else of the event's payload, in order of first appearance. Values: text as is, null/absent
 * empty, numbers, booleans, objects and arrays as compact JSON. A field named like one of the six
 * fixed columns, or starting with `field:`, gets the column `field:<name>` so names never clash.
 * `created_at` is the event's time (empty in modes that carry neither event nor state view).
 *
 * A new field widens the header: the whole file is rewritten with the wider header and every older
 * row padded with empty cells, into a temp file that is fsynced and renamed over the old one — a
 * power cut leaves the old or the new file, never a mix. Cost: a full read and write of the file per
 * new column (rare: once per field over the file's life). Plain rows are appended and fdatasynced.
 *
 * Idempotent on replay: event ids in the file are loaded on first use (then a Set in memory, ~100
 * bytes per event) and a delivery whose event id is there is skipped. A torn last row is cut off
 * on load. Deliverers of one plugin in other delivery threads are kept out by `<file>.lock`
 * (read-model.ts withFileLock); a file another writer changed since our last write is re-read first.
 */
import { readFileSync, statSync, truncateSync } from 'node:fs';
import type { z } from 'zod';
import { writeFileDurably } from '../../core/index.js';
import { csvCell, csvColumnKey, csvColumnName } from '../../core/csv-text.js';
import { csvOptions, type Deliverer, type DeliveryBody } from '../types.js';
import type { DelivererContext } from './context.js';
import { appendDurably, cellText, eventTime, fileError, fileReadModelDeliverer, parseOptions, readModelDir, rowFields } from './read-model.js';

export const CSV_FIXED_COLUMNS = ['event_id', 'tenant', 'aggregate_id', 'version', 'event_type', 'created_at'] as const;
const FIXED: ReadonlySet<string> = new Set(CSV_FIXED_COLUMNS);
export function csvRow(cells: readonly string[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}

/**
 * RFC 4180 parse. Only records ended by a line break count (our writer ends every row with CRLF),
 * so a torn tail is not returned; `end` is the byte length of the complete part. A bare LF is
 * accepted as a line end too, for files edited by hand.
 */
export function parseCsv(text: string): { records: string[][]; end: number } {
  const records: string[][] = [];
  let record: string[] = [];
  let cell = '';
  let quoted = false;
  let complete = 0;
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else cell += c;
      i += 1;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === ',') {
      record.push(cell);
      cell = '';
    } else if (c === '\n' || (c === '\r' && text[i + 1] === '\n')) {
      record.push(cell);
      records.push(record);
      record = [];
      cell = '';
      if (c === '\r') i += 1;
      complete = i + 1;
    } else cell += c;
    i += 1;
  }
  return { records, end: Buffer.byteLength(text.slice(0, complete), 'utf8') };
}

interface FileState {
  header: string[];
  /** field name → cell index */
  columnOf: Map<string, number>;
  seen: Set<string>;
  size: number;
}

export function createCsvDeliverer(options: z.input<typeof csvOptions>, ctx: DelivererContext): Deliverer {
  const opts = parseOptions('csv', csvOptions, options);
  const dir = readModelDir(opts.dir, ctx.dataDir);
  const files = new Map<string, FileState>();

  function readRecords(path: string): { records: string[][]; bytes: number; end: number } {
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return { ...parseCsv(text), bytes: Buffer.byteLength(text, 'utf8') };
  }

  function load(path: string): FileState {
    const { records, bytes, end } = readRecords(path);
    if (end < bytes) {
      ctx.log('warn', `csv plugin ${ctx.name}: dropping a torn last row (${bytes - end} bytes) of ${path}`);
      truncateSync(path, end);
    }
    const header = records[0] ?? [];
    if (header.length > 0 && CSV_FIXED_COLUMNS.some((name, i) => header[i] !== name)) {
      throw new Error(`csv: ${path.split('/').pop()} is not an EventDBX read model (its header does not start with ${CSV_FIXED_COLUMNS.join(',')})`);
    }
    const columnOf = new Map<string, number>();
    header.forEach((column, i) => {
      if (i >= CSV_FIXED_COLUMNS.length) columnOf.set(csvColumnKey(column), i);
    });
    const seen = new Set<string>();
    for (const row of records.slice(1)) if (row[0] !== undefined && row[0] !== '') seen.add(row[0]);
    const state = { header, columnOf, seen, size: end };
    files.set(path, state);
    return state;
  }

  function current(path: string): FileState {
    const known = files.get(path);
    if (known === undefined) return load(path);
    let size = 0;
    try {
      size = statSync(path).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return size === known.size ? known : load(path);
  }

  /** Rewrites the file with `header` (wider than the file's) and every row padded, then `row`. */
  function rewrite(path: string, state: FileState, header: string[], row: string[]): void {
    const { records, bytes, end } = readRecords(path);
    // `current` just re-read the file if it changed, so a mismatch here means a concurrent writer.
    if (end !== bytes || end !== state.size) throw new Error('csv: the file changed while widening its header');
    const parts = [csvRow(header)];
    for (const old of records.slice(1)) parts.push(csvRow(old.concat(Array<string>(Math.max(0, header.length - old.length)).fill(''))));
    parts.push(csvRow(row));
    const text = parts.join('');
    writeFileDurably(path, text);
    state.size = Buffer.byteLength(text, 'utf8');
  }

  function write(path: string, body: DeliveryBody): void {
    try {
      const state = current(path);
      if (state.seen.has(body.event_id)) return;
      const fields = rowFields(body);
      const header = state.header.length > 0 ? [...state.header] : [...CSV_FIXED_COLUMNS];
      const columnOf = new Map(state.columnOf);
      for (const field of Object.keys(fields)) {
        if (columnOf.has(field)) continue;
        columnOf.set(field, header.length);
        header.push(csvColumnName(FIXED, field));
      }
      const row = Array<string>(header.length).fill('');
      const fixed = [body.event_id, body.tenant, body.aggregate_id, String(body.version), body.event_type, eventTime(body)];
      fixed.forEach((cell, i) => (row[i] = cell));
      for (const [field, value] of Object.entries(fields)) row[columnOf.get(field) as number] = cellText(value);

      if (state.header.length === 0) state.size = appendDurably(path, csvRow(header) + csvRow(row));
      else if (header.length > state.header.length) rewrite(path, state, header, row);
      else state.size = appendDurably(path, csvRow(row));
      state.header = header;
      state.columnOf = columnOf;
      state.seen.add(body.event_id);
    } catch (err) {
      files.delete(path); // unknown file state after a failure: re-read on the next attempt
      throw fileError('csv', path, err);
    }
  }

  return fileReadModelDeliverer('csv', dir, '.csv', write, () => files.clear());
}
