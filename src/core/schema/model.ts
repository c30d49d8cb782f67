/**
 * parseAggregateSchema: the original's schema JSON (reference §6.1) → the canonical AggregateSchema.
 * Everything that would make every later write fail (a bad type, regex or range bound, a rule the
 * column's type cannot carry, an unknown format) is refused here, at save time, with one
 * `validation_failed` whose details list every problem — not at the first write.
 *
 * Canonical output: lower-case type names (`decimal(p,s)` without spaces); every column as an object
 * (`{ type, …rules }`, a bare type string on input is the same column with no rules); empty rule
 * lists and `required: false` left out; name lists sorted (code point order, as Rust sorts Strings)
 * and deduped; maps (`column_types`, `properties`, `events`) in sorted key order, which is also the
 * order columns are validated in (the original's BTreeMap). Unknown keys are refused rather than
 * dropped, so a typo such as `requried` cannot silently disable a rule; the legacy `must_match` key
 * is accepted and ignored, as in the original.
 */
import { z } from 'zod';
import { DbxError } from '../errors.js';
import { aggregateTypeSchema, eventTypeSchema } from '../validation.js';
import type { AggregateSchema, ColumnSettings, ColumnTypeName, EventSchema, FormatName } from './api.js';
import { FORMAT_NAMES, isFormatName } from './formats.js';
import { compileSchemaRegex } from './regex.js';
import {
  codePointLength,
  compareCodePoints,
  compareDecimal,
  compareInstant,
  formatInstant,
  isValidDate,
  parseDecimalText,
  parseFloatText,
  parseIntegerText,
  parseTimestamp,
} from './values.js';

/** A save-time problem; `field` is the path inside the schema document (`column_types.price.range`). */
export interface SchemaProblem {
  field: string;
  rule: string;
  message: string;
}

export interface ParsedColumnType {
  name: ColumnTypeName;
  precision?: number;
  scale?: number;
}

/** The original's event-note limit (`schema annotate`: "note cannot exceed 128 characters"). */
export const EVENT_NOTE_CHARS_MAX = 128;

const TYPE_ALIASES: Readonly<Record<string, ColumnTypeName>> = {
  integer: 'integer',
  int: 'integer',
  float: 'float',
  double: 'float',
  boolean: 'boolean',
  bool: 'boolean',
  text: 'text',
  string: 'text',
  timestamp: 'timestamp',
  date: 'date',
  json: 'json',
  binary: 'binary',
  bytes: 'binary',
  object: 'object',
};
const DECIMAL_TYPE = /^(?:decimal|numeric)\s*\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\)$/;

/**
 * A type name (case-insensitive, aliases, `decimal(p,s)`/`numeric(p,s)` with spaces) → its parts.
 * p and s are u8 as in the original; additionally p ≥ 1 and s ≤ p, since any other pair can hold no
 * value at all.
 */
export function parseColumnType(text: string): ParsedColumnType | undefined {
  const t = text.trim().toLowerCase();
  const alias = TYPE_ALIASES[t];
  if (alias !== undefined) return { name: alias };
  const m = DECIMAL_TYPE.exec(t);
  if (m === null) return undefined;
  const precision = Number(m[1]);
  const scale = Number(m[2]);
  if (precision < 1 || precision > 255 || scale > precision) return undefined;
  return { name: 'decimal', precision, scale };
}

export function formatColumnType(type: ParsedColumnType): string {
  return type.name === 'decimal' ? `decimal(${type.precision},${type.scale})` : type.name;
}

/** Canonical text of a column type (`NUMERIC( 8, 2 )` → `decimal(8,2)`); throws validation_failed. */
export function canonicalColumnType(text: string): string {
  const parsed = parseColumnType(text);
  if (parsed === undefined) {
    const problem = { field: 'type', rule: 'type', message: `invalid column type '${text}'` };
    throw new DbxError('validation_failed', problem.message, [problem]);
  }
  return formatColumnType(parsed);
}

const nameList = z.array(z.string().min(1, 'names cannot be empty')).nullish();

