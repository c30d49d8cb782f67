/**
 * toJsonSchema: one JSON Schema 2020-12 document per declared event type, accepting what the
 * server's validatePayload accepts wherever JSON Schema can say so. The server normalises ("42" is a
 * valid integer and is stored as 42), so a column's schema accepts both the JSON type and the text
 * forms the server converts (`anyOf`). Exactly expressed: the type shapes (integer/float/boolean/
 * decimal(p,s) text, RFC 3339 and date shapes, padded base64), text length (code points), contains,
 * does_not_contain, regexes without inline flags, the case formats, country_code, event field lists,
 * field locks and `locked`. Not expressible, so the document is looser than the server (each such
 * column says so in `$comment`): range on text forms and on dates/timestamps/decimal text; decimal
 * scale/precision of JSON numbers; integer text beyond i64; float text overflowing to infinity;
 * binary length (decoded bytes); Luhn (credit_card), the coordinate ranges of wgs_84; email/url are
 * the standard `email`/`uri` formats, close to but not the same predicates as the server's.
 */
import type { AggregateSchema, ColumnSettings } from './api.js';
import { COUNTRY_CODES, FORMAT_PATTERNS } from './formats.js';
import { parseColumnType } from './model.js';
import { compileSchemaRegex } from './regex.js';

type Json = Record<string, unknown>;

const DRAFT = 'https://json-schema.org/draft/2020-12/schema';
const INTEGER_TEXT = '^\\s*[+-]?\\d+\\s*$';
const FLOAT_TEXT = '^\\s*[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?\\s*$';
const BOOLEAN_TEXT = '^\\s*(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0|[Yy][Ee][Ss]|[Nn][Oo]|[Oo][Nn]|[Oo][Ff][Ff])\\s*$';
const TIMESTAMP_TEXT = '^\\d{4}-\\d{2}-\\d{2}[Tt ]\\d{2}:\\d{2}:\\d{2}(?:\\.\\d{1,9})?(?:[Zz]|[+-]\\d{2}:\\d{2})$';
const DATE_TEXT = '^\\d{4}-\\d{2}-\\d{2}$';
const BASE64_TEXT = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$';
const CREDIT_CARD_SHAPE = '^[\\d -]+$';
const WGS84_SHAPE = '^\\s*[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?\\s*,\\s*[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?\\s*$';

export function toJsonSchema(schema: AggregateSchema): Record<string, object> {
  const columns = Object.keys(schema.column_types);
  const out: Record<string, object> = {};
  for (const [eventType, event] of Object.entries(schema.events)) {
    const properties: Json = {};
    const required = new Set<string>();
    for (const name of columns) {
      const settings = schema.column_types[name] as ColumnSettings;
      const column = columnSchema(settings);
      // A top-level null removes the key (DESIGN §3 merge), so it passes unless the column is required.
      if (settings.required === true) {
        required.add(name);
        properties[name] = settings.type === 'json' ? { allOf: [column, { not: { type: 'null' } }] } : column;
      } else {
        properties[name] = { anyOf: [{ type: 'null' }, column] };
      }
    }
    for (const f of event.fields) {
      required.add(f);
      if (!(f in properties)) properties[f] = true;
    }
    for (const lock of schema.field_locks) properties[lock] = false;
    const doc: Json = {
      $schema: DRAFT,
      title: `${schema.aggregate}.${eventType}`,
      type: 'object',
      properties,
    };
    if (event.notes !== undefined) doc['description'] = event.notes;
    if (required.size > 0) doc['required'] = [...required].sort();
    if (event.fields.length > 0) doc['additionalProperties'] = false;
    if (schema.locked) {
      doc['not'] = {};
      doc['$comment'] = `aggregate ${schema.aggregate} is locked for updates: every payload is refused`;
    }
    out[eventType] = doc;
  }
  return out;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, (c) => '\\' + c);
}

