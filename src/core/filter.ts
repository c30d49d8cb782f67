/**
 * The filter and sort language of list endpoints (reference §7). Deliberate differences from 3.14.2:
 * state values keep their JSON types (no string re-parsing), `>=`/`<=` exist, `@` may follow a dot in
 * a field name, and aggregates also sort by `created_at`/`updated_at`. Text → AST lives in
 * `filter-lexer.ts`; this file evaluates the AST and sorts.
 *
 * The AST is plain data so it can cross to shard workers with `postMessage` and be evaluated there.
 */
import { DbxError } from './errors.js';
import { FILTER_LIMITS, parseFilter, type FilterExpr, type FilterLimits, type FilterValue } from './filter-lexer.js';
import { coercedEquals, eventIdOrderLiteral, fieldRole, notATime, numberOf, timeLiteral, type FilterKind } from './filter-values.js';
import { compileLike, type LikePattern } from './like.js';
import type { AggregateView, EventMetadata, EventRecord, JsonValue } from './types.js';

export { FILTER_CHARS_MAX, FILTER_DEPTH_MAX, FILTER_LIMITS, parseFilter } from './filter-lexer.js';
export type { CompareOp, FilterExpr, FilterLimits, FilterValue } from './filter-lexer.js';
export { eventIdLiteral, fieldRole, timeLiteral, type FieldRole, type FilterKind } from './filter-values.js';

export { compileLike, likeMatch, likeToRegExp, type LikePattern, type Wildcards } from './like.js';

export const SORT_CHARS_MAX = 1024;

type Comparison = Exclude<FilterExpr, { kind: 'and' | 'or' | 'not' }>;
type LikeNode = Extract<FilterExpr, { kind: 'like' }>;

/** True when any comparison names `field` (ASCII case-insensitive); lets `archived` widen scope. */
export function mentionsField(expr: FilterExpr, field: string): boolean {
  const target = field.toLowerCase();
  switch (expr.kind) {
    case 'and':
    case 'or':
      return expr.items.some((item) => mentionsField(item, field));
    case 'not':
      return mentionsField(expr.expr, field);
    default:
      return expr.field.toLowerCase() === target;
  }
}

// ---------------------------------------------------------------------------------------------
// Evaluation. A resolver returns `undefined` for a missing field, which is not the same as null.

type Resolver = (field: string) => JsonValue | undefined;

function evaluate(expr: FilterExpr, resolve: Resolver, kind: FilterKind): boolean {
  switch (expr.kind) {
    case 'and':
      return expr.items.every((item) => evaluate(item, resolve, kind));
    case 'or':
      return expr.items.some((item) => evaluate(item, resolve, kind));
    case 'not':
      return !evaluate(expr.expr, resolve, kind);
    default:
      return compare(expr, resolve(expr.field), kind);
  }
}

function compare(expr: Comparison, actual: JsonValue | undefined, kind: FilterKind): boolean {
  // A missing field only satisfies `!= null`; the original's rule, kept so filters port unchanged.
  if (actual === undefined) return expr.kind === 'compare' && expr.op === '!=' && expr.value === null;
  const role = fieldRole(kind, expr.field);
  if (role === 'time') return compareTime(expr, actual);
  if (role === 'event_id' && typeof actual === 'string') return compareEventId(expr, actual);
  if (expr.kind === 'in') return expr.values.some((value) => coercedEquals(actual, value));
  if (expr.kind === 'like') {
    return typeof actual === 'string' && typeof expr.pattern === 'string' && likePattern(expr).test(actual);
  }
  const { op, value } = expr;
  if (op === '=') return coercedEquals(actual, value);
  if (op === '!=') return !coercedEquals(actual, value);
  const number = numberOf(actual);
  return number !== undefined && typeof value === 'number' && ordered(op, number - value);
}

/** `sign` is (actual − literal) or its sign; true when it satisfies the ordering `op`. */
function ordered(op: '>' | '<' | '>=' | '<=', sign: number): boolean {
  if (op === '>') return sign > 0;
  if (op === '<') return sign < 0;
  if (op === '>=') return sign >= 0;
  return sign <= 0;
}

// Literals converted once per node (times parsed, ids canonicalised), like LIKE patterns.
const literalCache = new WeakMap<Comparison, (number | string | null | undefined)[]>();

function literalsOf(expr: Comparison, convert: (value: FilterValue, text: string | undefined) => number | string | null | undefined): (number | string | null | undefined)[] {
  let literals = literalCache.get(expr);
  if (literals === undefined) {
    if (expr.kind === 'in') literals = expr.values.map((v, i) => convert(v, expr.texts?.[i] ?? undefined));
    else if (expr.kind === 'compare') literals = [convert(expr.value, expr.text)];
    else literals = [];
    literalCache.set(expr, literals);
  }
  return literals;
}