const eventShape = z.strictObject({
  fields: nameList,
  notes: z.string().nullish(),
});

const topShape = z.strictObject({
  aggregate: aggregateTypeSchema,
  snapshot_threshold: z.int().min(0).nullish(),
  locked: z.boolean().nullish(),
  field_locks: nameList,
  hidden: z.boolean().nullish(),
  hidden_fields: nameList,
  column_types: z.record(z.string(), z.unknown()).nullish(),
  events: z.record(z.string(), z.unknown()).nullish(),
  created_at: z.string().nullish(),
  updated_at: z.string().nullish(),
});

const bound = z.union([z.string(), z.number()]).nullish();
const columnShape = z.strictObject({
  type: z.string(),
  required: z.boolean().nullish(),
  contains: z.array(z.string()).nullish(),
  does_not_contain: z.array(z.string()).nullish(),
  regex: z.union([z.string(), z.array(z.string())]).nullish(),
  length: z.strictObject({ min: z.int().min(0).nullish(), max: z.int().min(0).nullish() }).nullish(),
  range: z.strictObject({ min: bound, max: bound }).nullish(),
  format: z.string().nullish(),
  properties: z.record(z.string(), z.unknown()).nullish(),
  must_match: z.unknown().optional(), // legacy, ignored
});

function zodProblems(error: z.ZodError, prefix: string): SchemaProblem[] {
  return error.issues.map((issue) => ({
    field: [prefix, ...issue.path.map(String)].filter((s) => s !== '').join('.'),
    rule: 'shape',
    message: issue.message,
  }));
}

const sortedUnique = (names: readonly string[] | null | undefined): string[] =>
  [...new Set(names ?? [])].sort(compareCodePoints);

const sortedKeys = (record: Record<string, unknown>): string[] => Object.keys(record).sort(compareCodePoints);

/**
 * Parses and checks a schema document; throws DbxError('validation_failed', …, details: every
 * problem). `now` (ISO text) fills `created_at`/`updated_at` when absent; timestamps are normalised
 * to UTC `Z`.
 */
export function parseAggregateSchema(input: unknown, now: string = new Date().toISOString()): AggregateSchema {
  const problems: SchemaProblem[] = [];
  const top = topShape.safeParse(input);
  if (!top.success) problems.push(...zodProblems(top.error, ''));
  // Walk the columns and events even when the top level has problems, so one answer lists them all.
  const raw = (top.success ? top.data : isRecord(input) ? input : {}) as Record<string, unknown>;
  const columnsIn = isRecord(raw['column_types']) ? raw['column_types'] : {};
  const eventsIn = isRecord(raw['events']) ? raw['events'] : {};
  const column_types = parseColumns(columnsIn, 'column_types', problems);
  const events = parseEvents(eventsIn, problems);
  const created_at = parseStamp(raw['created_at'], now, 'created_at', problems);
  const updated_at = parseStamp(raw['updated_at'], now, 'updated_at', problems);
  if (!top.success || problems.length > 0) throw schemaError(problems);
  const data = top.data;
  return {
    aggregate: data.aggregate,
    snapshot_threshold: data.snapshot_threshold ?? null,
    locked: data.locked ?? false,
    field_locks: sortedUnique(data.field_locks),
    hidden: data.hidden ?? false,
    hidden_fields: sortedUnique(data.hidden_fields),
    column_types,
    events,
    created_at,
    updated_at,
  };
}

