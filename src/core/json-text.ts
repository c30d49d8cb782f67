/**
 * Checks on JSON text that JSON.parse does not make, run before a body or an import line becomes
 * a record (I-JSON, RFC 7493, which the API promises):
 * - member names unique within an object (§2.3): JSON.parse keeps the last of duplicates
 *   silently, so `"event_type":"a","event_type":"b"` would store "b" without a word;
 * - no member named `__proto__`: plain objects turn it into a prototype or drop it, so it would be
 *   stored altered or not at all;
 * - no number that underflows to 0 (1e-400): it would be stored as another number (§2.2);
 * - no string or member name holding a lone surrogate (`"\ud800"`, §2.1): it would come back as U+FFFD;
 * - UTF-8 (§2.1) is the byte decoder's part (decodeUtf8Strict below), not this scan's.
 *
 * One linear pass with no allocation beyond one Set per object (~1 µs for a 500-byte body).
 * Malformed JSON is not its concern: it answers undefined and leaves the error to JSON.parse.
 */
import { isWellFormed } from './limits.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

export interface JsonTextProblem {
  /** `invalid_input` for __proto__ (refused like prototype poisoning always was), else `validation_failed`. */
  code: 'validation_failed' | 'invalid_input';
  /** Where, as the API's detail paths write it: members joined by '.', array items by index. */
  path: string;
  message: string;
}

/** Up to this many names an object's names are searched in a list (cheaper than a Set for small objects). */
const NAMES_LISTED_MAX = 16;

interface Container {
  /** Member names so far (an object), or null (an array); a Set once the object has many. */
  names: string[] | Set<string> | null;
  /** An array's current item index. */
  index: number;
  /** This container's place in its parent ('' for the top level). */
  segment: string;
}

export function jsonTextProblem(text: string): JsonTextProblem | undefined {
  const stack: Container[] = [];
  let expectName = false;
  let lastName = '';
  // A lone surrogate can only come as a `\uD800`-style escape (the bytes were decoded as strict
  // UTF-8): without any `\u` in the text, no string needs the check.
  const escapes = text.includes('\\u');
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = closingQuote(text, i);
      if (end < 0) return undefined;
      if (escapes && hasLoneSurrogate(text, i, end)) {
        const top = stack[stack.length - 1];
        const at = top === undefined ? '' : expectName ? pathOf(stack, '').replace(/\.$/, '') : pathOf(stack, top.names === null ? String(top.index) : lastName);
        return { code: 'validation_failed', path: at, message: `${expectName ? 'a member name' : 'a string'} is not well-formed Unicode (it holds a lone surrogate; I-JSON, RFC 7493 §2.1)` };
      }
      if (expectName) {
        const raw = text.slice(i + 1, end);
        let name = raw;
        if (raw.includes('\\')) {
          try {
            name = JSON.parse(text.slice(i, end + 1)) as string;
          } catch {
            return undefined;
          }
        }
        const top = stack[stack.length - 1] as Container;
        if (name === '__proto__') return { code: 'invalid_input', path: pathOf(stack, name), message: 'a member named __proto__ is not accepted (it would not be stored as sent)' };
        if (hasName(top, name)) return { code: 'validation_failed', path: pathOf(stack, name), message: `duplicate member name "${name}" (I-JSON, RFC 7493 §2.3: names must be unique)` };
        addName(top, name);
        lastName = name;
        expectName = false;
      }
      i = end;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      // Char codes, not a regex per character: this runs on every number of every write.
      let end = i + 1;
      let fractionOrExponent = false;
      for (; end < text.length; end++) {
        const n = text.charCodeAt(end);
        if (n === 0x2e /* . */ || n === 0x65 /* e */ || n === 0x45 /* E */) fractionOrExponent = true;
        else if (!((n >= 0x30 && n <= 0x39) || n === 0x2b /* + */ || n === 0x2d /* - */)) break;
      }
      if (!fractionOrExponent) {
        i = end - 1;
        continue;
      }
      const token = text.slice(i, end);
      // 1e-400 parses to 0: the number sent would be stored as another (§2.2: within a double).
      if (Number(token) === 0 && /[1-9]/.test(token.split(/[eE]/)[0] as string)) {
        const top = stack[stack.length - 1];
        const at = top === undefined ? '' : pathOf(stack, top.names === null ? String(top.index) : lastName);
        return { code: 'validation_failed', path: at, message: `number ${token} is too small for a double: it would be stored as 0 (I-JSON, RFC 7493 §2.2)` };
      }
      i = end - 1;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const parent = stack[stack.length - 1];
      const segment = parent === undefined ? '' : parent.names === null ? String(parent.index) : lastName;
      stack.push({ names: c === 0x7b ? [] : null, index: 0, segment });
      expectName = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectName = false;
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.names === null) top.index++;
      else expectName = top !== undefined;
    }
  }
  return undefined;
}

/** Whether the string literal text[open..close] decodes to a lone surrogate (only escapes can make one). */
function hasLoneSurrogate(text: string, open: number, close: number): boolean {
  const raw = text.slice(open, close + 1);
  if (!/\\u[dD][89a-fA-F]/.test(raw)) return false;
  try {
    return !isWellFormed(JSON.parse(raw) as string);
  } catch {
    return false;
  }
}

function hasName(container: Container, name: string): boolean {
  const names = container.names;
  return names === null ? false : Array.isArray(names) ? names.includes(name) : names.has(name);
}

function addName(container: Container, name: string): void {
  const names = container.names;
  if (names === null) return;
  if (!Array.isArray(names)) {
    names.add(name);
  } else if (names.length < NAMES_LISTED_MAX) {
    names.push(name);
  } else {
    container.names = new Set(names).add(name);
  }
}

function pathOf(stack: Container[], name: string): string {
  return [...stack.slice(1).map((c) => c.segment), name].join('.');
}

/** Index of the quote that closes the string opening at `open` (-1: none). */
function closingQuote(text: string, open: number): number {
  let from = open + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q < 0) return -1;
    let slashes = 0;
    for (let b = q - 1; b > open && text.charCodeAt(b) === BACKSLASH; b--) slashes++;
    if (slashes % 2 === 0) return q;
    from = q + 1;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Bytes as UTF-8 text, or undefined when they are not UTF-8 (RFC 7493 §2.1): a lenient decode
 * would store U+FFFD in place of the bytes sent.
 */
export function decodeUtf8Strict(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}
