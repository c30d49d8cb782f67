/**
 * Exports (reference §14.4; issue 13 item 6): the active aggregates of one type as one CSV or JSON
 * document, streamed from LMDB ranges, never buffered whole. Memory is O(one chunk + the CSV
 * header), whatever the size of the type.
 *
 * Point in time: every range of one export reads inside one read transaction per worker
 * environment (`useReadTransaction`), so the CSV header pass and the rows pass see the same
 * snapshot, and a write committed during the export is in neither. The cost: LMDB cannot reuse the
 * pages that later commits free while the snapshot is held, so a store written to during a long
 * (or slowly read) export grows by what those commits rewrite. The snapshot is released when the
 * response stream closes, however it closes (end, client gone, error).
 *
 * Rows come from the `heads` database in (type, id) order, merged across the tenant's shards, so
 * they are sorted by aggregate id, as the original's. Archived heads are skipped; every row's
 * frontier is checked against its root (as a GET does), so a forged head fails the export instead
 * of being exported.
 *
 * Columns:
 * - JSON: `{ "__aggregate_type", "__aggregate_id", "__version", "__merkle_root", <state keys>… }`:
 *   the original's `__aggregate_id` plus what `dbx aggregate export --verify` needs to check the
 *   file against the store later. Values keep their JSON types (DESIGN §10).
 * - CSV (RFC 4180, CRLF): `__aggregate_id`, then the schema's declared top-level columns in their
 *   order (when the type has a schema), then every other state key of the type, sorted. Text as is,
 *   numbers/booleans as JSON text, objects and arrays as compact JSON, absent empty.
 * A state key equal to a reserved column name, or starting with `field:`, becomes `field:<key>`
 * (the csv read model's rule): names never clash and the mapping reverses.
 * Hidden fields (schema `hidden_fields`) are left out, as from every answer.
 */
import type { RootDatabase } from 'lmdb';
import { DbxError, shardsForTenant, type JsonObject, type JsonValue, type PlacementSettings } from '../core/index.js';
import { csvCell, csvColumnName } from '../core/csv-text.js';
import type { SchemaRecord } from '../core/schema/api.js';
import { KEY_MAX, type ShardStore, type StoredHead } from '../shard-worker/index.js';
import { compareStrings, mergeSorted } from './merge.js';
import type { SchemaVisibility } from './schema-visibility.js';
import { assertHeadIntact } from './verify.js';

export type ExportFormat = 'csv' | 'json';

/** The columns every JSON row starts with; CSV has only the first. */
export const EXPORT_JSON_COLUMNS = ['__aggregate_type', '__aggregate_id', '__version', '__merkle_root'] as const;
export const EXPORT_CSV_ID_COLUMN = '__aggregate_id';
const RESERVED: ReadonlySet<string> = new Set(EXPORT_JSON_COLUMNS);

/**
 * Distinct top-level keys a CSV header may hold. A state used as a map (ids as keys) would
 * otherwise make the header, the only thing an export keeps in memory, as large as the data.
 */
export const EXPORT_CSV_COLUMNS_MAX = 10_000;
/** Bytes gathered before a chunk goes to the socket: big enough to amortise a write, small enough to stay flat. */
const CHUNK_BYTES = 64 * 1024;
/** Rows handled between two yields to the event loop in the header pass (which sends nothing). */
const ROWS_PER_TURN = 2_000;

/** State key → column name; injective (escaped names all start with `field:`, others never do). */
export function exportColumnName(key: string): string {
  return csvColumnName(RESERVED, key);
}

function cellText(value: JsonValue | undefined): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export interface ExportSource {
  stores: ShardStore[];
  placement: PlacementSettings;
  schemaOf: (tenant: string, type: string) => SchemaRecord | undefined;
  visibility: SchemaVisibility;
}

export interface ExportRequest {
  tenant: string;
  type: string;
  format: ExportFormat;
  pretty: boolean;
  /** The token's resource patterns per aggregate; absent = every aggregate. */
  allow?: (type: string, id: string) => boolean;
}

interface Row {
  id: string;
  head: StoredHead;
  state: JsonObject;
}

