/**
 * One column → one closure `(value, out) => normalised | FAIL`, built once per schema version. All
 * interpretation of the settings (type dispatch, bound parsing, regex compilation, message texts
 * that do not depend on the value) happens here, at compile time; the closures only test values.
 *
 * Normalisation (issue 9; the original only validated):
 * - integer: JS integers within ±(2^53−1) as they are; integer text (trimmed) → a number, or, when
 *   beyond 2^53−1 but within i64, a canonical decimal string (a number would round it silently).
 *   `5.0` arrives from JSON.parse as 5 and passes (the original refuses it; JS cannot tell them apart).
 * - float: numbers; float text (trimmed) → a number; `inf`/`NaN` refused (JSON cannot hold them).
 * - decimal(p,s): number or text → canonical text at scale s (`12.5` → `"12.50"`, no `+`, no leading
 *   zeros, no `-0`); the scale is checked on the fraction as written (the original's rule: `1.230` has
 *   3 places), the precision on the stored form, SQL-style (integer digits ≤ p − s; the original
 *   counted digits as written, which `12.5` → `"12.50"` would break on re-validation).
 * - boolean: true/false; 0/1; text true/false/1/0/yes/no/on/off (trimmed, any case) → true/false.
 * - timestamp: RFC 3339 text → `YYYY-MM-DDTHH:MM:SS[.f]Z` in UTC, the fraction digits kept as given.
 * - date: `YYYY-MM-DD` naming a real day, unchanged. text, json, binary: unchanged.
 */
import type { ColumnSettings, Violation } from './api.js';
import { FORMAT_CHECKS } from './formats.js';
import { compareBounds, parseBound, parseColumnType } from './model.js';
import { compileSchemaRegex } from './regex.js';
import {
  base64DecodedLength,
  canonicalDecimal,
  codePointLength,
  decimalFromNumber,
  decimalPrecision,
  formatInstant,
  isValidDate,
  parseDecimalText,
  parseFloatText,
  parseIntegerText,
  parseTimestamp,
  type DecimalParts,
} from './values.js';

export const FAIL: unique symbol = Symbol('schema.fail');
export type ColumnCheck = (value: unknown, out: Violation[]) => unknown;
type Coerce = (value: unknown, out: Violation[]) => unknown;
type Rule = (value: unknown, out: Violation[]) => void;

/** A compiled map of columns: reads, checks and (copy-on-write) normalises an object's fields. */
export type FieldsCheck = (object: Record<string, unknown>, out: Violation[], nullIsAbsent: boolean) => Record<string, unknown>;

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  else target[key] = value;
}

/**
 * `nullIsAbsent`: at the top level of a payload `null` removes the key (DESIGN §3 merge), so it counts
 * as absent (only `required` can object); inside an object column `null` is a value and is checked.
 */
export function compileFields(columns: Record<string, ColumnSettings>, prefix: string): FieldsCheck {
  const entries = Object.keys(columns).map((name) => {
    const settings = columns[name] as ColumnSettings;
    const path = prefix + name;
    return {
      name,
      // Names such as `constructor` resolve on Object.prototype; only those pay for Object.hasOwn.
      inherited: name in Object.prototype,
      required: settings.required === true,
      requiredViolation: Object.freeze({ field: path, rule: 'required', message: `field ${path} is required` }),
      path,
      check: compileColumn(settings, path),
    };
  });
  return (object, out, nullIsAbsent) => {
    let result = object;
    for (const e of entries) {
      const value = e.inherited ? (Object.hasOwn(object, e.name) ? object[e.name] : undefined) : object[e.name];
      if (value === undefined || (value === null && nullIsAbsent)) {
        if (e.required) out.push(e.requiredViolation);
        continue;
      }
      const normalised = e.check(value, out);
      if (normalised !== value && normalised !== FAIL) {
        if (result === object) result = { ...object };
        setOwn(result, e.name, normalised);
      }
    }
    return result;
  };
}

export function compileColumn(settings: ColumnSettings, path: string): ColumnCheck {
  const type = parseColumnType(settings.type);
  if (type === undefined) throw new Error(`compileColumn: unparsed type '${settings.type}' (parseAggregateSchema first)`);
  const coerce = compileCoercion(settings, path);
  const rules = compileRules(settings, path);
  if (rules.length === 0) return coerce;
  return (value, out) => {
    const v = coerce(value, out);
    if (v === FAIL) return FAIL;
    const before = out.length;
    for (const rule of rules) rule(v, out);
    return out.length === before ? v : FAIL;
  };
}

