/**
 * What of a filter an index can serve (issue 13 item 3). Only the top-level AND is looked at: each
 * conjunct on a built-in key field (`aggregate_type`, `aggregate_id`, `event_type`, `created_at`,
 * `event_id`) with `=`, `IN`, an OR of those on one field, or an ordering on a time or an id,
 * narrows the key ranges to read; every other conjunct is evaluated per record read. The whole
 * filter is still evaluated on each record, so a constraint only ever narrows what is read and can
 * never change an answer.
 *
 * `QueryExplain` is what `explain=true` adds to a list answer (the client re-exports it).
 */
import { eventIdLiteral, eventIdOrderLiteral, fieldRole, timeLiteral, type FieldRole, type FilterKind } from './filter-values.js';
import { fieldsOf } from './filter.js';
import type { FilterExpr, FilterValue } from './filter-lexer.js';

/** The largest event id: ids are unsigned 64-bit integers. */
const U64_MAX = (1n << 64n) - 1n;

export interface IndexConstraints {
  /** Sorted, distinct; an empty list means nothing can match. */
  aggregateTypes?: string[];
  aggregateIds?: string[];
  eventTypes?: string[];
  eventIds?: string[];
  /** created_at bounds in epoch ms, inclusive (events only: aggregates have no time index). */
  timeMin?: number;
  timeMax?: number;
  /** event_id bounds, canonical decimal, inclusive. */
  idMin?: string;
  idMax?: string;
  /** Fields of the conjuncts captured above, and of the rest (evaluated per record). */
  indexed: string[];
  residual: string[];
}

/** The sets and bounds a filter's top-level conjuncts put on the key fields of `kind`. */
export function constraintsOf(expr: FilterExpr | undefined, kind: FilterKind): IndexConstraints {
  const out: IndexConstraints = { indexed: [], residual: [] };
  if (expr === undefined) return out;
  for (const conjunct of expr.kind === 'and' ? expr.items : [expr]) {
    if (!capture(conjunct, kind, out)) out.residual.push(...fieldsOf(conjunct));
  }
  out.indexed = [...new Set(out.indexed)];
  out.residual = [...new Set(out.residual)];
  return out;
}

const SET_FIELDS: Partial<Record<FieldRole, 'aggregateTypes' | 'aggregateIds' | 'eventTypes' | 'eventIds'>> = {
  aggregate_type: 'aggregateTypes',
  aggregate_id: 'aggregateIds',
  event_type: 'eventTypes',
  event_id: 'eventIds',
};

function capture(node: FilterExpr, kind: FilterKind, out: IndexConstraints): boolean {
  const equalities = equalitySet(node, kind);
  if (equalities !== undefined) {
    const slot = SET_FIELDS[equalities.role];
    if (slot === undefined || (equalities.role === 'event_id' && kind !== 'event')) return false;
    const previous = out[slot];
    out[slot] = previous === undefined ? equalities.values : equalities.values.filter((v) => previous.includes(v));
    out.indexed.push(equalities.field);
    return true;
  }
  if (node.kind !== 'compare' || kind !== 'event' || node.op === '=' || node.op === '!=') return false;
  const role = fieldRole(kind, node.field);
  if (role === 'time') {
    const t = timeLiteral(node.value);
    if (typeof t !== 'number') return false;
    // created_ms is an integer: `> 1.5` is `>= 2`.
    if (node.op === '>') out.timeMin = Math.max(out.timeMin ?? -Infinity, Math.floor(t) + 1);
    else if (node.op === '>=') out.timeMin = Math.max(out.timeMin ?? -Infinity, Math.ceil(t));
    else if (node.op === '<') out.timeMax = Math.min(out.timeMax ?? Infinity, Math.ceil(t) - 1);
    else out.timeMax = Math.min(out.timeMax ?? Infinity, Math.floor(t));
    out.indexed.push(node.field);
    return true;
  }
  if (role === 'event_id') {
    const id = eventIdLiteral(node.value, node.text);
    if (id === undefined) return false;
    const big = BigInt(id);
    if (node.op === '>' || node.op === '>=') {
      const min = node.op === '>' ? big + 1n : big;
      // Above every id (a u64): nothing can match.
      if (min > U64_MAX) out.eventIds = [];
      else if (out.idMin === undefined || BigInt(out.idMin) < min) out.idMin = min.toString();
    } else {
      // Beyond every id: the bound is the largest id there can be.
      const max = (node.op === '<' ? big - 1n : big) > U64_MAX ? U64_MAX : node.op === '<' ? big - 1n : big;
      if (max < 0n) out.eventIds = [];
      else if (out.idMax === undefined || BigInt(out.idMax) > max) out.idMax = max.toString();
    }
    out.indexed.push(node.field);
    return true;
  }
  return false;
}

