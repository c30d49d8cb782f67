/**
 * List cursors. Every cursor names the last row read (not the last returned), so a page resumes
 * exactly after it; rows are keyed by what never changes (keys, event times, sort values taken as
 * of the listing's start), so a listing repeats and skips nothing that existed when it began.
 *
 * - Key order (the original's readable tokens): `a:<type>:<id>` (active), `r:<type>:<id>`
 *   (archived); event cursors append `:<version>`. Names and ids never contain ':'.
 * - Time order (event_index): `t:<created_ms>:<event_id>:<type>:<id>:<version>`, `td:` descending.
 * - Sorted lists: `s:<base64url JSON>`, the sort values of the last row (keyset paging), the
 *   stream position the listing began at (aggregates), and a fingerprint of the query so a cursor
 *   cannot page another query.
 *
 * A filtered listing appends `~<n>`: the rows its filter rejected so far, which `[query] max_scan`
 * bounds across the pages of one listing. `~` is in no name or id.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { aggregateIdSchema, aggregateTypeSchema, invalidInput } from '../core/index.js';

export interface AggregateCursor {
  archived: boolean;
  type: string;
  id: string;
}

export interface EventCursor extends AggregateCursor {
  version: number;
}

export interface TimeCursor {
  descending: boolean;
  ms: number;
  eventId: string;
  type: string;
  id: string;
  version: number;
}

function tagOf(tag: string): boolean {
  if (tag === 'a' || tag === 'active') return false;
  if (tag === 'r' || tag === 'archived') return true;
  throw invalidInput(`invalid cursor: unknown tag '${tag}'`);
}

/** Splits the `~<rejected>` suffix off a cursor. */
export function splitCursor(raw: string): { body: string; rejected: number } {
  const at = raw.lastIndexOf('~');
  if (at < 0) return { body: raw, rejected: 0 };
  const count = raw.slice(at + 1);
  if (!/^\d{1,15}$/.test(count)) throw invalidInput('invalid cursor: bad row count after ~');
  return { body: raw.slice(0, at), rejected: Number(count) };
}

export function withRejected(body: string, rejected: number): string {
  return rejected > 0 ? `${body}~${rejected}` : body;
}

export function parseAggregateCursor(raw: string): AggregateCursor {
  const parts = raw.split(':');
  if (parts.length !== 3) throw invalidInput(`invalid cursor: expected <a|r>:<type>:<id>, got '${raw}'`);
  const [tag, type, id] = parts as [string, string, string];
  if (!type || !id) throw invalidInput('invalid cursor: missing aggregate type or id');
  assertCursorNames(type, id);
  return { archived: tagOf(tag), type, id };
}

/** A cursor names an aggregate as a write would (no list returns another). */
function assertCursorNames(type: string, id: string): void {
  if (!aggregateTypeSchema.safeParse(type).success || !aggregateIdSchema.safeParse(id).success) {
    throw invalidInput(`invalid cursor: '${type}/${id}' is not an aggregate type and id this server writes`);
  }
}

/**
 * A key-order cursor continues only a listing of its own type: one of another type (listed by
 * another query) would restart the list or end it early, silently.
 */
export function assertCursorInTypes(cursor: { type: string } | undefined, types: readonly string[] | undefined): void {
  if (cursor && types !== undefined && !types.includes(cursor.type)) {
    throw invalidInput(`invalid cursor: it belongs to another query (aggregate type '${cursor.type}' is not listed here)`);
  }
}

export function parseEventCursor(raw: string): EventCursor {
  const parts = raw.split(':');
  if (parts.length !== 4) throw invalidInput(`invalid cursor: expected <a|r>:<type>:<id>:<version>, got '${raw}'`);
  const [tag, type, id, version] = parts as [string, string, string, string];
  if (!type || !id || !/^\d{1,15}$/.test(version)) throw invalidInput('invalid cursor: bad aggregate or version segment');
  assertCursorNames(type, id);
  return { archived: tagOf(tag), type, id, version: Number(version) };
}

export function aggregateCursor(archived: boolean, type: string, id: string): string {
  return `${archived ? 'r' : 'a'}:${type}:${id}`;
}

export function eventCursor(archived: boolean, type: string, id: string, version: number): string {
  return `${aggregateCursor(archived, type, id)}:${version}`;
}