/** One read transaction per worker environment of the tenant, released together. */
class Snapshot {
  private readonly txns = new Map<RootDatabase, ReturnType<RootDatabase['useReadTransaction']>>();
  private released = false;

  constructor(stores: ShardStore[]) {
    for (const store of stores) if (!this.txns.has(store.env)) this.txns.set(store.env, store.env.useReadTransaction());
  }

  of(store: ShardStore): ReturnType<RootDatabase['useReadTransaction']> {
    return this.txns.get(store.env)!;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    for (const txn of this.txns.values()) txn.done();
  }
}

/**
 * A prepared export: the header is known (CSV pass done), `chunks()` yields the document. Call
 * `release()` when the consumer is done (routes-export ties it to the response stream's close).
 */
export interface PreparedExport {
  contentType: string;
  filename: string;
  chunks(): AsyncGenerator<string>;
  release(): void;
}

export async function prepareExport(source: ExportSource, request: ExportRequest): Promise<PreparedExport> {
  const stores = shardsForTenant(source.placement, request.tenant).map((s) => source.stores[s] as ShardStore);
  const snapshot = new Snapshot(stores);
  try {
    // A hidden type exports as a type without aggregates, as it lists (its range is not read).
    const hidden = source.visibility.hiddenType(request.tenant, request.type);
    const rows = (): Generator<Row> => (hidden ? emptyRows() : activeRows(source, stores, snapshot, request));
    const ext = request.format;
    const base = { contentType: ext === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8', filename: `${request.type}.${ext}`, release: () => snapshot.release() };
    if (request.format === 'json') return { ...base, chunks: () => jsonChunks(rows(), request) };
    const columns = await csvColumns(rows(), schemaColumns(source, request));
    return { ...base, chunks: () => csvChunks(rows(), columns) };
  } catch (err) {
    snapshot.release();
    throw err;
  }
}

function* emptyRows(): Generator<Row> {}

/** Active heads of the type in id order across the tenant's shards, inside the snapshot. */
function* activeRows(source: ExportSource, stores: ShardStore[], snapshot: Snapshot, request: ExportRequest): Generator<Row> {
  const { tenant, type, allow } = request;
  const ranges = stores.map((store) =>
    // scannedHeads: states opened without filling the heads' open-state cache (one pass touches
    // each head once; through the cache, an export would leave up to 16K states per shard in it).
    store.scannedHeads.getRange({ start: [tenant, type, ''], end: [tenant, type, KEY_MAX], transaction: snapshot.of(store) }),
  );
  for (const { key, value } of mergeSorted(ranges, (a, b) => compareStrings(a.key[2], b.key[2]))) {
    const id = key[2];
    // Assert right after reading: the range must hold only this tenant's and type's keys.
    if (key[0] !== tenant || key[1] !== type) throw new DbxError('internal', `export range returned ${key[0]}/${key[1]} for ${tenant}/${type}`);
    if (value.archived || (allow && !allow(type, id))) continue;
    assertHeadIntact(type, id, value);
    yield { id, head: value, state: source.visibility.state(tenant, type, value.state) };
  }
}

/** The type's schema columns (top-level, declared order), minus hidden ones. */
function schemaColumns(source: ExportSource, request: ExportRequest): string[] {
  const schema = source.schemaOf(request.tenant, request.type)?.schema;
  if (!schema) return [];
  const hidden = new Set(schema.hidden_fields);
  return Object.keys(schema.column_types).filter((name) => !hidden.has(name));
}

/** Header pass: schema columns first, then every other visible state key (sorted). */
async function csvColumns(rows: Iterable<Row>, declared: string[]): Promise<string[]> {
  const known = new Set(declared);
  const extra = new Set<string>();
  let n = 0;
  for (const row of rows) {
    for (const key of Object.keys(row.state)) {
      if (known.has(key) || extra.has(key)) continue;
      if (known.size + extra.size >= EXPORT_CSV_COLUMNS_MAX) {
        throw new DbxError('invalid_input', `a CSV export of this type would have more than ${EXPORT_CSV_COLUMNS_MAX} columns (its states use keys as data): export it with format=json`);
      }
      extra.add(key);
    }
    if (++n % ROWS_PER_TURN === 0) await turn();
  }
  return [...declared, ...[...extra].sort(compareStrings)];
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function* csvChunks(rows: Iterable<Row>, columns: string[]): AsyncGenerator<string> {
  const out = new ChunkBuffer();
  out.push(`${[EXPORT_CSV_ID_COLUMN, ...columns.map(exportColumnName)].map(csvCell).join(',')}\r\n`);
  for (const row of rows) {
    let line = csvCell(row.id);
    for (const column of columns) line += `,${csvCell(cellText(Object.hasOwn(row.state, column) ? row.state[column] : undefined))}`;
    if (out.push(`${line}\r\n`)) yield out.take();
  }
  yield out.take();
}

/** The row object of the JSON form: reserved columns first, then the state (escaped names). */
export function jsonRow(type: string, row: { id: string; version: number; merkle_root: string; state: JsonObject }): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = { __aggregate_type: type, __aggregate_id: row.id, __version: row.version, __merkle_root: row.merkle_root };
  for (const key in row.state) {
    const value = row.state[key] as JsonValue;
    // A key named `__proto__` is data like any other (an assignment would hit the prototype setter).
    if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    else out[exportColumnName(key)] = value;
  }
  return out;
}

/**
 * `[row,\nrow]\n` compact (one row per line: valid JSON that line tools can still split), or with
 * `pretty` exactly `JSON.stringify(rows, null, 2)` + newline, built row by row.
 */
async function* jsonChunks(rows: Iterable<Row>, request: ExportRequest): AsyncGenerator<string> {
  const out = new ChunkBuffer();
  let first = true;
  for (const row of rows) {
    const object = jsonRow(request.type, { id: row.id, version: row.head.version, merkle_root: row.head.merkle_root, state: row.state });
    const text = request.pretty ? `  ${JSON.stringify(object, null, 2).replace(/\n/g, '\n  ')}` : JSON.stringify(object);
    const separator = first ? (request.pretty ? '[\n' : '[') : ',\n';
    first = false;
    if (out.push(separator + text)) yield out.take();
  }
  out.push(first ? '[]\n' : request.pretty ? '\n]\n' : ']\n');
  yield out.take();
}

/** Gathers pieces until a chunk is worth a socket write. */
class ChunkBuffer {
  private parts: string[] = [];
  private length = 0;

  /** True when the chunk is full (take it). */
  push(text: string): boolean {
    this.parts.push(text);
    this.length += text.length;
    return this.length >= CHUNK_BYTES;
  }

  take(): string {
    const text = this.parts.join('');
    this.parts = [];
    this.length = 0;
    return text;
  }
}

/** Active aggregates per type that the caller may read (hidden types left out), in type order. */
export async function exportTypes(
  source: ExportSource,
  tenant: string,
  options: { type?: string; allowType?: (type: string) => boolean; allow?: (type: string, id: string) => boolean },
): Promise<{ aggregate_type: string; aggregates: number }[]> {
  const counts = new Map<string, number>();
  let n = 0;
  for (const shard of shardsForTenant(source.placement, tenant)) {
    const store = source.stores[shard] as ShardStore;
    let skipType: string | undefined;
    for (const key of store.indexRange(tenant, 'a', options.type)) {
      const type = key[2];
      if (++n % (ROWS_PER_TURN * 10) === 0) await turn();
      if (type === skipType) continue;
      if (!counts.has(type) && (source.visibility.hiddenType(tenant, type) || (options.allowType && !options.allowType(type)))) {
        skipType = type;
        continue;
      }
      if (options.allow && !options.allow(type, key[3])) {
        if (!counts.has(type)) counts.set(type, 0);
        continue;
      }
      counts.set(type, (counts.get(type) ?? 0) + 1);
    }
  }
  return [...counts.entries()].sort(([a], [b]) => compareStrings(a, b)).map(([aggregate_type, aggregates]) => ({ aggregate_type, aggregates }));
}
