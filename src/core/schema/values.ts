/**
 * Value parsers shared by the save-time checks (model.ts: range bounds) and the compiled validators
 * (compile.ts). Each returns the normalised value or `undefined` when the text does not parse; none
 * throws. They are hand-written (no Date.parse, no regex backtracking over user input of unbounded
 * shape) because they run on every write.
 */

export const I64_MIN = -(2n ** 63n);
export const I64_MAX = 2n ** 63n - 1n;

const INTEGER_TEXT = /^[+-]?\d+$/;
const FLOAT_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const DECIMAL_TEXT = /^([+-]?)(\d*)(?:\.(\d*))?$/;

/**
 * An integer written as text (trimmed, as Rust's `str::parse::<i64>` after `trim`). Within ±(2^53−1)
 * it becomes a JS number; beyond that, but within i64, it stays a canonical decimal string (no sign
 * for positives, no leading zeros) because a JS number would silently round it. `'range'` = outside i64.
 */
export function parseIntegerText(text: string): number | string | 'range' | undefined {
  const t = text.trim();
  if (!INTEGER_TEXT.test(t)) return undefined;
  if (t.length <= 15) return Number(t) + 0; // + 0 turns -0 into 0; 15 chars cannot reach 2^53
  const big = BigInt(t);
  if (big < I64_MIN || big > I64_MAX) return 'range';
  if (big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(big);
  return big.toString();
}

/** A float written as text (Rust f64 syntax minus `inf`/`NaN`: JSON cannot carry them). */
export function parseFloatText(text: string): number | undefined {
  const t = text.trim();
  if (!FLOAT_TEXT.test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n + 0 : undefined;
}

/** A decimal as parsed: digits as written (fraction kept, leading zeros of the integer part dropped). */
export interface DecimalParts {
  negative: boolean;
  int: string; // no leading zeros; "" for zero
  frac: string; // as written, trailing zeros kept (the original counts them against the scale)
}

/** Plain decimal text: `[+-]digits[.digits]` (one side may be empty, not both), trimmed. */
export function parseDecimalText(text: string): DecimalParts | undefined {
  const m = DECIMAL_TEXT.exec(text.trim());
  if (m === null) return undefined;
  const int = m[2] ?? '';
  const frac = m[3] ?? '';
  if (int === '' && frac === '') return undefined;
  return { negative: m[1] === '-', int: int.replace(/^0+/, ''), frac };
}

/** A JS number as a decimal: its shortest round-trip text, exponent expanded (1e-7 → 0.0000001). */
export function decimalFromNumber(n: number): DecimalParts | undefined {
  if (!Number.isFinite(n)) return undefined;
  const text = String(Math.abs(n));
  const e = text.indexOf('e');
  const negative = n < 0;
  if (e < 0) return { ...(parseDecimalText(text) as DecimalParts), negative };
  const mantissa = text.slice(0, e);
  const exp = Number(text.slice(e + 1));
  const [whole = '', fraction = ''] = mantissa.split('.');
  const digits = whole + fraction;
  const point = whole.length + exp; // position of the decimal point within `digits`
  if (point <= 0) return { negative, int: '', frac: '0'.repeat(-point) + digits };
  if (point >= digits.length) return { negative, int: (digits + '0'.repeat(point - digits.length)).replace(/^0+/, ''), frac: '' };
  return { negative, int: digits.slice(0, point).replace(/^0+/, ''), frac: digits.slice(point) };
}

/**
 * Digits the value has once stored at scale s: its significant integer digits plus s (SQL
 * numeric(p,s)). The original counted the digits as written (`0.5` counting its leading zero), but
 * a stored value must pass its own schema again (a patch is validated on the state it produces), and
 * `12.5` is stored as `12.50`: so the precision is counted on the canonical form.
 */
export function decimalPrecision(d: DecimalParts, scale: number): number {
  return d.int.length + scale;
}

/** Canonical text at a fixed scale: `12.5` in decimal(8,2) → `"12.50"`; zero has no sign. */
export function canonicalDecimal(d: DecimalParts, scale: number): string {
  const int = d.int === '' ? '0' : d.int;
  const frac = scale > 0 ? d.frac.padEnd(scale, '0') : '';
  const zero = d.int === '' && /^0*$/.test(frac);
  return (d.negative && !zero ? '-' : '') + int + (frac === '' ? '' : '.' + frac);
}

/** Compares two decimals exactly (−1, 0, 1). */
export function compareDecimal(a: DecimalParts, b: DecimalParts): number {
  const az = isZero(a);
  const bz = isZero(b);
  const sa = az ? 0 : a.negative ? -1 : 1;
  const sb = bz ? 0 : b.negative ? -1 : 1;
  if (sa !== sb) return sa < sb ? -1 : 1;
  if (sa === 0) return 0;
  const mag = compareMagnitude(a, b);
  return sa < 0 ? -mag : mag;
}

function isZero(d: DecimalParts): boolean {
  return d.int === '' && /^0*$/.test(d.frac);
}

function compareMagnitude(a: DecimalParts, b: DecimalParts): number {
  if (a.int.length !== b.int.length) return a.int.length < b.int.length ? -1 : 1;
  if (a.int !== b.int) return a.int < b.int ? -1 : 1;
  const width = Math.max(a.frac.length, b.frac.length);
  const fa = a.frac.padEnd(width, '0');
  const fb = b.frac.padEnd(width, '0');
  return fa === fb ? 0 : fa < fb ? -1 : 1;
}

// ---- dates and timestamps -------------------------------------------------------------------------

const DATE_TEXT = /^(\d{4})-(\d{2})-(\d{2})$/;
// RFC 3339 §5.6 (chrono's parser also takes a lower-case `t`/`z` and a space as the separator).
const TIMESTAMP_TEXT = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(z0: number): [number, number, number] {
  const z = z0 + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  return [era * 400 + yoe + (m <= 2 ? 1 : 0), m, d];
}

/** `YYYY-MM-DD` naming a real calendar day (2023-02-29 is refused). */
export function isValidDate(text: string): boolean {
  const m = DATE_TEXT.exec(text);
  if (m === null) return false;
  const month = Number(m[2]);
  const day = Number(m[3]);
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(Number(m[1]), month);
}

/** An instant: whole seconds since the epoch (exact in a double) and the fraction digits as written. */
export interface Instant {
  seconds: number;
  fraction: string; // "" or 1–9 digits
}

/**
 * RFC 3339 timestamp → instant, or undefined. Refused: impossible dates and times, leap second 60
 * (nothing downstream can represent it), more than 9 fraction digits (below a nanosecond), and
 * instants outside years 0000–9999 in UTC (the canonical form has a 4-digit year).
 */
export function parseTimestamp(text: string): Instant | undefined {
  const m = TIMESTAMP_TEXT.exec(text);
  if (m === null) return undefined;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  const fraction = m[7] ?? '';
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59 || fraction.length > 9) return undefined;
  let offset = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offset = (oh * 60 + om) * 60 * (m[9] === '-' ? -1 : 1);
  }
  const seconds = daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
  if (seconds < MIN_SECONDS || seconds > MAX_SECONDS) return undefined;
  return { seconds, fraction };
}

