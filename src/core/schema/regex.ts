/**
 * Schema regexes are written in Rust `regex` syntax (the original's engine, default Unicode mode); we
 * run them on V8's. This module parses the Rust syntax itself (after regex-syntax's parser: its
 * grammar, its errors) and writes a V8 `u`-mode pattern that means the same, so nothing is read as
 * JavaScript syntax by accident:
 * - `\d` is `\p{Nd}`, `\s` is `\p{White_Space}`, `\w` is `[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]`
 *   (their complements too), outside and inside bracket classes; `\b`, `\B`, `\b{start}`, `\b{end}`,
 *   `\b{start-half}`, `\b{end-half}`, `\<`, `\>` use that Unicode `\w` (written as lookarounds);
 * - `.` is any character but `\n` (`(?s)`: any; `(?R)`: but `\r` and `\n`); `(?m)` makes `^`/`$` line
 *   boundaries at `\n` only (`(?mR)`: `\r`, `\n`, never inside `\r\n`) — written as lookarounds, so
 *   V8's `m` and `s` flags (which also take `\r`, U+2028, U+2029) are never used;
 * - bracket classes are Rust's: nesting `[a[0-9]]`, `&&`, `--`, `~~` (one precedence, left to right,
 *   union binding tighter), POSIX ASCII classes `[[:alpha:]]`/`[[:^digit:]]`, a leading `]` or `-`
 *   literal. A class V8 cannot write as one `u`-mode class becomes one-character lookaheads,
 *   `(?=X)[\s\S]` (intersection `(?=A)B`, difference `(?!B)A`, complement `(?!A)[\s\S]`), which are
 *   atomic in V8 and which the linear matcher takes as a single atom;
 * - flags: `(?x)` verbose mode (whitespace and `#` comments ignored everywhere, classes included,
 *   as in Rust), `s`, `m`, `R`, `U` (greed: no effect on a yes/no match) and `u` anywhere, scoped as
 *   in Rust; `i` only for the whole pattern (a flag group before anything else), as V8 on Node 20
 *   has no inline modifiers; `(?-u)` is refused;
 * - escapes: `\A`, `\z`, `\x7F`, `\x{…}`, `\u007F`, `\u{…}`, `\U0000007F`, `\U{…}`, `\a`, `\pL`,
 *   `\p{…}` (`:`/`=`/`!=` forms), superfluous escapes of ASCII punctuation; `(?P<n>…)`, `(?<n>…)`;
 * - refused as Rust refuses them: lookaround, backreferences (`\1`, also `\0`), unknown escapes
 *   (`\e`, `\c`, `\k`, …), empty or reversed ranges, empty `(?)`, `{,n}`, unclosed classes (`[]`).
 * Unicode property names must be ones V8 knows (`\p{Greek}` must be written `\p{Script=Greek}`);
 * Rust's loose name matching is not reproduced — such a pattern is refused, never misread.
 * Values are matched by `matcher` (linear-regex.ts), linear in the input like Rust's engine: V8
 * backtracks, and `(a+)+$` against 40 `a`s and a `!` held a shard worker, and every write behind
 * it, for good. `regex` (the V8 RegExp, flags `u` or `iu`) is kept for the JSON Schema export, for
 * the syntax check and as the fallback of large counted repetitions. Searched unanchored, as
 * Rust's `is_match`.
 */

import { ASSERTION_SOURCE, RegexTooLarge, WORD_CLASS, compileLinear, type LinearRegex } from './linear-regex.js';

export type RegexResult = { ok: true; regex: RegExp; matcher: LinearRegex } | { ok: false; message: string };

/**
 * `stored`: the pattern comes from a schema already saved (compiling a worker's rules): a pattern
 * an older version accepted and this one finds too large for the linear matcher runs on V8 rather
 * than failing the worker's start.
 */