function columnSchema(settings: ColumnSettings): Json {
  const type = parseColumnType(settings.type);
  const loose: string[] = [];
  let schema: Json;
  const range = settings.range ?? {};
  const numericBounds = (target: Json): Json => {
    if (range.min !== undefined) target['minimum'] = Number(range.min);
    if (range.max !== undefined) target['maximum'] = Number(range.max);
    return target;
  };
  switch (type?.name) {
    case 'integer': {
      const n = numericBounds({ type: 'integer' });
      if (n['minimum'] === undefined) n['minimum'] = Number.MIN_SAFE_INTEGER;
      if (n['maximum'] === undefined) n['maximum'] = Number.MAX_SAFE_INTEGER;
      schema = { anyOf: [n, { type: 'string', pattern: INTEGER_TEXT }] };
      loose.push('integer text is normalised to a number; text beyond i64 is refused by the server');
      if (settings.range) loose.push('range is not checked on integer text');
      break;
    }
    case 'float':
      schema = { anyOf: [numericBounds({ type: 'number' }), { type: 'string', pattern: FLOAT_TEXT }] };
      loose.push('float text is normalised to a number');
      if (settings.range) loose.push('range is not checked on float text');
      break;
    case 'decimal': {
      const p = type.precision ?? 1;
      const s = type.scale ?? 0;
      const number: Json = numericBounds({ type: 'number', exclusiveMaximum: 10 ** (p - s), exclusiveMinimum: -(10 ** (p - s)) });
      schema = { anyOf: [number, { type: 'string', pattern: decimalPattern(p, s) }] };
      loose.push(`stored as canonical text with ${s} decimal places; scale and precision of JSON numbers are checked by the server only`);
      if (settings.range) loose.push('range is not checked on decimal text');
      break;
    }
    case 'boolean':
      schema = { anyOf: [{ type: 'boolean' }, { enum: [0, 1] }, { type: 'string', pattern: BOOLEAN_TEXT }] };
      loose.push('0/1 and true/false/yes/no/on/off text are normalised to booleans');
      break;
    case 'text':
      schema = textSchema(settings, loose);
      break;
    case 'timestamp':
      schema = { type: 'string', format: 'date-time', pattern: TIMESTAMP_TEXT };
      loose.push('normalised to UTC `Z`; the server refuses leap seconds and years outside 0000-9999 UTC');
      if (settings.range) loose.push('range is checked by the server only');
      break;
    case 'date':
      schema = { type: 'string', format: 'date', pattern: DATE_TEXT };
      if (settings.range) loose.push('range is checked by the server only');
      break;
    case 'binary':
      schema = { type: 'string', contentEncoding: 'base64', pattern: BASE64_TEXT };
      if (settings.length) loose.push('length (decoded bytes) is checked by the server only');
      break;
    case 'object':
      schema = { type: 'object', ...nested(settings) };
      break;
    default: // json
      schema = settings.properties ? nested(settings) : {};
  }
  if (loose.length > 0) schema['$comment'] = loose.join('; ');
  return schema;
}

function nested(settings: ColumnSettings): Json {
  const properties: Json = {};
  const required: string[] = [];
  for (const [name, child] of Object.entries(settings.properties ?? {})) {
    properties[name] = columnSchema(child);
    if (child.required === true) required.push(name);
  }
  return required.length > 0 ? { properties, required } : { properties };
}

function textSchema(settings: ColumnSettings, loose: string[]): Json {
  const schema: Json = { type: 'string' };
  const all: Json[] = [];
  if (settings.length?.min !== undefined) schema['minLength'] = settings.length.min;
  if (settings.length?.max !== undefined) schema['maxLength'] = settings.length.max;
  for (const needle of settings.contains ?? []) all.push({ pattern: escapeRegex(needle) });
  for (const needle of settings.does_not_contain ?? []) all.push({ not: { pattern: escapeRegex(needle) } });
  for (const pattern of settings.regex ?? []) {
    const compiled = compileSchemaRegex(pattern);
    if (compiled.ok && compiled.regex.flags === 'u') all.push({ pattern: compiled.regex.source });
    else loose.push(`regex ${pattern} uses inline flags and is checked by the server only`);
  }
  switch (settings.format) {
    case undefined:
      break;
    case 'email':
      schema['format'] = 'email';
      loose.push('email follows the Rust validator crate on the server (close to, not the same as, the `email` format)');
      break;
    case 'url':
      schema['format'] = 'uri';
      loose.push('url is an absolute WHATWG URL on the server (close to, not the same as, the `uri` format)');
      break;
    case 'iso_8601':
      schema['format'] = 'date-time';
      all.push({ pattern: TIMESTAMP_TEXT });
      break;
    case 'country_code':
      schema['enum'] = [...COUNTRY_CODES];
      break;
    case 'credit_card':
      all.push({ pattern: CREDIT_CARD_SHAPE });
      loose.push('credit_card: 12-19 digits and the Luhn check are verified by the server only');
      break;
    case 'wgs_84':
      all.push({ pattern: WGS84_SHAPE });
      loose.push('wgs_84: latitude/longitude ranges are checked by the server only');
      break;
    default:
      all.push({ pattern: FORMAT_PATTERNS[settings.format] as string });
  }
  if (all.length === 1) Object.assign(schema, all[0]);
  else if (all.length > 1) schema['allOf'] = all;
  return schema;
}

/**
 * decimal(p,s) text exactly as the server takes it: at most s fraction digits, at most p − s
 * significant integer digits (leading zeros free), at least one digit.
 */
function decimalPattern(p: number, s: number): string {
  const k = p - s;
  const int = k > 0 ? `(?:0*[1-9]\\d{0,${k - 1}}|0*)` : '0*';
  return `^\\s*[+-]?(?=\\.?\\d)${int}(?:\\.\\d{0,${s}})?\\s*$`;
}