// Violations are built once per rule and shared by every call, so they are frozen.
const v = (path: string, rule: string, message: string): Violation => Object.freeze({ field: path, rule, message });

function compileCoercion(settings: ColumnSettings, path: string): Coerce {
  const type = parseColumnType(settings.type)!;
  const bad = (what: string): Violation => v(path, 'type', `field ${path} ${what}`);
  switch (type.name) {
    case 'integer': {
      const notInt = bad('must be an integer');
      const tooBig = bad('exceeds signed integer range');
      const unsafe = bad('must be an integer within ±(2^53−1) when sent as a JSON number (send larger integers as strings)');
      return (value, out) => {
        if (typeof value === 'number') {
          if (Number.isSafeInteger(value)) return value;
          out.push(!Number.isInteger(value) ? notInt : Math.abs(value) <= 2 ** 63 ? unsafe : tooBig);
          return FAIL;
        }
        if (typeof value === 'string') {
          const parsed = parseIntegerText(value);
          if (parsed === 'range') out.push(tooBig);
          else if (parsed !== undefined) return parsed;
          else out.push(notInt);
          return FAIL;
        }
        out.push(notInt);
        return FAIL;
      };
    }
    case 'float': {
      const msg = bad('must be a float');
      // What is stored must be a number the API takes back (I-JSON): text beyond ±(2^53−1) is not
      // turned into a number no import, patch `test` or client could send again.
      const tooBig = bad('must be a float within ±(2^53−1) (9007199254740991)');
      return (value, out) => {
        if (typeof value === 'number') return value;
        const parsed = typeof value === 'string' ? parseFloatText(value) : undefined;
        if (parsed !== undefined && Math.abs(parsed) <= Number.MAX_SAFE_INTEGER) return parsed;
        out.push(parsed !== undefined ? tooBig : msg);
        return FAIL;
      };
    }
    case 'decimal': {
      const precision = type.precision ?? 0;
      const scale = type.scale ?? 0;
      const notDecimal = bad('must be a decimal value');
      const tooManyPlaces = bad(`must have at most ${scale} decimal places`);
      const tooPrecise = bad(`must have precision <= ${precision}`);
      return (value, out) => {
        let parts: DecimalParts | undefined;
        if (typeof value === 'number') parts = decimalFromNumber(value);
        else if (typeof value === 'string') parts = parseDecimalText(value);
        if (parts === undefined) {
          out.push(notDecimal);
          return FAIL;
        }
        const before = out.length;
        if (parts.frac.length > scale) out.push(tooManyPlaces);
        if (decimalPrecision(parts, scale) > precision) out.push(tooPrecise);
        return out.length === before ? canonicalDecimal(parts, scale) : FAIL;
      };
    }
    case 'boolean': {
      const msg = bad('must be a boolean');
      return (value, out) => {
        if (typeof value === 'boolean') return value;
        if (value === 1 || value === 0) return value === 1;
        if (typeof value === 'string') {
          const b = BOOLEAN_TEXT[value.trim().toLowerCase()];
          if (b !== undefined) return b;
        }
        out.push(msg);
        return FAIL;
      };
    }
    case 'text': {
      const msg = bad('must be a string');
      return (value, out) => {
        if (typeof value === 'string') return value;
        out.push(msg);
        return FAIL;
      };
    }
    case 'timestamp': {
      const msg = bad('must be an RFC3339 timestamp');
      return (value, out) => {
        const instant = typeof value === 'string' ? parseTimestamp(value) : undefined;
        if (instant !== undefined) return formatInstant(instant);
        out.push(msg);
        return FAIL;
      };
    }
    case 'date': {
      const msg = bad('must be a date formatted as YYYY-MM-DD');
      return (value, out) => {
        if (typeof value === 'string' && isValidDate(value)) return value;
        out.push(msg);
        return FAIL;
      };
    }
    case 'binary': {
      const msg = bad('must be base64 encoded');
      return (value, out) => {
        if (typeof value === 'string' && base64DecodedLength(value) >= 0) return value;
        out.push(msg);
        return FAIL;
      };
    }
    case 'json': {
      if (settings.properties === undefined) return (value) => value;
      const fields = compileFields(settings.properties, path + '.');
      // json with properties: an object value has them checked; any other JSON value passes.
      return (value, out) => {
        if (!isPlainObject(value)) return value;
        const before = out.length;
        const result = fields(value, out, false);
        return out.length === before ? result : FAIL;
      };
    }
    case 'object': {
      const msg = bad('must be a JSON object');
      const fields = compileFields(settings.properties ?? {}, path + '.');
      return (value, out) => {
        if (!isPlainObject(value)) {
          out.push(msg);
          return FAIL;
        }
        const before = out.length;
        const result = fields(value, out, false);
        return out.length === before ? result : FAIL;
      };
    }
  }
}