export function isTimeCursor(body: string): boolean {
  return body.startsWith('t:') || body.startsWith('td:');
}

export function timeCursor(c: TimeCursor): string {
  return `${c.descending ? 'td' : 't'}:${c.ms}:${c.eventId}:${c.type}:${c.id}:${c.version}`;
}

export function parseTimeCursor(raw: string): TimeCursor {
  const parts = raw.split(':');
  const [tag, ms, eventId, type, id, version] = parts;
  if (parts.length !== 6 || (tag !== 't' && tag !== 'td') || !/^-?\d{1,16}$/.test(ms ?? '') || !/^\d{1,20}$/.test(eventId ?? '') || !type || !id || !/^\d{1,15}$/.test(version ?? '')) {
    throw invalidInput('invalid cursor: expected t:<created_ms>:<event_id>:<type>:<id>:<version>');
  }
  return { descending: tag === 'td', ms: Number(ms), eventId: eventId as string, type, id, version: Number(version) };
}

// ---------------------------------------------------------------------------------------------
// Sorted lists (keyset paging)

const sortedCursorSchema = z.strictObject({
  /** Fingerprint of the query (kind, scope, sort, filter). */
  q: z.string().regex(/^[0-9a-f]{16}$/),
  /** Aggregate sorts: each shard's global-stream seq when the listing began (its values are taken as of then). */
  m: z.record(z.string().regex(/^\d{1,4}$/), z.number().int().min(0)).optional(),
  /** The sort values of the last row returned, as a partial record the comparator reads. */
  p: z.record(z.string(), z.unknown()),
});

export type SortedCursor = z.infer<typeof sortedCursorSchema>;

export function isSortedCursor(body: string): boolean {
  return body.startsWith('s:');
}

export function sortedCursor(cursor: SortedCursor): string {
  return `s:${Buffer.from(JSON.stringify(cursor)).toString('base64url')}`;
}

export function parseSortedCursor(body: string, fingerprint: string): SortedCursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body.slice(2), 'base64url').toString('utf8'));
  } catch {
    throw invalidInput('invalid cursor: not a sorted-list cursor');
  }
  const result = sortedCursorSchema.safeParse(parsed);
  if (!result.success) throw invalidInput('invalid cursor: not a sorted-list cursor');
  if (result.data.q !== fingerprint) throw invalidInput('invalid cursor: it belongs to another query (same sort, filter and scope needed)');
  return result.data;
}

/** The kind of value a sorted cursor's position holds at a path the comparator reads. */
export type PositionKind = 'string' | 'integer' | 'boolean';

const POSITION_CHECKS: Record<PositionKind, (v: unknown) => boolean> = {
  string: (v) => typeof v === 'string',
  integer: (v) => Number.isSafeInteger(v) && (v as number) >= 0,
  boolean: (v) => typeof v === 'boolean',
};

/**
 * A position must hold every value its query's comparator reads, each of its kind: the comparator
 * would otherwise compare `undefined` (a forged or truncated cursor answered a silent empty last
 * page, or rows from anywhere) instead of the cursor being refused like any other bad cursor.
 */
export function assertPosition(p: Record<string, unknown>, fields: Record<string, PositionKind>): void {
  for (const [path, kind] of Object.entries(fields)) {
    let value: unknown = p;
    for (const segment of path.split('.')) value = typeof value === 'object' && value !== null && Object.hasOwn(value, segment) ? (value as Record<string, unknown>)[segment] : undefined;
    if (!POSITION_CHECKS[kind](value)) throw invalidInput(`invalid cursor: its position lacks ${path} (a cursor only continues the query it came from)`);
  }
}

/** The position paths a sort's comparator reads: those of its keys, then of the natural order that breaks ties. */
export function positionFields(keys: { field: string }[], kinds: Record<string, Record<string, PositionKind>>, natural: string[]): Record<string, PositionKind> {
  return Object.assign({}, ...[...keys.map((k) => k.field), ...natural].map((field) => (Object.hasOwn(kinds, field) ? kinds[field] : {})));
}

/** Which query a sorted cursor belongs to: a cursor taken with one sort cannot page another. */
export function queryFingerprint(parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

/** A cursor of one plan given to a query that plans another: said plainly, not misread. */
export function wrongCursor(expected: string): Error {
  return invalidInput(`invalid cursor: this query pages with ${expected} cursors (a cursor only continues the query it came from)`);
}
