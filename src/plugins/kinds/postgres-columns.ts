/**
 * The postgres read model's typed columns: schema column types → SQL types, the types a table
 * actually has (information_schema) → value converters, and safe identifier quoting.
 *
 * Values are converted by the column's type in the database, not by the schema's: a schema that
 * later changes a field's type cannot change an existing column (ADD COLUMN IF NOT EXISTS keeps it),
 * and writing the new type into the old column would fail every delivery of that type. A value the
 * column cannot hold becomes NULL there (the `state` jsonb column keeps the truth) instead of
 * failing the job, which would only retry the same value until the job is dead.
 */
import { parseColumnType } from '../../core/index.js';

/** PostgreSQL's identifier limit (NAMEDATALEN − 1); longer names are truncated silently, so refuse. */
export const PG_IDENTIFIER_BYTES_MAX = 63;

export function quoteIdent(name: string): string {
  if (name.length === 0 || name.includes('\u0000') || Buffer.byteLength(name, 'utf8') > PG_IDENTIFIER_BYTES_MAX) {
    throw new Error(`postgres: '${name.slice(0, 80)}' cannot be a PostgreSQL identifier (1–${PG_IDENTIFIER_BYTES_MAX} bytes, no NUL)`);
  }
  return `"${name.replace(/"/g, '""')}"`;
}

export function isValidIdent(name: string): boolean {
  return name.length > 0 && !name.includes('\u0000') && Buffer.byteLength(name, 'utf8') <= PG_IDENTIFIER_BYTES_MAX;
}

export type ColumnKind = 'bigint' | 'numeric' | 'float' | 'boolean' | 'timestamp' | 'date' | 'text' | 'json' | 'binary';

export interface PgColumn {
  kind: ColumnKind;
  /** SQL type text as we would create it (for messages and ADD COLUMN). */
  sql: string;
  precision?: number;
  scale?: number;
}

/** A schema column type (`integer`, `decimal(10,2)`, aliases) → the SQL column to create. */
export function columnForSchemaType(type: string): PgColumn | undefined {
  const parsed = parseColumnType(type);
  if (parsed === undefined) return undefined;
  switch (parsed.name) {
    case 'integer':
      return { kind: 'bigint', sql: 'bigint' };
    case 'decimal': {
      const { precision, scale } = parsed;
      // PostgreSQL caps numeric precision at 1000; the schema allows up to 255.
      return { kind: 'numeric', sql: `numeric(${precision},${scale})`, precision, scale };
    }
    case 'float':
      return { kind: 'float', sql: 'double precision' };
    case 'boolean':
      return { kind: 'boolean', sql: 'boolean' };
    case 'timestamp':
      return { kind: 'timestamp', sql: 'timestamptz' };
    case 'date':
      return { kind: 'date', sql: 'date' };
    case 'text':
      return { kind: 'text', sql: 'text' };
    case 'json':
    case 'object':
      return { kind: 'json', sql: 'jsonb' };
    case 'binary':
      return { kind: 'binary', sql: 'bytea' };
  }
}

/** A row of information_schema.columns → the converter kind, or undefined for types we do not write. */
export function columnFromCatalog(dataType: string, precision: number | null, scale: number | null): PgColumn | undefined {
  switch (dataType) {
    case 'bigint':
    case 'integer':
    case 'smallint':
      return { kind: 'bigint', sql: dataType };
    case 'numeric':
      return precision === null ? { kind: 'numeric', sql: 'numeric' } : { kind: 'numeric', sql: `numeric(${precision},${scale ?? 0})`, precision, scale: scale ?? 0 };
    case 'double precision':
    case 'real':
      return { kind: 'float', sql: dataType };
    case 'boolean':
      return { kind: 'boolean', sql: dataType };
    case 'timestamp with time zone':
    case 'timestamp without time zone':
      return { kind: 'timestamp', sql: dataType };
    case 'date':
      return { kind: 'date', sql: dataType };
    case 'text':
    case 'character varying':
    case 'character':
      return { kind: 'text', sql: dataType };
    case 'jsonb':
    case 'json':
      return { kind: 'json', sql: dataType };
    case 'bytea':
      return { kind: 'binary', sql: dataType };
    default:
      return undefined;
  }
}

/** Same storage class: what decides whether a schema type change needs a warning. */
export function sameKind(a: PgColumn, b: PgColumn): boolean {
  return a.kind === b.kind && (a.kind !== 'numeric' || (a.precision === b.precision && a.scale === b.scale));
}

export const UNCONVERTIBLE: unique symbol = Symbol('postgres.unconvertible');
type Param = string | number | boolean | Buffer | null;

const I64_MAX = 9_223_372_036_854_775_807n;
const INTEGER_TEXT = /^[+-]?\d{1,20}$/;
const DECIMAL_TEXT = /^[+-]?(?:(\d+)(?:\.\d*)?|\.\d+)$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A state value → the query parameter for a column of `column`'s type; null/absent → NULL. */
export function toParam(value: unknown, column: PgColumn): Param | typeof UNCONVERTIBLE {
  if (value === undefined || value === null) return null;
  switch (column.kind) {
    case 'bigint': {
      if (typeof value === 'number') return Number.isSafeInteger(value) ? value : UNCONVERTIBLE;
      if (typeof value !== 'string' || !INTEGER_TEXT.test(value.trim())) return UNCONVERTIBLE;
      const n = BigInt(value.trim());
      return n <= I64_MAX && n >= -I64_MAX - 1n ? n.toString() : UNCONVERTIBLE;
    }
    case 'numeric': {
      const text = typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : typeof value === 'string' ? value.trim() : '';
      if (typeof value === 'number' && /e/i.test(text)) return Math.abs(value) < 1 ? text : UNCONVERTIBLE;
      const m = DECIMAL_TEXT.exec(text);
      if (m === null) return UNCONVERTIBLE;
      if (column.precision !== undefined) {
        const integerDigits = (m[1] ?? '').replace(/^0+/, '').length;
        if (integerDigits > column.precision - (column.scale ?? 0)) return UNCONVERTIBLE; // "numeric field overflow"
      }
      return text;
    }
    case 'float': {
      const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
      return Number.isFinite(n) ? n : UNCONVERTIBLE;
    }
    case 'boolean':
      return typeof value === 'boolean' ? value : UNCONVERTIBLE;
    case 'timestamp':
      return typeof value === 'string' && RFC3339.test(value) && Number.isFinite(Date.parse(value)) ? value : UNCONVERTIBLE;
    case 'date': {
      const m = typeof value === 'string' ? DATE.exec(value) : null;
      if (m === null) return UNCONVERTIBLE;
      const day = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
      return day.getUTCDate() === Number(m[3]) && day.getUTCMonth() === Number(m[2]) - 1 ? (value as string) : UNCONVERTIBLE;
    }
    case 'text': {
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      return text.includes('\u0000') ? UNCONVERTIBLE : text; // PostgreSQL text cannot hold NUL
    }
    case 'json': {
      const text = JSON.stringify(value);
      return text.includes('\\u0000') ? UNCONVERTIBLE : text; // nor can jsonb strings
    }
    case 'binary':
      return typeof value === 'string' && BASE64.test(value) ? Buffer.from(value, 'base64') : UNCONVERTIBLE;
  }
}