export function compileSchemaRegex(pattern: string, options: { stored?: boolean } = {}): RegexResult {
  let translated: { source: string; ignoreCase: boolean };
  try {
    translated = new RustTranslator(pattern).translate();
  } catch (err) {
    if (!(err instanceof RustSyntaxError)) throw err;
    return options.stored ? compileLegacy(pattern, err.message) : { ok: false, message: err.message };
  }
  const flags = translated.ignoreCase ? 'iu' : 'u';
  let regex: RegExp;
  try {
    regex = new RegExp(translated.source, flags);
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
  try {
    return { ok: true, regex, matcher: compileLinear(translated.source, flags, regex) };
  } catch (err) {
    if (err instanceof RegexTooLarge) return options.stored ? { ok: true, regex, matcher: regex } : { ok: false, message: err.message };
    return { ok: false, message: `unsupported construct: ${(err as Error).message}` };
  }
}

/**
 * A stored pattern this translator refuses was saved by a version that read patterns as V8 `u`
 * syntax (`\0`, `\cA`, `[\b]`, `[[]`): it keeps that meaning, so a schema in force never stops a
 * worker from compiling its rules; saving it again is refused with Rust's message.
 */
function compileLegacy(pattern: string, refusal: string): RegexResult {
  let regex: RegExp;
  try {
    regex = new RegExp(pattern, 'u');
  } catch {
    return { ok: false, message: refusal };
  }
  try {
    return { ok: true, regex, matcher: compileLinear(pattern, 'u', regex) };
  } catch (err) {
    // As for a translated pattern: only size sends a stored pattern to V8; anything else the
    // linear matcher cannot take (lookaround) was never accepted, and must not backtrack now.
    return err instanceof RegexTooLarge ? { ok: true, regex, matcher: regex } : { ok: false, message: refusal };
  }
}

/** The V8 source a Rust pattern translates to (flags `u`, plus `i` when `ignoreCase`); throws on a pattern Rust refuses. */
export function translateRustRegex(pattern: string): { source: string; ignoreCase: boolean } {
  return new RustTranslator(pattern).translate();
}

class RustSyntaxError extends Error {}

// ---------------------------------------------------------------------------------------------
// Character sets. Leaves are V8 `u`-mode class bodies (`a`, `a-z`, `\p{Nd}`); set operations are
// kept as a tree and written as lookaheads only when one V8 class cannot say it.

type CharSet =
  | { k: 'set'; items: string[] } // union of class-body items; [] is the empty set
  | { k: 'not'; e: CharSet }
  | { k: 'or'; es: CharSet[] }
  | { k: 'and' | 'minus' | 'xor'; a: CharSet; b: CharSet };

const set = (...items: string[]): CharSet => ({ k: 'set', items });
const not = (e: CharSet): CharSet => (e.k === 'not' ? e.e : { k: 'not', e });

function union(es: CharSet[]): CharSet {
  const items: string[] = [];
  const rest: CharSet[] = [];
  for (const e of es.flatMap((x) => (x.k === 'or' ? x.es : [x]))) {
    if (e.k === 'set') items.push(...e.items);
    else rest.push(e);
  }
  if (rest.length === 0) return set(...items);
  if (items.length === 0 && rest.length === 1) return rest[0] as CharSet;
  return { k: 'or', es: items.length > 0 ? [set(...items), ...rest] : rest };
}

const WORD_ITEMS = ['\\p{Alphabetic}', '\\p{M}', '\\p{Nd}', '\\p{Pc}', '\\p{Join_Control}'];
if (`[${WORD_ITEMS.join('')}]` !== WORD_CLASS) throw new Error('regex.ts: WORD_CLASS out of step with linear-regex.ts');

/** Rust's Perl classes, Unicode mode. */
function perlClass(c: string): CharSet {
  const base = c.toLowerCase() === 'd' ? set('\\p{Nd}') : c.toLowerCase() === 's' ? set('\\p{White_Space}') : set(...WORD_ITEMS);
  return c === c.toUpperCase() ? not(base) : base;
}

/** Rust's ASCII classes (`[[:alpha:]]`), as its documentation defines them. */
const ASCII_CLASSES: Record<string, string[]> = {
  alnum: ['0-9', 'A-Z', 'a-z'],
  alpha: ['A-Z', 'a-z'],
  ascii: ['\\x00-\\x7F'],
  blank: ['\\t', ' '],
  cntrl: ['\\x00-\\x1F', '\\x7F'],
  digit: ['0-9'],
  graph: ['!-~'],
  lower: ['a-z'],
  print: [' -~'],
  punct: ['!-\\/', ':-@', '\\[-`', '\\{-~'],
  space: ['\\t', '\\n', '\\v', '\\f', '\\r', ' '],
  upper: ['A-Z'],
  word: ['0-9', 'A-Z', 'a-z', '_'],
  xdigit: ['0-9', 'A-F', 'a-f'],
};

/** Whether `e` is written as one V8 class (or class escape) rather than lookaheads. */
const isPlain = (e: CharSet): boolean => e.k === 'set' || (e.k === 'not' && e.e.k === 'set');

/** A V8 expression that matches exactly one character of the set `e`. */
function renderSet(e: CharSet): string {
  switch (e.k) {
    case 'set':
      // A lone property escape needs no brackets (`\p{Nd}`, not `[\p{Nd}]`).
      return e.items.length === 1 && /^\\p\{[^}]*\}$/.test(e.items[0] as string) ? (e.items[0] as string) : `[${e.items.join('')}]`;
    case 'not':
      return e.e.k === 'set' ? `[^${e.e.items.join('')}]` : `(?!${renderSet(e.e)})[\\s\\S]`;
    case 'or':
      return `(?:${e.es.map(renderSet).join('|')})`;
    case 'and':
      return `(?=${renderSet(e.a)})${renderSet(e.b)}`;
    case 'minus':
      return `(?!${renderSet(e.b)})${renderSet(e.a)}`;
    case 'xor':
      return `(?:(?!${renderSet(e.b)})${renderSet(e.a)}|(?!${renderSet(e.a)})${renderSet(e.b)})`;
  }
}

