/**
 * `--format table|json|csv|lines` for every listing, printed page by page as the pages arrive.
 *
 * Adopting it in a listing command takes one line in the definition and one in the action:
 *
 *   withFormatOptions(command, 'table');                // adds --format, and --json (= --format json) unless it has one
 *   await printListing(opts, TOKEN_LISTING, items);     // an array, or pages(opts, fetchPage) from listing.ts
 *
 * (a command whose default is not a table passes it to both: `withFormatOptions(c, 'lines')`,
 * `printListing(opts, SPEC, items, 'lines')`)
 *
 * where TOKEN_LISTING is a `ListingSpec`: the columns (header and how to read each cell from an
 * item in the API's own naming), what to say when there is nothing, and optionally the item's
 * `lines` form (default: `key=value` of the columns, the original CLI's style).
 *
 * - `table`: psql's aligned format, header once, `(N rows)` last. When a row does not fit the
 *   terminal ($COLUMNS, else the terminal's width; a pipe has no limit) it switches to psql's
 *   expanded record view (`\x auto`). Pages are aligned as they come (psql's FETCH_COUNT does the
 *   same): a later page may widen a column, never reflow what was printed.
 * - `json`: one JSON array, exactly `JSON.stringify(items, null, 2)`, written item by item.
 * - `csv`: RFC 4180, a header row, nested values as JSON text.
 * - `lines`: one line per item.
 * `next cursor: …` follows a table or lines on stdout; with json and csv it goes to stderr, so
 * stdout stays one document.
 */
import { Command, Option } from 'commander';
import { UsageError } from './output.js';
import { csvCell } from '../core/csv-text.js';
import { displayWidth, paint, terminalWidth } from './terminal.js';

export const FORMATS = ['table', 'json', 'csv', 'lines'] as const;
export type Format = (typeof FORMATS)[number];

export interface Column<T> {
  name: string;
  value: (item: T) => unknown;
  /** What a table shows instead (a short hash, `-` for none); json, csv and lines keep `value`. */
  brief?: (item: T) => unknown;
}

export interface ListingSpec<T> {
  columns: Column<T>[];
  /** Printed (table, lines) when the listing has no item at all: `no aggregates` (none: nothing). */
  empty?: string;
  /** The `lines` form of one item; default: `key=value` of the columns. */
  line?: (item: T) => string;
}

export interface FormatFlags {
  json?: boolean;
  format?: Format;
}

/** A page of items and the cursor after it, as the API sends it. */
export interface WirePage<T> {
  items: T[];
  next_cursor?: string | null | undefined;
}

/** Adds `--format` (and `--json`, unless the command has it) with `fallback` as the default. */
export function withFormatOptions(command: Command, fallback: Format = 'table'): Command {
  command.addOption(new Option('--format <format>', `output format (default ${fallback})`).choices(FORMATS));
  if (!command.options.some((o) => o.long === '--json')) command.option('--json', 'print JSON (the same as --format json)');
  return command;
}

export function formatOf(flags: FormatFlags, fallback: Format = 'table'): Format {
  if (flags.json && flags.format !== undefined && flags.format !== 'json') throw new UsageError(`--json cannot be combined with --format ${flags.format}`);
  return flags.json ? 'json' : (flags.format ?? fallback);
}

