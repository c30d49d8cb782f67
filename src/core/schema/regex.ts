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
 * Unicode-aware in Rust; V8 backtracks, so a nested quantifier like `(a+)+$` can be slow on hostile
 * input where Rust's engine is linear — schema authors hold `schema.write`, and payloads are bounded
 * (256 KiB), which bounds but does not remove that cost.
 * Every pattern is compiled with the `u` flag (code point semantics, strict escapes) and searched
 * unanchored, as Rust's `is_match`.
 */

export type RegexResult = { ok: true; regex: RegExp } | { ok: false; message: string };

export function compileSchemaRegex(pattern: string): RegexResult {
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
  try {
    return { ok: true, regex: new RegExp(translated, flags) };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
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