/** One class atom of the output: a plain class, or the lookahead form the linear matcher takes as one atom. */
const setPiece = (e: CharSet): Piece => (isPlain(e) ? { text: renderSet(e), kind: 'atom' } : { text: `(?=${renderSet(e)})[\\s\\S]`, kind: 'compound' });

/** A code point as V8 `u`-mode source, outside (`inClass` false) or inside a class. */
function literal(cp: number, inClass: boolean): string {
  const c = String.fromCodePoint(cp);
  if (inClass ? /[\\\]\[^-]/.test(c) : /[\\^$.*+?()[\]{}|/]/.test(c)) return `\\${c}`;
  if (/[\p{L}\p{N}\p{P}\p{S}\p{M}]/u.test(c) && !(cp >= 0xd800 && cp <= 0xdfff)) return c;
  if (c === ' ') return c;
  return `\\u{${cp.toString(16).toUpperCase()}}`;
}

const isWhiteSpace = (c: string): boolean => /^\p{White_Space}$/u.test(c);
const isHex = (c: string): boolean => /^[0-9a-fA-F]$/.test(c);

type Flags = { s: boolean; m: boolean; R: boolean; x: boolean };
/** `compound`: one character, but more than one V8 term (a class atom `(?=X)[\s\S]`): grouped when quantified. */
type Piece = { text: string; kind: 'atom' | 'compound' | 'assert' | 'repeat' | 'flags' };

const NEST_LIMIT = 250;

class RustTranslator {
  private i = 0;
  private flags: Flags = { s: false, m: false, R: false, x: false };
  private ignoreCase = false;
  /** Anything but flag groups seen yet (after it, `i` can no longer change). */
  private started = false;
  private depth = 0;
  private readonly names = new Set<string>();

  constructor(private readonly src: string) {}

  translate(): { source: string; ignoreCase: boolean } {
    const source = this.expression();
    if (this.i < this.src.length) throw this.error(`unopened group: unexpected ')' at ${this.i}`);
    return { source, ignoreCase: this.ignoreCase };
  }

  private error(message: string): RustSyntaxError {
    return new RustSyntaxError(message);
  }

  private ch(): string {
    const cp = this.src.codePointAt(this.i);
    return cp === undefined ? '' : String.fromCodePoint(cp);
  }

  private eof(): boolean {
    return this.i >= this.src.length;
  }

  private bump(): void {
    this.i += this.ch().length || 1;
  }

  /** Rust's `bump_space`: in verbose mode, skips whitespace and `#` comments (to the end of the line). */
  private space(): void {
    if (!this.flags.x) return;
    while (!this.eof()) {
      if (isWhiteSpace(this.ch())) this.bump();
      else if (this.ch() === '#') {
        while (!this.eof() && this.ch() !== '\n') this.bump();
      } else return;
    }
  }

  private bumpSpace(): void {
    this.bump();
    this.space();
  }

  /** The character after the current one, skipping verbose-mode space (Rust's `peek_space`). */
  private peekSpace(): string {
    const [i] = [this.i];
    this.bump();
    this.space();
    const c = this.ch();
    this.i = i;
    return c;
  }