/** stdout with backpressure: a listing into a slow pipe must not queue everything in memory. */
async function out(text: string): Promise<void> {
  if (text.length > 0 && !process.stdout.write(text)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
}

export function cellText(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

const CONTROL_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * A table cell on one line and harmless to a terminal: control characters (a newline would break
 * the row, an ESC or a C1 CSI could drive the terminal) are shown as escapes, `\n`, `\t`, `\u001b`.
 */
export function tableCellText(value: unknown): string {
  return cellText(value).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => CONTROL_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A key never holds a space (`writes left` → `writes_left`), so a line splits on spaces into key=value pairs. */
function keyValueLine<T>(columns: Column<T>[], item: T): string {
  return columns.map((c) => `${c.name.replace(/ /g, '_')}=${cellText(c.value(item))}`).join(' ');
}

function pad(text: string, width: number, right: boolean): string {
  const fill = ' '.repeat(Math.max(0, width - displayWidth(text)));
  return right ? fill + text : text + fill;
}

/** Writes one listing in one format, a page at a time. */
export class ListingWriter<T> {
  private count = 0;
  private widths: number[] | undefined;
  private expanded = false;
  private readonly numeric: boolean[];

  constructor(
    private readonly format: Format,
    private readonly spec: ListingSpec<T>,
  ) {
    this.numeric = spec.columns.map(() => true);
  }

  async page(items: T[]): Promise<void> {
    await out(this.pageText(items));
  }

  async end(nextCursor?: string | null): Promise<void> {
    const { stdout, stderr } = this.endText(nextCursor);
    await out(stdout);
    if (stderr) process.stderr.write(stderr);
  }

  /** What `page` prints (tables and lists that are printed at once use it directly). */
  pageText(items: T[]): string {
    if (items.length === 0) return '';
    const first = this.count === 0;
    let text = '';
    switch (this.format) {
      case 'json':
        text = items.map((item, i) => `${first && i === 0 ? '[\n' : ',\n'}  ${JSON.stringify(item, null, 2).replace(/\n/g, '\n  ')}`).join('');
        break;
      case 'csv': {
        const header = first ? `${this.spec.columns.map((c) => csvCell(c.name)).join(',')}\r\n` : '';
        text = header + items.map((item) => `${this.spec.columns.map((c) => csvCell(cellText(c.value(item)))).join(',')}\r\n`).join('');
        break;
      }
      case 'lines':
        text = items.map((item) => `${this.spec.line ? this.spec.line(item) : keyValueLine(this.spec.columns, item)}\n`).join('');
        break;
      case 'table':
        text = this.tablePage(items.map((item) => this.spec.columns.map((c) => (c.brief ?? c.value)(item))));
        break;
    }
    this.count += items.length;
    return text;
  }

  /** What `end` prints: closing the document, the row count, and the next cursor. */
  endText(nextCursor?: string | null): { stdout: string; stderr: string } {
    let stdout = '';
    if (this.format === 'json') stdout += this.count === 0 ? '[]\n' : '\n]\n';
    if (this.format === 'csv' && this.count === 0) stdout += `${this.spec.columns.map((c) => csvCell(c.name)).join(',')}\r\n`;
    if ((this.format === 'table' || this.format === 'lines') && this.count === 0 && this.spec.empty !== undefined) stdout += `${this.spec.empty}\n`;
    if (this.format === 'table' && this.count > 0 && !this.expanded) stdout += `(${this.count} ${this.count === 1 ? 'row' : 'rows'})\n`;
    if (!nextCursor) return { stdout, stderr: '' };
    if (this.format === 'json' || this.format === 'csv') return { stdout, stderr: `next cursor: ${nextCursor}\n` };
    return { stdout: `${stdout}next cursor: ${nextCursor}\n`, stderr: '' };
  }

  private tablePage(rows: unknown[][]): string {
    const names = this.spec.columns.map((c) => c.name);
    rows.forEach((row) => row.forEach((v, i) => (this.numeric[i] &&= typeof v === 'number' || v === undefined || v === null)));
    const cells = rows.map((row) => row.map(tableCellText));
    const first = this.widths === undefined;
    const widths = names.map((name, i) => Math.max(this.widths?.[i] ?? displayWidth(name), ...cells.map((r) => displayWidth(r[i] as string))));
    this.widths = widths;
    const limit = terminalWidth();
    // " a | b " : one space each side and " | " between columns.
    if (first && limit !== undefined && widths.reduce((a, b) => a + b, 0) + 3 * (widths.length - 1) + 2 > limit) this.expanded = true;
    if (this.expanded) return this.records(names, cells, limit);
    const last = names.length - 1;
    const line = (values: string[], header: boolean): string =>
      ` ${values
        .map((v, i) => {
          // psql: headers centred, numbers right-aligned, the last column not padded.
          if (header) {
            const left = Math.floor((widths[i]! - displayWidth(v)) / 2);
            return i === last ? ' '.repeat(left) + paint(v, 'bold') : pad(' '.repeat(left) + paint(v, 'bold'), widths[i]!, false);
          }
          return i === last && !this.numeric[i] ? v : pad(v, widths[i]!, this.numeric[i]!);
        })
        .join(' | ')}`.trimEnd();
    const head = first ? `${line(names, true)}\n${widths.map((w) => '-'.repeat(w + 2)).join('+')}\n` : '';
    return head + cells.map((r) => `${line(r, false)}\n`).join('');
  }

  /** psql's expanded view: one `-[ RECORD n ]` block per item, `name | value` lines. */
  private records(names: string[], cells: string[][], limit: number | undefined): string {
    const keyWidth = Math.max(...names.map(displayWidth));
    let text = '';
    cells.forEach((row, r) => {
      const valueWidth = Math.max(1, ...row.map(displayWidth));
      const label = `-[ RECORD ${this.count + r + 1} ]`;
      const rule = `${label}${'-'.repeat(Math.max(0, keyWidth + 1 - label.length))}+${'-'.repeat(valueWidth + 1)}`;
      text += `${limit !== undefined ? rule.slice(0, Math.max(limit, label.length + 1)) : rule}\n`;
      text += row.map((v, i) => `${pad(paint(names[i] as string, 'bold'), keyWidth, false)} | ${v}`.trimEnd()).join('\n') + '\n';
    });
    return text;
  }
}

/** Prints a listing: an array, or pages as they arrive (see listing.ts `pages`). */
export async function printListing<T>(flags: FormatFlags, spec: ListingSpec<T>, source: T[] | AsyncIterable<WirePage<T>>, fallback: Format = 'table'): Promise<void> {
  const writer = new ListingWriter(formatOf(flags, fallback), spec);
  if (Array.isArray(source)) {
    await writer.page(source);
    return writer.end();
  }
  let cursor: string | null | undefined;
  for await (const page of source) {
    await writer.page(page.items);
    cursor = page.next_cursor;
  }
  await writer.end(cursor);
}

/** A table of rows printed at once (psql's aligned format, fitted to the terminal like any listing). */
export function tableText(head: string[], rows: unknown[][], empty?: string): string {
  const spec: ListingSpec<unknown[]> = { columns: head.map((name, i) => ({ name, value: (row) => row[i] })), ...(empty !== undefined ? { empty } : {}) };
  const writer = new ListingWriter('table', spec);
  return writer.pageText(rows) + writer.endText().stdout;
}
