/**
 * Schema regexes are written in Rust `regex` syntax (the original's engine); we run them on V8's.
 * Most patterns mean the same in both. This translation covers what commonly differs and refuses, at
 * save time, what the Rust crate would refuse and V8 would accept:
 * - a leading inline flag group `(?i)`, `(?s)`, `(?m)` (or a mix) becomes a JS flag; inline flags
 *   anywhere else, and `x`/`U`, are refused (V8 on Node 20 has no inline modifiers);
 * - `\A` and `\z` become input-start/-end assertions; `\pL` becomes `\p{L}`; `(?P<n>…)` becomes `(?<n>…)`;
 * - lookaround and backreferences are refused: Rust has neither, and they are what turns a pattern
 *   into exponential backtracking.
 * Differences that remain (documented, not translated): `\d`, `\w`, `\s` and `\b` are ASCII in JS but
 * Unicode-aware in Rust.
 * Values are matched by `matcher` (linear-regex.ts), linear in the input like Rust's engine: V8
 * backtracks, and `(a+)+$` against 40 `a`s and a `!` held a shard worker, and every write behind
 * it, for good. `regex` (the V8 RegExp) is kept for the JSON Schema export and for the syntax check.
 * Every pattern is compiled with the `u` flag (code point semantics, strict escapes) and searched
 * unanchored, as Rust's `is_match`.
 */

import { RegexTooLarge, compileLinear, type LinearRegex } from './linear-regex.js';

export type RegexResult = { ok: true; regex: RegExp; matcher: LinearRegex } | { ok: false; message: string };

/**
 * `stored`: the pattern comes from a schema already saved (compiling a worker's rules): a pattern
 * an older version accepted and this one finds too large for the linear matcher runs on V8 rather
 * than failing the worker's start.
 */
export function compileSchemaRegex(pattern: string, options: { stored?: boolean } = {}): RegexResult {
  let flags = 'u';
  let body = pattern;
  const lead = /^\(\?([a-zA-Z]+)\)/.exec(pattern);
  if (lead !== null) {
    const set = lead[1] ?? '';
    for (const f of set) {
      if (f !== 'i' && f !== 's' && f !== 'm') return { ok: false, message: `inline flag '${f}' is not supported (only i, s, m at the start)` };
      if (!flags.includes(f)) flags += f;
    }
    body = pattern.slice(lead[0].length);
  }
  const translated = translate(body);
  if (typeof translated !== 'string') return translated;
  let regex: RegExp;
  try {
    regex = new RegExp(translated, flags);
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
  try {
    return { ok: true, regex, matcher: compileLinear(translated, flags, regex) };
  } catch (err) {
    if (err instanceof RegexTooLarge) return options.stored ? { ok: true, regex, matcher: regex } : { ok: false, message: err.message };
    return { ok: false, message: `unsupported construct: ${(err as Error).message}` };
  }
}

function translate(src: string): string | { ok: false; message: string } {
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src.charAt(i);
    if (c === '\\') {
      const n = src.charAt(i + 1);
      i++;
      if (n === 'A' && !inClass) out += '(?<![\\s\\S])';
      else if (n === 'z' && !inClass) out += '(?![\\s\\S])';
      else if ((n === 'p' || n === 'P') && /[A-Za-z]/.test(src.charAt(i + 1))) {
        out += `\\${n}{${src.charAt(i + 1)}}`;
        i++;
      } else if (!inClass && /[1-9]/.test(n)) return refuse('backreferences are not supported');
      else if (!inClass && n === 'k' && src.charAt(i + 1) === '<') return refuse('backreferences are not supported');
      else out += c + n;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      // A `]` (or `^]`) right after the opening bracket is a literal in Rust.
      if (src.charAt(i + 1) === '^') {
        out += '^';
        i++;
      }
      if (src.charAt(i + 1) === ']') {
        out += '\\]';
        i++;
      }
      continue;
    }
    if (c === '(' && src.charAt(i + 1) === '?') {
      const rest = src.slice(i + 2);
      if (rest.startsWith('=') || rest.startsWith('!') || rest.startsWith('<=') || rest.startsWith('<!')) {
        return refuse('lookaround is not supported');
      }
      if (rest.startsWith('P<')) {
        out += '(?<';
        i += 3;
        continue;
      }
      if (!rest.startsWith(':') && !rest.startsWith('<')) return refuse('inline flags are only supported at the start of the pattern');
    }
    out += c;
  }
  return out;
}

const refuse = (message: string): { ok: false; message: string } => ({ ok: false, message });