  /** An alternation up to an unmatched `)` or the end. */
  private expression(): string {
    const branches: string[] = [];
    let pieces: Piece[] = [];
    for (;;) {
      this.space();
      if (this.eof() || this.ch() === ')') break;
      const c = this.ch();
      if (c === '|') {
        this.bump();
        this.started = true;
        branches.push(pieces.map((p) => p.text).join(''));
        pieces = [];
      } else if (c === '(') {
        const group = this.group();
        pieces.push(group === null ? { text: '', kind: 'flags' } : { text: group, kind: 'atom' });
      } else if (c === '?' || c === '*' || c === '+' || c === '{') {
        const last = pieces.pop();
        if (last === undefined || last.kind === 'flags') throw this.error('repetition operator missing expression');
        const op = c === '{' ? this.counted() : this.uncounted();
        // V8 refuses a quantified quantifier or assertion (Rust takes both): group it first.
        const base = last.kind === 'atom' ? last.text : `(?:${last.text})`;
        pieces.push({ text: base + op, kind: 'repeat' });
      } else {
        this.started = true;
        pieces.push(this.primitive());
      }
    }
    branches.push(pieces.map((p) => p.text).join(''));
    return branches.join('|');
  }

  private uncounted(): string {
    const op = this.ch();
    this.bump();
    if (this.ch() === '?') {
      this.bump();
      return `${op}?`;
    }
    return op;
  }

  /** `{n}`, `{n,}`, `{n,m}` (whitespace around the numbers is allowed, as in Rust), then a lazy `?`. */
  private counted(): string {
    this.bumpSpace();
    if (this.eof()) throw this.error('unclosed counted repetition');
    const min = this.decimal();
    let max: number | null | undefined = min;
    if (this.ch() === ',') {
      this.bumpSpace();
      if (this.eof()) throw this.error('unclosed counted repetition');
      max = this.ch() === '}' ? null : this.decimal();
    }
    if (min === undefined || max === undefined) throw this.error('repetition quantifier expects a valid decimal');
    if (this.ch() !== '}') throw this.error('unclosed counted repetition');
    this.bumpSpace();
    let lazy = '';
    if (this.ch() === '?') {
      lazy = '?';
      this.bump();
    }
    if (max !== null && min > max) throw this.error('invalid repetition count range, the start must be <= the end');
    return `{${min}${max === min ? '' : `,${max ?? ''}`}}${lazy}`;
  }

  private decimal(): number | undefined {
    while (!this.eof() && isWhiteSpace(this.ch())) this.bump();
    let digits = '';
    while (!this.eof() && this.ch() >= '0' && this.ch() <= '9') {
      digits += this.ch();
      this.bumpSpace();
    }
    while (!this.eof() && isWhiteSpace(this.ch())) this.bumpSpace();
    if (digits === '') return undefined;
    const n = Number(digits);
    if (n > 0xffffffff) throw this.error('decimal literal invalid');
    return n;
  }

  /** A group, or a flag group (`(?s)`: returns null, the flags hold to the end of the enclosing group). */
  private group(): string | null {
    const open = this.i;
    this.bump();
    this.space();
    const rest = this.src.slice(this.i);
    if (/^\?(?:=|!|<=|<!)/.test(rest)) throw this.error('lookaround (look-ahead, look-behind) is not supported');
    let prefix = '(';
    const saved = { ...this.flags };
    if (rest.startsWith('?P<') || rest.startsWith('?<')) {
      this.i += rest.startsWith('?P<') ? 3 : 2;
      const start = this.i;
      while (!this.eof() && this.ch() !== '>') {
        if (!/[\p{Alphabetic}_]/u.test(this.ch()) && (this.i === start || !/[0-9.[\]]/.test(this.ch()))) throw this.error(`invalid capture group character '${this.ch()}'`);
        this.bump();
      }
      if (this.eof()) throw this.error('unclosed capture group name');
      const name = this.src.slice(start, this.i);
      if (name === '') throw this.error('empty capture group name');
      if (this.names.has(name)) throw this.error(`duplicate capture group name '${name}'`);
      this.names.add(name);
      this.bump();
      prefix = '(?:'; // names mean nothing to a yes/no match, and Rust's (`a.b`, `x[0]`) are not V8's
      this.started = true;
    } else if (rest.startsWith('?')) {
      this.bump();
      if (this.eof()) throw this.error('unclosed group');
      const { flags, end } = this.flagItems();
      if (end === ')') {
        if (flags.length === 0) throw this.error('repetition operator missing expression');
        this.applyFlags(flags, true);
        return null;
      }
      this.applyFlags(flags, false);
      prefix = '(?:';
      this.started = true;
    } else this.started = true;
    if (++this.depth > NEST_LIMIT) throw this.error(`exceed the maximum number of nested parentheses/brackets (${NEST_LIMIT})`);
    const inner = this.expression();
    this.depth--;
    if (this.ch() !== ')') throw this.error(`unclosed group opened at ${open}`);
    this.bump();
    this.flags = saved;
    return `${prefix}${inner})`;
  }