const BOOLEAN_TEXT: Readonly<Record<string, boolean>> = Object.assign(Object.create(null) as Record<string, boolean>, {
  true: true,
  false: false,
  '1': true,
  '0': false,
  yes: true,
  no: false,
  on: true,
  off: false,
});

/** Rules run on the coerced value; unlike the original, `length` runs together with the text rules. */
function compileRules(settings: ColumnSettings, path: string): Rule[] {
  const type = parseColumnType(settings.type)!;
  const rules: Rule[] = [];
  for (const needle of settings.contains ?? []) {
    const msg = v(path, 'contains', `field ${path} must contain '${needle}'`);
    rules.push((value, out) => {
      if (!(value as string).includes(needle)) out.push(msg);
    });
  }
  for (const needle of settings.does_not_contain ?? []) {
    const msg = v(path, 'does_not_contain', `field ${path} must not contain '${needle}'`);
    rules.push((value, out) => {
      if ((value as string).includes(needle)) out.push(msg);
    });
  }
  for (const pattern of settings.regex ?? []) {
    const compiled = compileSchemaRegex(pattern, { stored: true });
    if (!compiled.ok) throw new Error(`compileRules: invalid regex '${pattern}' (parseAggregateSchema first)`);
    const { matcher } = compiled; // linear in the value: a hostile value cannot hold the worker
    const msg = v(path, 'regex', `field ${path} must match pattern ${pattern}`);
    rules.push((value, out) => {
      if (!matcher.test(value as string)) out.push(msg);
    });
  }
  if (settings.format !== undefined) {
    const check = FORMAT_CHECKS[settings.format];
    const msg = v(path, 'format', `field ${path} must match format ${settings.format}`);
    rules.push((value, out) => {
      if (!check(value as string)) out.push(msg);
    });
  }
  if (settings.length !== undefined) rules.push(compileLength(settings.length, type.name === 'binary', path));
  if (settings.range !== undefined) rules.push(compileRange(settings, path));
  return rules;
}

function compileLength(length: { min?: number; max?: number }, binary: boolean, path: string): Rule {
  const { min, max } = length;
  const short = v(path, 'length', `field ${path} must have length >= ${min}`);
  const long = v(path, 'length', `field ${path} must have length <= ${max}`);
  return (value, out) => {
    const text = value as string;
    const n = binary ? base64DecodedLength(text) : codePointLength(text);
    if (min !== undefined && n < min) out.push(short);
    if (max !== undefined && n > max) out.push(long);
  };
}

function compileRange(settings: ColumnSettings, path: string): Rule {
  const type = parseColumnType(settings.type)!.name;
  const range = settings.range ?? {};
  const min = range.min === undefined ? undefined : parseBound(range.min, type);
  const max = range.max === undefined ? undefined : parseBound(range.max, type);
  const temporal = type === 'date' || type === 'timestamp';
  const low = v(path, 'range', temporal ? `field ${path} must be on or after ${range.min}` : `field ${path} must be >= ${range.min}`);
  const high = v(path, 'range', temporal ? `field ${path} must be on or before ${range.max}` : `field ${path} must be <= ${range.max}`);
  // The comparison key of a normalised value, in the bound's representation.
  const key: (value: unknown) => unknown =
    type === 'integer'
      ? (value) => (typeof value === 'string' ? BigInt(value) : value) // number vs bigint compares exactly
      : type === 'decimal'
        ? (value) => parseDecimalText(value as string)
        : type === 'timestamp'
          ? (value) => parseTimestamp(value as string)
          : (value) => value; // float: number; date: YYYY-MM-DD text orders lexically
  return (value, out) => {
    const k = key(value);
    if (min !== undefined && compareBounds(k, min, type) < 0) out.push(low);
    if (max !== undefined && compareBounds(k, max, type) > 0) out.push(high);
  };
}