const MIN_SECONDS = daysFromCivil(0, 1, 1) * 86400;
const MAX_SECONDS = daysFromCivil(9999, 12, 31) * 86400 + 86399;

const pad2 = (n: number): string => (n < 10 ? '0' : '') + n;

/** Canonical UTC text: `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, fraction digits as given. */
export function formatInstant(instant: Instant): string {
  const days = Math.floor(instant.seconds / 86400);
  const rest = instant.seconds - days * 86400;
  const [y, mo, d] = civilFromDays(days);
  const h = Math.floor(rest / 3600);
  const mi = Math.floor((rest % 3600) / 60);
  const s = rest % 60;
  const frac = instant.fraction === '' ? '' : '.' + instant.fraction;
  return `${String(y).padStart(4, '0')}-${pad2(mo)}-${pad2(d)}T${pad2(h)}:${pad2(mi)}:${pad2(s)}${frac}Z`;
}

export function compareInstant(a: Instant, b: Instant): number {
  if (a.seconds !== b.seconds) return a.seconds < b.seconds ? -1 : 1;
  const width = Math.max(a.fraction.length, b.fraction.length);
  const fa = a.fraction.padEnd(width, '0');
  const fb = b.fraction.padEnd(width, '0');
  return fa === fb ? 0 : fa < fb ? -1 : 1;
}

// ---- base64 ---------------------------------------------------------------------------------------

const BASE64_TEXT = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * Decoded byte count of standard padded base64, or -1. Like Rust's `base64::STANDARD`, the unused
 * bits of the last symbol must be zero (`QR==` is refused), so each byte string has one spelling.
 */
export function base64DecodedLength(text: string): number {
  if (text.length % 4 !== 0 || !BASE64_TEXT.test(text)) return -1;
  if (text.endsWith('==')) {
    if ((ALPHABET.indexOf(text.charAt(text.length - 3)) & 0x0f) !== 0) return -1;
    return (text.length / 4) * 3 - 2;
  }
  if (text.endsWith('=')) {
    if ((ALPHABET.indexOf(text.charAt(text.length - 2)) & 0x03) !== 0) return -1;
    return (text.length / 4) * 3 - 1;
  }
  return (text.length / 4) * 3;
}

/** Unicode code points (Rust `chars().count()`): a surrogate pair counts once. */
export function codePointLength(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xdc00 && c <= 0xdfff && i > 0) {
      const p = text.charCodeAt(i - 1);
      if (p >= 0xd800 && p <= 0xdbff) n--;
    }
  }
  return n;
}

/** Code point order (= UTF-8 byte order, what Rust's `sort` gives Strings). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.codePointAt(i) ?? 0;
    const cb = b.codePointAt(i) ?? 0;
    if (ca !== cb) return ca < cb ? -1 : 1;
    if (ca > 0xffff) i++;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}