export function schemaError(problems: SchemaProblem[]): DbxError {
  const first = problems[0];
  const message = first === undefined ? 'invalid schema' : `invalid schema: ${first.field ? first.field + ': ' : ''}${first.message}`;
  return new DbxError('validation_failed', problems.length > 1 ? `${message} (and ${problems.length - 1} more)` : message, problems);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseStamp(value: unknown, now: string, field: string, problems: SchemaProblem[]): string {
  const text = typeof value === 'string' ? value : now;
  const instant = parseTimestamp(text);
  if (instant === undefined) {
    if (typeof value === 'string') problems.push({ field, rule: 'shape', message: `${field} must be an RFC3339 timestamp` });
    return text;
  }
  return formatInstant(instant);
}

function parseEvents(input: Record<string, unknown>, problems: SchemaProblem[]): Record<string, EventSchema> {
  const out: Record<string, EventSchema> = {};
  for (const name of sortedKeys(input)) {
    const path = `events.${name}`;
    const nameCheck = eventTypeSchema.safeParse(name);
    if (!nameCheck.success) problems.push(...zodProblems(nameCheck.error, path));
    const parsed = eventShape.safeParse(input[name] ?? {});
    if (!parsed.success) {
      problems.push(...zodProblems(parsed.error, path));
      continue;
    }
    const event: EventSchema = { fields: sortedUnique(parsed.data.fields) };
    const notes = parsed.data.notes;
    if (notes !== null && notes !== undefined) {
      if (codePointLength(notes) > EVENT_NOTE_CHARS_MAX) {
        problems.push({ field: `${path}.notes`, rule: 'length', message: `note cannot exceed ${EVENT_NOTE_CHARS_MAX} characters` });
      }
      event.notes = notes;
    }
    out[name] = event;
  }
  return out;
}

/** Object columns nest at most this deep: validation and the JSON Schema export walk them recursively. */
export const COLUMN_NESTING_MAX = 32;

function parseColumns(input: Record<string, unknown>, prefix: string, problems: SchemaProblem[], level = 1): Record<string, ColumnSettings> {
  const out: Record<string, ColumnSettings> = {};
  if (level > COLUMN_NESTING_MAX) {
    problems.push({ field: prefix, rule: 'properties', message: `object columns nest at most ${COLUMN_NESTING_MAX} levels deep` });
    return out;
  }
  for (const name of sortedKeys(input)) {
    const path = `${prefix}.${name}`;
    if (name === '') problems.push({ field: path, rule: 'shape', message: 'column names cannot be empty' });
    const column = parseColumn(input[name], path, problems, level);
    if (column !== undefined) out[name] = column;
  }
  return out;
}

const TEXT_RULES = ['contains', 'does_not_contain', 'regex', 'format'] as const;
const LENGTH_TYPES: ReadonlySet<ColumnTypeName> = new Set(['text', 'binary']);
const RANGE_TYPES: ReadonlySet<ColumnTypeName> = new Set(['integer', 'float', 'decimal', 'timestamp', 'date']);

function parseColumn(value: unknown, path: string, problems: SchemaProblem[], level: number): ColumnSettings | undefined {
  const shaped = columnShape.safeParse(typeof value === 'string' ? { type: value } : value);
  if (!shaped.success) {
    problems.push(...zodProblems(shaped.error, path));
    return undefined;
  }
  const data = shaped.data;
  const type = parseColumnType(data.type);
  if (type === undefined) {
    problems.push({ field: `${path}.type`, rule: 'type', message: `invalid column type '${data.type}'` });
    return undefined;
  }
  const column: ColumnSettings = { type: formatColumnType(type) };
  if (data.required === true) column.required = true;
  const regexes = typeof data.regex === 'string' ? [data.regex] : (data.regex ?? []);
  const lists = { contains: data.contains ?? [], does_not_contain: data.does_not_contain ?? [], regex: regexes };
  for (const rule of ['contains', 'does_not_contain', 'regex'] as const) if (lists[rule].length > 0) column[rule] = [...lists[rule]];
  regexes.forEach((pattern, i) => {
    const compiled = compileSchemaRegex(pattern);
    if (!compiled.ok) problems.push({ field: `${path}.regex.${i}`, rule: 'regex', message: `has invalid regex '${pattern}': ${compiled.message}` });
  });
  if (data.format !== null && data.format !== undefined) {
    const format = data.format.trim().toLowerCase();
    if (isFormatName(format)) column.format = format as FormatName;
    else problems.push({ field: `${path}.format`, rule: 'format', message: `unknown format '${data.format}' (one of ${FORMAT_NAMES.join(', ')})` });
  }
  if (type.name !== 'text') {
    for (const rule of TEXT_RULES) {
      const set = rule === 'format' ? data.format != null : lists[rule].length > 0;
      if (set) problems.push({ field: `${path}.${rule}`, rule, message: `${rule} applies to text columns only, not ${column.type}` });
    }
  }
  if (data.length != null) parseLength(data.length, type, column, path, problems);
  if (data.range != null) parseRange(data.range, type, column, path, problems);
  if (data.properties != null) {
    if (type.name !== 'object' && type.name !== 'json') {
      problems.push({ field: `${path}.properties`, rule: 'properties', message: 'cannot define nested properties on non-object type' });
    }
    const properties = parseColumns(data.properties, `${path}.properties`, problems, level + 1);
    if (Object.keys(properties).length > 0) column.properties = properties;
  }
  return column;
}

function parseLength(
  length: { min?: number | null | undefined; max?: number | null | undefined },
  type: ParsedColumnType,
  column: ColumnSettings,
  path: string,
  problems: SchemaProblem[],
): void {
  const out: { min?: number; max?: number } = {};
  if (length.min != null) out.min = length.min;
  if (length.max != null) out.max = length.max;
  if (!LENGTH_TYPES.has(type.name)) {
    problems.push({ field: `${path}.length`, rule: 'length', message: `${column.type} does not support length validation` });
  } else if (out.min !== undefined && out.max !== undefined && out.min > out.max) {
    problems.push({ field: `${path}.length`, rule: 'length', message: `length minimum ${out.min} exceeds maximum ${out.max}` });
  }
  if (out.min !== undefined || out.max !== undefined) column.length = out;
}

const BOUND_KIND: Partial<Record<ColumnTypeName, string>> = {
  integer: 'a valid integer',
  float: 'a valid float',
  decimal: 'a valid decimal',
  timestamp: 'a valid RFC3339 timestamp',
  date: 'a valid date (YYYY-MM-DD)',
};

/** Parses a range bound in the column's type; returns a comparator key, or undefined. */
export function parseBound(text: string, type: ColumnTypeName): unknown {
  switch (type) {
    case 'integer': {
      const v = parseIntegerText(text);
      return v === undefined || v === 'range' ? undefined : BigInt(v);
    }
    case 'float':
      return parseFloatText(text);
    case 'decimal':
      return parseDecimalText(text);
    case 'timestamp':
      return parseTimestamp(text.trim());
    case 'date':
      return isValidDate(text.trim()) ? text.trim() : undefined;
    default:
      return undefined;
  }
}

export function compareBounds(a: unknown, b: unknown, type: ColumnTypeName): number {
  if (type === 'decimal') return compareDecimal(a as never, b as never);
  if (type === 'timestamp') return compareInstant(a as never, b as never);
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

function parseRange(
  range: { min?: string | number | null | undefined; max?: string | number | null | undefined },
  type: ParsedColumnType,
  column: ColumnSettings,
  path: string,
  problems: SchemaProblem[],
): void {
  const out: { min?: string; max?: string } = {};
  if (range.min != null) out.min = String(range.min);
  if (range.max != null) out.max = String(range.max);
  if (out.min !== undefined || out.max !== undefined) column.range = out;
  if (!RANGE_TYPES.has(type.name)) {
    problems.push({ field: `${path}.range`, rule: 'range', message: `${column.type} does not support range validation` });
    return;
  }
  const keys: Record<string, unknown> = {};
  for (const side of ['min', 'max'] as const) {
    const text = out[side];
    if (text === undefined) continue;
    keys[side] = parseBound(text, type.name);
    if (keys[side] === undefined) {
      const word = side === 'min' ? 'minimum' : 'maximum';
      problems.push({ field: `${path}.range.${side}`, rule: 'range', message: `range ${word} '${text}' is not ${BOUND_KIND[type.name]}` });
    }
  }
  if (keys['min'] !== undefined && keys['max'] !== undefined && compareBounds(keys['min'], keys['max'], type.name) > 0) {
    problems.push({ field: `${path}.range`, rule: 'range', message: `range minimum '${out.min}' exceeds maximum '${out.max}'` });
  }
}