/** Timestamps resolve to epoch millis (null when unset); literals are ms or ISO 8601 text. */
function compareTime(expr: Comparison, actual: JsonValue): boolean {
  if (expr.kind === 'like') return false;
  const literals = literalsOf(expr, (value) => timeLiteral(value));
  if (expr.kind === 'in') return literals.some((t) => t !== undefined && t === actual);
  const t = literals[0];
  if (expr.op === '=') return t !== undefined && t === actual;
  if (expr.op === '!=') return !(t !== undefined && t === actual);
  return typeof actual === 'number' && typeof t === 'number' && ordered(expr.op, actual - t);
}

/** Event ids compare in Snowflake (numeric) order; a literal that is not an id compares as text. */
function compareEventId(expr: Comparison, actual: string): boolean {
  if (expr.kind === 'like') return typeof expr.pattern === 'string' && likePattern(expr).test(actual);
  const literals = literalsOf(expr, eventIdOrderLiteral);
  const digits = /^\d+$/.test(actual);
  /** Sign of (actual − literal), or undefined when the literal is not comparable with an id. */
  const order = (lit: number | string | null | undefined): number | undefined => {
    if (typeof lit !== 'string' || !digits) return undefined;
    if (lit === '-') return 1; // every id is ≥ 0
    if (lit.endsWith('+')) return compareEventIds(actual, lit.slice(0, -1)) || -1; // between N and N + 1
    return compareEventIds(actual, lit);
  };
  const same = (lit: number | string | null | undefined, raw: FilterValue): boolean => (typeof lit === 'string' ? order(lit) === 0 : actual === raw);
  if (expr.kind === 'in') return expr.values.some((raw, i) => same(literals[i], raw));
  const lit = literals[0];
  if (expr.op === '=') return same(lit, expr.value);
  if (expr.op === '!=') return !same(lit, expr.value);
  const sign = order(lit);
  return sign !== undefined && ordered(expr.op, sign);
}

/**
 * Parses a filter for one kind of record and checks what only the kind can tell: a timestamp field
 * compared with something that is not a time is a 400 now, not a filter that silently matches
 * nothing. The reader's entry point; `parseFilter` alone stays kind-agnostic.
 */
export function compileFilter(source: string, kind: FilterKind, limits: FilterLimits = FILTER_LIMITS): FilterExpr {
  const expr = parseFilter(source, limits);
  const check = (node: FilterExpr): void => {
    if (node.kind === 'and' || node.kind === 'or') return node.items.forEach(check);
    if (node.kind === 'not') return check(node.expr);
    if (fieldRole(kind, node.field) !== 'time' || node.kind === 'like') return;
    for (const value of node.kind === 'in' ? node.values : [node.value]) {
      if (timeLiteral(value) === undefined) throw notATime(node.field, value);
    }
  };
  check(expr);
  return expr;
}

// Keyed by node, so a parsed filter compiles each pattern once however many records it scans, and a
// copy of the AST received from another thread simply compiles its own.
const likeCache = new WeakMap<LikeNode, LikePattern>();

function likePattern(node: LikeNode): LikePattern {
  let pattern = likeCache.get(node);
  if (pattern === undefined) {
    pattern = compileLike(String(node.pattern));
    likeCache.set(node, pattern);
  }
  return pattern;
}

/** Dot path into JSON: object keys or decimal array indices; an empty segment is missing. */
export function selectJson(root: JsonValue, path: string): JsonValue | undefined {
  let current: JsonValue | undefined = root;
  for (const segment of path.split('.')) {
    if (segment.length === 0 || current === null || typeof current !== 'object') return undefined;
    if (Array.isArray(current)) {
      current = /^\d+$/.test(segment) ? current[Number(segment)] : undefined;
    } else {
      current = Object.prototype.hasOwnProperty.call(current, segment) ? current[segment] : undefined;
    }
    if (current === undefined) return undefined;
  }
  return current;
}

/** ISO timestamps compare as epoch millis, as in the original; an unparsable one is null. */
function epochMillis(iso: string): number | null {
  const millis = Date.parse(iso);
  return Number.isNaN(millis) ? null : millis;
}

type Getter<T> = (record: T) => JsonValue | undefined;

/** Each snake_case name also answers to its camelCase spelling, as in the original. */
function withCamel<T>(getters: Record<string, Getter<T>>): ReadonlyMap<string, Getter<T>> {
  const map = new Map<string, Getter<T>>();
  for (const [name, get] of Object.entries(getters)) {
    map.set(name, get);
    map.set(name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), get);
  }
  return map;
}