  /** The flag letters of `(?…)` or `(?…:`, as [letter, on] pairs; leaves the parser after the `)` or `:`. */
  private flagItems(): { flags: Array<[string, boolean]>; end: string } {
    const flags: Array<[string, boolean]> = [];
    let negated = false;
    let dangling = false;
    const seen = new Set<string>();
    while (this.ch() !== ':' && this.ch() !== ')') {
      if (this.eof()) throw this.error('expected flag but got end of pattern');
      const c = this.ch();
      if (c === '-') {
        if (negated) throw this.error('flag negation operator repeated');
        negated = dangling = true;
      } else {
        if (!'imsUuRx'.includes(c)) throw this.error(`unrecognized flag '${c}'`);
        if (seen.has(c)) throw this.error(`duplicate flag '${c}'`);
        seen.add(c);
        flags.push([c, !negated]);
        dangling = false;
      }
      this.bump();
    }
    if (dangling) throw this.error('flag negation operator not followed by a flag');
    const end = this.ch();
    this.bump();
    return { flags, end };
  }

  private applyFlags(flags: Array<[string, boolean]>, setsRest: boolean): void {
    for (const [f, on] of flags) {
      if (f === 'i') {
        if (on === this.ignoreCase) continue;
        // V8 on Node 20 has no inline modifiers: case-insensitivity is the whole pattern's or none.
        if (!setsRest || this.started || this.depth > 0) throw this.error('the case-insensitive flag (?i) is only supported for the whole pattern, in a flag group at its start');
        this.ignoreCase = on;
      } else if (f === 'u') {
        if (!on) throw this.error('(?-u) is not supported: patterns are matched on Unicode text');
      } else if (f === 'U') {
        // Greed decides which match is reported, never whether there is one.
      } else this.flags[f as keyof Flags] = on;
    }
  }

  /** A literal, `.`, `^`, `$`, a class or an escape. */
  private primitive(): Piece {
    const c = this.ch();
    if (c === '[') return setPiece(this.bracket());
    if (c === '.') {
      this.bump();
      return { text: this.flags.s ? '[\\s\\S]' : this.flags.R ? '[^\\n\\r]' : '[^\\n]', kind: 'atom' };
    }
    if (c === '^' || c === '$') {
      this.bump();
      const what = !this.flags.m ? (c === '^' ? 'start' : 'end') : this.flags.R ? (c === '^' ? 'crlf_start' : 'crlf_end') : c === '^' ? 'line_start' : 'line_end';
      return { text: what === 'start' ? '^' : what === 'end' ? '$' : ASSERTION_SOURCE[what], kind: 'assert' };
    }
    if (c === '\\') {
      const e = this.escape(false);
      if (e.k === 'assert') return { text: e.text, kind: 'assert' };
      return e.k === 'lit' ? { text: literal(e.cp, false), kind: 'atom' } : setPiece(e.set);
    }
    this.bump();
    return { text: literal(c.codePointAt(0) as number, false), kind: 'atom' };
  }

  /** An escape at `\`: a literal, a class or (outside classes) an assertion. */
  private escape(inClass: boolean): { k: 'lit'; cp: number } | { k: 'set'; set: CharSet } | { k: 'assert'; text: string } {
    this.bump();
    if (this.eof()) throw this.error('incomplete escape sequence, reached end of pattern prematurely');
    const c = this.ch();
    if (/[0-9]/.test(c)) throw this.error('backreferences are not supported');
    if (c === 'x' || c === 'u' || c === 'U') return { k: 'lit', cp: this.hex() };
    if (c === 'p' || c === 'P') return { k: 'set', set: this.unicodeClass() };
    if (/[dswDSW]/.test(c)) {
      this.bump();
      return { k: 'set', set: perlClass(c) };
    }
    this.bump();
    // Rust's meta characters and, since regex 1.8, any other ASCII punctuation but `<` and `>`.
    if (c.length === 1 && c < '\x80' && !/[0-9A-Za-z<>]/.test(c)) return { k: 'lit', cp: c.charCodeAt(0) };
    const special: Record<string, number> = { a: 7, f: 12, t: 9, n: 10, r: 13, v: 11 };
    if (special[c] !== undefined) return { k: 'lit', cp: special[c] as number };
    const assertion = this.assertionEscape(c);
    if (assertion !== undefined) {
      if (inClass) throw this.error(`unrecognized escape sequence '\\${c}' in a character class`);
      return { k: 'assert', text: assertion };
    }
    throw this.error(`unrecognized escape sequence '\\${c}'`);
  }