/** `f = v`, `f IN [..]`, or an OR of those on one key field: the values that can match. */
function equalitySet(node: FilterExpr, kind: FilterKind): { role: FieldRole; field: string; values: string[] } | undefined {
  if (node.kind === 'or') {
    const parts = node.items.map((item) => equalitySet(item, kind));
    const first = parts[0];
    if (first === undefined || parts.some((p) => p === undefined || p.role !== first.role)) return undefined;
    return { role: first.role, field: first.field, values: distinct(parts.flatMap((p) => (p as { values: string[] }).values)) };
  }
  if (node.kind === 'compare' && node.op !== '=') return undefined;
  if (node.kind !== 'compare' && node.kind !== 'in') return undefined;
  const role = fieldRole(kind, node.field);
  if (role === undefined || role === 'time') return undefined;
  const literals: [FilterValue, string | undefined][] =
    node.kind === 'compare' ? [[node.value, node.text]] : node.values.map((v, i): [FilterValue, string | undefined] => [v, node.texts?.[i] ?? undefined]);
  const values = literals.map(([value, text]) => keyText(role, value, text)).filter((v): v is string => v !== undefined);
  return { role, field: node.field, values: distinct(values) };
}

/**
 * The stored key text a literal can equal, under the comparison rules of filter-values.ts: a
 * string as it is; an integer as its digits (a stored "42" equals 42); anything else matches no
 * key (undefined).
 */
function keyText(role: FieldRole, value: FilterValue, text: string | undefined): string | undefined {
  if (role === 'event_id') {
    // `= 3882…304.0` is that id; a negative or fractional number equals none.
    const lit = eventIdOrderLiteral(value, text);
    return lit === undefined || lit === '-' || lit.endsWith('+') ? undefined : lit;
  }
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value === 'boolean') return String(value);
  return undefined;
}

function distinct(values: string[]): string[] {
  return [...new Set(values)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** What `explain=true` adds to a list answer: the plan, and what this request read. */
export interface QueryExplain {
  /** `index_range`: key ranges of an index; `index_lookup`: point lookups; `full_scan`: the whole scope in key order. */
  plan: 'index_range' | 'index_lookup' | 'full_scan';
  /** The database read (and its key order). */
  index: string;
  /** The key ranges (or keys) read, as a person reads them. */
  ranges: string[];
  /** The order of the answer. */
  order: string;
  /** Filter fields the ranges serve, and those evaluated on every record read. */
  indexed_fields: string[];
  unindexed_fields: string[];
  /** `index`: the answer comes in the plan's key order; `top_k`: the scope is read whole and sorted in memory. */
  sort: 'none' | 'index' | 'top_k';
  /** Index entries (or keys) visited, and records (events, aggregate heads) read and decoded. */
  index_entries_read: number;
  records_read: number;
  /** Records read that the filter rejected: in this request, and in the whole listing so far. */
  rows_rejected: number;
  rows_rejected_listing: number;
  /** The `[query] max_scan` bound on rows_rejected_listing; null when the listing is not bounded by it. */
  max_scan: number | null;
  /** Filter fields that none of the records read has (a misspelt field matches nothing, silently). */
  missing_fields: string[];
  notes: string[];
}