const AGGREGATE_FIELDS = withCamel<AggregateView>({
  aggregate_type: (a) => a.aggregate_type,
  aggregate_id: (a) => a.aggregate_id,
  merkle_root: (a) => a.merkle_root,
  created_at: (a) => epochMillis(a.created_at),
  updated_at: (a) => epochMillis(a.updated_at),
  archived: (a) => a.archived,
  version: (a) => a.version,
});

// `note` and `issued_by` are missing (not null) when unset, as in the original.
const METADATA_FIELDS = withCamel<EventMetadata>({
  note: (m) => m.note,
  event_id: (m) => m.event_id,
  created_at: (m) => epochMillis(m.created_at),
  'issued_by.group': (m) => m.issued_by?.group,
  'issued_by.Group': (m) => m.issued_by?.group,
  'issued_by.user': (m) => m.issued_by?.user,
  'issued_by.User': (m) => m.issued_by?.user,
});

const EVENT_FIELDS = withCamel<EventRecord>({
  aggregate_type: (e) => e.aggregate_type,
  aggregate_id: (e) => e.aggregate_id,
  event_type: (e) => e.event_type,
  version: (e) => e.version,
  merkle_root: (e) => e.merkle_root,
  hash: (e) => e.hash,
  note: (e) => e.metadata.note,
  event_id: (e) => e.metadata.event_id,
  created_at: (e) => epochMillis(e.metadata.created_at),
});

export function resolveAggregateField(aggregate: AggregateView, field: string): JsonValue | undefined {
  const get = AGGREGATE_FIELDS.get(field);
  if (get !== undefined) return get(aggregate);
  return selectJson(aggregate.state, field.startsWith('state.') ? field.slice('state.'.length) : field);
}

export function resolveEventField(event: EventRecord, field: string): JsonValue | undefined {
  const get = EVENT_FIELDS.get(field);
  if (get !== undefined) return get(event);
  if (field.startsWith('metadata.')) return METADATA_FIELDS.get(field.slice('metadata.'.length))?.(event.metadata);
  if (field.startsWith('extensions.')) return selectJson(event.extensions, field.slice('extensions.'.length));
  if (field.startsWith('payload.')) return selectJson(event.payload, field.slice('payload.'.length));
  // A stored null counts as found, so each step tests for undefined rather than chaining `??`.
  const fromMetadata = METADATA_FIELDS.get(field)?.(event.metadata);
  if (fromMetadata !== undefined) return fromMetadata;
  const fromExtensions = selectJson(event.extensions, field);
  return fromExtensions !== undefined ? fromExtensions : selectJson(event.payload, field);
}

/**
 * The dot path into state (aggregates) or payload (events) that a filter field may read, or
 * undefined when it names a built-in field. Kept beside the two resolvers so it follows them: an
 * event field without a prefix may fall through to the payload (when metadata and extensions lack
 * it), so it counts as a payload path. schema-visibility.ts refuses filters on hidden fields with it.
 */
export function dataPathOf(kind: 'aggregate' | 'event', field: string): string | undefined {
  if (kind === 'aggregate') return AGGREGATE_FIELDS.has(field) ? undefined : field.startsWith('state.') ? field.slice('state.'.length) : field;
  if (EVENT_FIELDS.has(field) || field.startsWith('metadata.') || field.startsWith('extensions.')) return undefined;
  return field.startsWith('payload.') ? field.slice('payload.'.length) : field;
}

/** Every field a filter names, in order, repeats included. */
export function fieldsOf(expr: FilterExpr): string[] {
  if (expr.kind === 'and' || expr.kind === 'or') return expr.items.flatMap(fieldsOf);
  if (expr.kind === 'not') return fieldsOf(expr.expr);
  return [expr.field];
}

export function matchesAggregate(expr: FilterExpr, aggregate: AggregateView): boolean {
  return evaluate(expr, (field) => resolveAggregateField(aggregate, field), 'aggregate');
}

export function matchesEvent(expr: FilterExpr, event: EventRecord): boolean {
  return evaluate(expr, (field) => resolveEventField(event, field), 'event');
}

// ---------------------------------------------------------------------------------------------
// Sorting (reference §7.4)

export interface SortKey {
  field: string;
  descending: boolean;
}

type Comparator<T> = (a: T, b: T) => number;

const cmp = <T extends string | number | boolean>(a: T, b: T): number => (a < b ? -1 : a > b ? 1 : 0);
const by =
  <T>(get: (record: T) => string | number | boolean): Comparator<T> =>
  (a, b) =>
    cmp(get(a), get(b));

/** Unparsable timestamps sort first rather than poisoning the order with NaN. */
const timeOf = (iso: string): number => epochMillis(iso) ?? Number.NEGATIVE_INFINITY;

/**
 * Numeric order of decimal Snowflake ids without a BigInt per comparison: for digit strings without
 * leading zeros, longer is larger and equal lengths compare lexically. Anything else sorts after, in
 * string order, so a malformed id cannot throw mid-sort.
 */