  private assertionEscape(c: string): string | undefined {
    switch (c) {
      case 'A':
        return ASSERTION_SOURCE.start;
      case 'z':
        return ASSERTION_SOURCE.end;
      case 'B':
        return ASSERTION_SOURCE.not_word;
      case '<':
        return ASSERTION_SOURCE.word_start;
      case '>':
        return ASSERTION_SOURCE.word_end;
      case 'b': {
        if (this.ch() !== '{') return ASSERTION_SOURCE.word;
        // `\b{start}` and friends; `\b{5}` stays a counted repetition of `\b`.
        const at = this.i;
        this.bumpSpace();
        if (!/[A-Za-z-]/.test(this.ch())) {
          this.i = at;
          return ASSERTION_SOURCE.word;
        }
        let name = '';
        while (!this.eof() && /[A-Za-z-]/.test(this.ch())) {
          name += this.ch();
          this.bumpSpace();
        }
        if (this.ch() !== '}') throw this.error('special word boundary assertion is either unclosed or contains an invalid character');
        this.bump();
        const kinds: Record<string, keyof typeof ASSERTION_SOURCE> = { start: 'word_start', end: 'word_end', 'start-half': 'word_start_half', 'end-half': 'word_end_half' };
        const kind = kinds[name];
        if (kind === undefined) throw this.error(`unrecognized special word boundary assertion '${name}'`);
        return ASSERTION_SOURCE[kind];
      }
      default:
        return undefined;
    }
  }

  /** `\x7F`, `\x{…}`, `\u007F`, `\u{…}`, `\U0000007F`, `\U{…}` — at the `x`/`u`/`U`. */
  private hex(): number {
    const digitsFor = { x: 2, u: 4, U: 8 }[this.ch() as 'x' | 'u' | 'U'];
    this.bumpSpace();
    if (this.eof()) throw this.error('incomplete escape sequence, reached end of pattern prematurely');
    let hex = '';
    if (this.ch() === '{') {
      for (;;) {
        this.bumpSpace();
        if (this.eof()) throw this.error('incomplete escape sequence, reached end of pattern prematurely');
        if (this.ch() === '}') break;
        if (!isHex(this.ch())) throw this.error('hexadecimal literal is not a Unicode scalar value');
        hex += this.ch();
      }
      this.bumpSpace();
      if (hex === '') throw this.error('hexadecimal literal empty');
    } else {
      for (let k = 0; k < digitsFor; k++) {
        if (k > 0) this.bumpSpace();
        if (this.eof()) throw this.error('incomplete escape sequence, reached end of pattern prematurely');
        if (!isHex(this.ch())) throw this.error('invalid hexadecimal digit');
        hex += this.ch();
      }
      this.bumpSpace();
    }
    const cp = hex.length > 8 ? Infinity : Number.parseInt(hex, 16);
    if (!(cp <= 0x10ffff) || (cp >= 0xd800 && cp <= 0xdfff)) throw this.error('hexadecimal literal is not a Unicode scalar value');
    return cp;
  }

