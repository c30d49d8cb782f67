/**
 * How a filter literal meets a stored value (reference §7.3, issue 14 item 2). The original reads
 * every stored value through `parse_state_value`, so `score > 40` matches a stored "42"; this port
 * keeps JSON types, so it coerces at the comparison instead, in one direction only, as the
 * original's coercion does: a stored string that spells a JSON number compares as that number with
 * a number literal, and "true"/"false" as booleans with a boolean literal. A string literal is never
 * turned into a number (`score = "42"` does not match a stored 42, in the original either).
 *
 * Timestamp fields (`created_at`, `updated_at` on aggregates, `created_at` on events) compare as
 * times: the literal may be epoch milliseconds or an ISO 8601 string. Event ids compare as numbers
 * (Snowflake order), exactly, even beyond 2^53.
 */
import { DbxError } from './errors.js';
import type { FilterValue } from './filter-lexer.js';
import type { JsonValue } from './types.js';

export type FilterKind = 'aggregate' | 'event';

/** What a built-in field means to comparisons and to the query planner. */
export type FieldRole = 'time' | 'event_id' | 'aggregate_type' | 'aggregate_id' | 'event_type';

const AGGREGATE_ROLES = new Map<string, FieldRole>([
  ['aggregate_type', 'aggregate_type'],
  ['aggregateType', 'aggregate_type'],
  ['aggregate_id', 'aggregate_id'],
  ['aggregateId', 'aggregate_id'],
  ['created_at', 'time'],
  ['createdAt', 'time'],
  ['updated_at', 'time'],
  ['updatedAt', 'time'],
]);

const EVENT_ROLES = new Map<string, FieldRole>([
  ['aggregate_type', 'aggregate_type'],
  ['aggregateType', 'aggregate_type'],
  ['aggregate_id', 'aggregate_id'],
  ['aggregateId', 'aggregate_id'],
  ['event_type', 'event_type'],
  ['eventType', 'event_type'],
  ['created_at', 'time'],
  ['createdAt', 'time'],
  ['metadata.created_at', 'time'],
  ['metadata.createdAt', 'time'],
  ['event_id', 'event_id'],
  ['eventId', 'event_id'],
  ['metadata.event_id', 'event_id'],
  ['metadata.eventId', 'event_id'],
]);

export function fieldRole(kind: FilterKind, field: string): FieldRole | undefined {
  return (kind === 'aggregate' ? AGGREGATE_ROLES : EVENT_ROLES).get(field);
}

/** RFC 8259 number syntax: what the original's JSON parse of a stored string accepts as a number. */
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/** The number a stored value stands for in an ordering or an equality with a number literal. */
export function numberOf(actual: JsonValue): number | undefined {
  if (typeof actual === 'number') return actual;
  if (typeof actual === 'string' && actual.length <= 64 && JSON_NUMBER.test(actual)) return Number(actual);
  return undefined;
}

/** Numbers are equal within f64::EPSILON, as in the original (`0.1 + 0.2 = 0.3`). */
function sameNumber(a: number | undefined, b: number): boolean {
  return a !== undefined && (a === b || Math.abs(a - b) < Number.EPSILON);
}

/** `=` between a stored value and a literal (objects and arrays equal nothing). */
export function coercedEquals(actual: JsonValue, expected: FilterValue): boolean {
  if (actual === expected) return true;
  if (typeof actual === 'number') return typeof expected === 'number' && sameNumber(actual, expected);
  if (typeof actual !== 'string') return false;
  if (typeof expected === 'number') return sameNumber(numberOf(actual), expected);
  if (typeof expected === 'boolean') return actual === (expected ? 'true' : 'false');
  return false;
}

// ISO 8601 as people write it: a date, optionally a time (minutes, seconds, fraction), optionally
// an offset. A time without an offset is UTC (the server's clock is not the caller's).
/** ECMAScript's time range (±8.64e15 ms, ±100,000,000 days): beyond it a time has no date. */
const TIME_MS_MAX = 8_640_000_000_000_000;

function inTimeRange(ms: number): number | undefined {
  return Number.isFinite(ms) && Math.abs(ms) <= TIME_MS_MAX ? ms : undefined;
}

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?$/;

/**
 * A time literal as epoch milliseconds: a number is epoch ms, a string is ISO 8601 (or epoch ms in
 * digits); `null` stays null (an unset timestamp). Anything else is undefined: not a time.
 */
export function timeLiteral(value: FilterValue): number | null | undefined {
  if (value === null) return null;
  if (typeof value === 'number') return inTimeRange(value);
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (/^-?\d{1,16}$/.test(text)) return inTimeRange(Number(text));
  const m = ISO_TIME.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', offset] = m;
  const ms = Number(frac.padEnd(3, '0').slice(0, 3));
  // Digits beyond the millisecond stay, as a fraction of one: stored times are whole ms, so
  // `>= …04.7779Z` must not match .777 (the plan rounds each bound the way its operator needs).
  const subMs = frac.length > 3 ? Number(`0.${frac.slice(3)}`) : 0;
  const utc = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms) + subMs;
  // Date.UTC rolls 2024-02-30 over to March: a calendar check refuses it instead.
  const check = new Date(utc);
  if (check.getUTCMonth() !== Number(mo) - 1 || check.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  if (offset === undefined || offset === 'Z' || offset === 'z') return utc;
  const sign = offset.startsWith('-') ? -1 : 1;
  const digits = offset.slice(1).replace(':', '');
  const minutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0');
  return utc - sign * minutes * 60_000;
}

/** The canonical decimal form of an event-id literal (a digit string, or an integer number's text). */
export function eventIdLiteral(value: FilterValue, text?: string): string | undefined {
  const raw = text ?? (typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : typeof value === 'string' ? value.trim() : undefined);
  // Any run of digits: one longer than an id (a u64) still orders against every id.
  if (raw === undefined || !/^\d+$/.test(raw)) return undefined;
  return raw.replace(/^0+(?=\d)/, '');
}

/**
 * An event id literal for comparison: a digit run as itself (exact beyond 2^53); a number literal
 * that is not one (negative, fractional) placed against the ids — '-' below them all, 'N+' between
 * N and N + 1 — so `event_id > -1` or `> 1.5` compares numerically like any number.
 */
export function eventIdOrderLiteral(value: FilterValue, text: string | undefined): string | undefined {
  const exact = eventIdLiteral(value, text);
  if (exact !== undefined || typeof value !== 'number' || !Number.isFinite(value)) return exact;
  const decimal = /^(-?)(\d+)(?:\.(\d*))?$/.exec(text ?? (Number.isInteger(value) ? value.toFixed(0) : String(value)));
  if (!decimal) {
    // An exponent form: as exact as a double is.
    if (value < 0) return '-';
    const whole = BigInt(Math.floor(value)).toString();
    return Number.isInteger(value) ? whole : `${whole}+`;
  }
  const [, minus, whole, fraction = ''] = decimal as unknown as [string, string, string, string?];
  const nonZeroFraction = /[1-9]/.test(fraction);
  const zero = !/[1-9]/.test(whole) && !nonZeroFraction;
  if (minus && !zero) return '-';
  const int = whole.replace(/^0+(?=\d)/, '');
  return nonZeroFraction ? `${int}+` : int;
}

/** The 400 for a time field compared with something that is not a time, said at parse time. */
export function notATime(field: string, value: FilterValue): DbxError {
  return new DbxError(
    'invalid_input',
    `invalid filter expression: ${field} compares with a time: an ISO 8601 string ("2024-05-01", "2024-05-01T12:00:00Z") or epoch milliseconds, not ${JSON.stringify(value)}`,
  );
}