export function compareEventIds(a: string, b: string): number {
  const da = /^\d+$/.test(a);
  const db = /^\d+$/.test(b);
  if (!da || !db) return da === db ? cmp(a, b) : da ? -1 : 1;
  const sa = a.replace(/^0+(?=\d)/, '');
  const sb = b.replace(/^0+(?=\d)/, '');
  return sa.length === sb.length ? cmp(sa, sb) : Math.sign(sa.length - sb.length);
}

const AGGREGATE_SORT: Record<string, Comparator<AggregateView>> = {
  aggregate_type: by((a) => a.aggregate_type),
  aggregate_id: by((a) => a.aggregate_id),
  version: by((a) => a.version),
  merkle_root: by((a) => a.merkle_root),
  archived: by((a) => a.archived),
  created_at: by((a) => timeOf(a.created_at)),
  updated_at: by((a) => timeOf(a.updated_at)),
};

// No `archived` here: an EventRecord does not carry its aggregate's archive flag.
const EVENT_SORT: Record<string, Comparator<EventRecord>> = {
  aggregate_type: by((e) => e.aggregate_type),
  aggregate_id: by((e) => e.aggregate_id),
  version: by((e) => e.version),
  merkle_root: by((e) => e.merkle_root),
  event_type: by((e) => e.event_type),
  // Ties in time go by event id (commit order within a node), so the time index can serve it.
  created_at: (a, b) => cmp(timeOf(a.metadata.created_at), timeOf(b.metadata.created_at)) || compareEventIds(a.metadata.event_id, b.metadata.event_id),
  event_id: (a, b) => compareEventIds(a.metadata.event_id, b.metadata.event_id),
  hash: by((e) => e.hash),
};

type Kind = 'aggregate' | 'event';

const sortError = (message: string): DbxError => new DbxError('invalid_input', message);

/** `field[:asc|desc][,…]`; keys come back with the canonical snake_case field name. */
export function parseSort(spec: string, kind: Kind): SortKey[] {
  if (spec.length > SORT_CHARS_MAX) throw sortError(`sort specification exceeds ${SORT_CHARS_MAX} characters`);
  const trimmed = spec.trim();
  if (trimmed.length === 0) throw sortError('sort specification cannot be empty');
  const fields = kind === 'aggregate' ? AGGREGATE_SORT : EVENT_SORT;
  return trimmed.split(',').map((segment) => {
    const part = segment.trim();
    if (part.length === 0) throw sortError('sort segments cannot be empty');
    // Checked in the original's order: field, then direction, then extra separators.
    const [name = '', order, ...rest] = part.split(':');
    const raw = name.trim();
    if (raw.length === 0) throw sortError('sort field cannot be empty');
    // Case-insensitive, and the original's underscore-free spellings (`aggregatetype`) too.
    const lower = raw.toLowerCase();
    const field = Object.keys(fields).find((name) => name === lower || name.replace(/_/g, '') === lower);
    if (field === undefined) throw sortError(`unsupported ${kind} sort field '${raw}'`);
    const direction = order?.trim().toLowerCase() ?? 'asc';
    if (direction !== 'asc' && direction !== 'desc') {
      throw sortError(`invalid sort order '${direction}' (expected 'asc' or 'desc')`);
    }
    if (rest.length > 0) throw sortError("sort specification contains too many ':' separators");
    return { field, descending: direction === 'desc' };
  });
}

/**
 * Ties fall back to the natural key ascending, so the order is total: shard results merged with the
 * same comparator interleave identically on every page.
 */
function chainComparators<T>(
  fields: Record<string, Comparator<T>>,
  keys: SortKey[],
  natural: string[],
  kind: Kind,
): Comparator<T> {
  const steps = [...keys, ...natural.map((field) => ({ field, descending: false }))].map((key) => {
    const compare = Object.hasOwn(fields, key.field) ? fields[key.field] : undefined;
    if (compare === undefined) throw sortError(`unsupported ${kind} sort field '${key.field}'`);
    return key.descending ? (a: T, b: T) => compare(b, a) : compare;
  });
  return (a, b) => {
    for (const step of steps) {
      const result = step(a, b);
      if (result !== 0) return result;
    }
    return 0;
  };
}

export function compareAggregatesBy(keys: SortKey[]): Comparator<AggregateView> {
  return chainComparators(AGGREGATE_SORT, keys, ['aggregate_type', 'aggregate_id'], 'aggregate');
}

export function compareEventsBy(keys: SortKey[]): Comparator<EventRecord> {
  return chainComparators(EVENT_SORT, keys, ['aggregate_type', 'aggregate_id', 'version'], 'event');
}