  /** `\pL`, `\p{Name}`, `\p{name=value}`, `\p{name:value}`, `\p{name!=value}` (and `\P…`) — at the `p`. */
  private unicodeClass(): CharSet {
    let negated = this.ch() === 'P';
    this.bumpSpace();
    if (this.eof()) throw this.error('incomplete escape sequence, reached end of pattern prematurely');
    let name = '';
    if (this.ch() === '{') {
      for (;;) {
        this.bumpSpace();
        if (this.eof()) throw this.error('incomplete escape sequence, reached end of pattern prematurely');
        if (this.ch() === '}') break;
        name += this.ch();
      }
      this.bump();
    } else {
      if (this.ch() === '\\') throw this.error('invalid Unicode character class');
      name = this.ch();
      this.bumpSpace();
    }
    let body = name;
    const ne = name.indexOf('!=');
    if (ne >= 0) {
      negated = !negated;
      body = `${name.slice(0, ne)}=${name.slice(ne + 2)}`;
    } else if (name.includes(':')) body = name.replace(':', '=');
    const escape = `\\p{${body}}`;
    try {
      new RegExp(escape, 'u');
    } catch {
      throw this.error(`Unicode property not found: '${name}' (write the name V8 knows, e.g. \\p{Script=Greek} rather than \\p{Greek})`);
    }
    // `\P{…}` becomes `[^\p{…}]`: under `i`, V8's `\P{Ll}` would match `a` (Rust's does not).
    return negated ? not(set(escape)) : set(escape);
  }

  /** A bracket class `[…]` at its `[` (Rust's parse_set_class, with its stack made recursion). */
  private bracket(): CharSet {
    if (++this.depth > NEST_LIMIT) throw this.error(`exceed the maximum number of nested parentheses/brackets (${NEST_LIMIT})`);
    const unclosed = (): RustSyntaxError => this.error('unclosed character class');
    this.bumpSpace();
    if (this.eof()) throw unclosed();
    let negated = false;
    if (this.ch() === '^') {
      negated = true;
      this.bumpSpace();
      if (this.eof()) throw unclosed();
    }
    let items: CharSet[] = [];
    // Any number of leading `-` are literals; then a `]` first is a literal (an empty class cannot be written).
    while (this.ch() === '-') {
      items.push(set('\\-'));
      this.bumpSpace();
      if (this.eof()) throw unclosed();
    }
    if (items.length === 0 && this.ch() === ']') {
      items.push(set('\\]'));
      this.bumpSpace();
      if (this.eof()) throw unclosed();
    }
    let pending: { op: 'and' | 'minus' | 'xor'; lhs: CharSet } | null = null;
    const close = (): CharSet => {
      const rhs = union(items);
      return pending === null ? rhs : { k: pending.op, a: pending.lhs, b: rhs };
    };
    for (;;) {
      this.space();
      if (this.eof()) throw unclosed();
      const c = this.ch();
      const next = this.src.charAt(this.i + 1);
      if (c === '[') {
        items.push(this.asciiClass() ?? this.bracket());
      } else if (c === ']') {
        this.bump();
        this.depth--;
        const result = close();
        return negated ? not(result) : result;
      } else if ((c === '&' || c === '-' || c === '~') && next === c) {
        this.i += 2;
        pending = { op: c === '&' ? 'and' : c === '-' ? 'minus' : 'xor', lhs: close() };
        items = [];
      } else items.push(this.classRange());
    }
  }

  /** `[:name:]` or `[:^name:]` at a `[` inside a class; null (nothing consumed) when it is not one. */
  private asciiClass(): CharSet | null {
    const m = /^\[:(\^?)([^:]*):\]/.exec(this.src.slice(this.i));
    const items = m ? ASCII_CLASSES[m[2] as string] : undefined;
    if (!m || !items || !Object.hasOwn(ASCII_CLASSES, m[2] as string)) return null;
    this.i += m[0].length;
    return m[1] === '^' ? not(set(...items)) : set(...items);
  }

  /** A class item: a literal, an escape, or a range of two literals. */
  private classRange(): CharSet {
    const first = this.classItem();
    this.space();
    if (this.eof()) throw this.error('unclosed character class');
    if (this.ch() !== '-' || this.peekSpace() === ']' || this.peekSpace() === '-') {
      return first.k === 'lit' ? set(literal(first.cp, true)) : first.set;
    }
    this.bumpSpace();
    if (this.eof()) throw this.error('unclosed character class');
    const second = this.classItem();
    if (first.k !== 'lit' || second.k !== 'lit') throw this.error('invalid range boundary, must be a literal');
    if (first.cp > second.cp) throw this.error('invalid character class range, the start must be <= the end');
    return set(`${literal(first.cp, true)}-${literal(second.cp, true)}`);
  }

  private classItem(): { k: 'lit'; cp: number } | { k: 'set'; set: CharSet } {
    if (this.ch() === '\\') {
      const e = this.escape(true);
      if (e.k === 'assert') throw this.error('assertions are not allowed in a character class');
      return e;
    }
    const cp = this.src.codePointAt(this.i) as number;
    this.bump();
    return { k: 'lit', cp };
  }
}
