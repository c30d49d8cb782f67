/**
 * The format predicates of reference §6.1/§6.2. email and url follow the Rust `validator` crate the
 * original uses; the others are the original's own rules. Each is a plain function over a string,
 * built once; none allocates on the common path except email's IDN conversion.
 */
import { domainToASCII } from 'node:url';
import type { FormatName } from './api.js';
import { parseFloatText, parseTimestamp } from './values.js';

export const FORMAT_NAMES: readonly FormatName[] = [
  'email',
  'url',
  'credit_card',
  'country_code',
  'iso_8601',
  'wgs_84',
  'camel_case',
  'snake_case',
  'kebab_case',
  'pascal_case',
  'upper_case_snake_case',
];

export function isFormatName(text: string): text is FormatName {
  return (FORMAT_NAMES as readonly string[]).includes(text);
}

/** ISO 3166-1 alpha-2, the 249 officially assigned codes (no `UK`, `EU`, `XK`). */
export const COUNTRY_CODES: ReadonlySet<string> = new Set(
  (
    'AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ ' +
    'CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET ' +
    'FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ' +
    'ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY ' +
    'MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM ' +
    'PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW ' +
    'SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ ' +
    'UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW'
  ).split(' '),
);

// validator's EMAIL_USER_RE and EMAIL_DOMAIN_RE (HTML5 "valid e-mail address", case-insensitive).
const EMAIL_USER = /^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+$/i;
const EMAIL_DOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const EMAIL_LITERAL = /^\[([a-fA-F0-9:.]+)\]$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/**
 * validator's `validate_email`: ≤ 254 chars; split at the last `@`; user ≤ 64 chars of the HTML5 set;
 * domain ≤ 255 chars, a dotted hostname (IDN allowed, checked in its ASCII form) or an IP literal
 * `[…]`. Single-label domains (`user@localhost`) pass, as in the crate.
 */
export function isEmail(text: string): boolean {
  if (text.length === 0 || chars(text) > 254) return false;
  const at = text.lastIndexOf('@');
  if (at <= 0 || at === text.length - 1) return false;
  const user = text.slice(0, at);
  const domain = text.slice(at + 1);
  if (chars(user) > 64 || chars(domain) > 255) return false;
  if (!EMAIL_USER.test(user)) return false;
  if (EMAIL_DOMAIN.test(domain)) return true;
  const literal = EMAIL_LITERAL.exec(domain);
  if (literal !== null) return isIpLiteral(literal[1] ?? '');
  if (/^[\x00-\x7f]*$/.test(domain)) return false;
  const ascii = domainToASCII(domain);
  return ascii !== '' && EMAIL_DOMAIN.test(ascii);
}

/** Code points, counted only when the UTF-16 length could exceed a limit (the common case skips it). */
const chars = (text: string): number => (text.length <= 64 ? text.length : [...text].length);

function isIpLiteral(text: string): boolean {
  if (IPV4.test(text)) return true;
  return URL.canParse(`http://[${text}]/`);
}

/** validator's `validate_url`: an absolute URL (scheme required) that the WHATWG/rust-url parser takes. */
export function isUrl(text: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:/.test(text) && URL.canParse(text);
}

/** 12–19 digits (spaces and hyphens between groups allowed) passing the Luhn check. */
export function isCreditCard(text: string): boolean {
  const digits = text.replace(/[ -]/g, '');
  if (!/^\d{12,19}$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

export function isCountryCode(text: string): boolean {
  return text.length === 2 && COUNTRY_CODES.has(text);
}

/** `"lat,lon"`: two trimmed finite floats, lat ∈ [-90, 90], lon ∈ [-180, 180]. */
export function isWgs84(text: string): boolean {
  const parts = text.split(',');
  if (parts.length !== 2) return false;
  const lat = parseFloatText(parts[0] ?? '');
  const lon = parseFloatText(parts[1] ?? '');
  return lat !== undefined && lon !== undefined && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180;
}

const CAMEL = /^[a-z][A-Za-z0-9]*$/;
const PASCAL = /^[A-Z][A-Za-z0-9]*$/;
const SNAKE = /^[a-z](?:[a-z0-9]|_(?!_))*$/;
const KEBAB = /^[a-z](?:[a-z0-9]|-(?!-))*$/;
const UPPER_SNAKE = /^[A-Z](?:[A-Z0-9]|_(?!_))*$/;

export const FORMAT_CHECKS: Readonly<Record<FormatName, (text: string) => boolean>> = {
  email: isEmail,
  url: isUrl,
  credit_card: isCreditCard,
  country_code: isCountryCode,
  iso_8601: (text) => parseTimestamp(text) !== undefined,
  wgs_84: isWgs84,
  camel_case: (text) => CAMEL.test(text),
  pascal_case: (text) => PASCAL.test(text),
  snake_case: (text) => SNAKE.test(text) && !text.endsWith('_'),
  kebab_case: (text) => KEBAB.test(text) && !text.endsWith('-'),
  upper_case_snake_case: (text) => UPPER_SNAKE.test(text) && !text.endsWith('_'),
};

/** The case formats as JSON Schema (ECMA-262) patterns, trailing separator excluded in the pattern. */
export const FORMAT_PATTERNS: Partial<Record<FormatName, string>> = {
  camel_case: '^[a-z][A-Za-z0-9]*$',
  pascal_case: '^[A-Z][A-Za-z0-9]*$',
  snake_case: '^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$',
  kebab_case: '^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$',
  upper_case_snake_case: '^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$',
};
