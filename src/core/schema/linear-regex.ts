/**
 * A linear-time matcher for schema regexes (a Thompson NFA run as a Pike VM, no captures).
 *
 * Why: V8's engine backtracks, so `^(a+)+$` against 40 `a`s and a `!` runs for ages, and a write
 * validated against it held its shard worker (every write of the worker) for good. The original's
 * Rust engine is linear; so is this: O(pattern × input) steps whatever the input, with no
 * recursion over the input. V8's own linear engine (`--enable-experimental-regexp-engine`) takes
 * neither the `u` nor the `i` flag on Node 20, so it cannot stand in.
 *
 * Input is the V8 source `regex.ts` translated a Rust pattern into (flags `u` or `iu`; Rust has no
 * lookaround or backreferences). The only lookarounds in it are the ones regex.ts writes for Rust's
 * assertions — ASSERTION_SOURCE, matched here as text — and its one-character class atoms
 * `(?=X)[\s\S]` (set operations written as lookaheads). Structure — alternation, groups,
 * quantifiers, anchors, word boundaries — is ours; each single-character atom (a literal, an
 * escape, a class, a class atom, `\p{…}`) is decided by V8 itself, compiled alone as `^(?:atom)$`
 * with the pattern's flags, so character semantics (case folding, Unicode properties) are exactly
 * V8's. Word boundaries use Rust's Unicode `\w` (WORD_CLASS); line boundaries are Rust's (`\n`,
 * or `\r`/`\n` in CRLF mode). Searched unanchored, like Rust's `is_match`.
 */

type Assertion =
  | 'start'
  | 'end'
  | 'line_start'
  | 'line_end'
  | 'crlf_start'
  | 'crlf_end'
  | 'word'
  | 'not_word'
  | 'word_start'
  | 'word_end'
  | 'word_start_half'
  | 'word_end_half';

/** Rust's `\w` in Unicode mode. */
export const WORD_CLASS = '[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]';
const W = WORD_CLASS;

/**
 * The V8 source regex.ts writes for each of Rust's assertions (V8's own `\b`, `^`/`$` under `m`
 * are ASCII or take `\r`, U+2028, U+2029): the matcher recognises exactly these texts.
 */
export const ASSERTION_SOURCE: Record<Assertion, string> = {
  start: '(?<![\\s\\S])',
  end: '(?![\\s\\S])',
  line_start: '(?<![^\\n])',
  line_end: '(?![^\\n])',
  // CRLF mode: `\r` and `\n` both end a line, but never between the two of a `\r\n`.
  crlf_start: '(?<![^\\n\\r])(?!(?<=\\r)\\n)',
  crlf_end: '(?![^\\n\\r])(?!(?<=\\r)\\n)',
  word: `(?:(?<=${W})(?!${W})|(?<!${W})(?=${W}))`,
  not_word: `(?:(?<=${W})(?=${W})|(?<!${W})(?!${W}))`,
  word_start: `(?<!${W})(?=${W})`,
  word_end: `(?<=${W})(?!${W})`,
  word_start_half: `(?<!${W})`,
  word_end_half: `(?!${W})`,
};
/** Longest first: `word_start` begins with `word_start_half`'s text. */
const ASSERTION_TEXTS = (Object.entries(ASSERTION_SOURCE) as Array<[Assertion, string]>).sort((a, b) => b[1].length - a[1].length);

type Node =
  | { kind: 'atom'; source: string }
  | { kind: 'assert'; what: Assertion }
  | { kind: 'seq'; items: Node[] }
  | { kind: 'alt'; options: Node[] }
  | { kind: 'repeat'; node: Node; min: number; max: number }; // max = Infinity: unbounded

type Inst =
  | { op: 'char'; test: (cp: number) => boolean; next: number }
  | { op: 'split'; a: number; b: number }
  | { op: 'jmp'; to: number }
  | { op: 'assert'; what: Assertion; next: number }
  | { op: 'match' };

/** Instructions a pattern may compile to (counted repetitions expand): bounds the per-step cost. */
export const LINEAR_PROGRAM_MAX = 20_000;

export class RegexTooLarge extends Error {}

/** Non-ASCII code points remembered per atom. */
const WIDE_CACHE_MAX = 4096;

export interface LinearRegex {
  test(input: string): boolean;
}

/**
 * Compiles the matcher. A pattern whose counted repetitions expand past LINEAR_PROGRAM_MAX throws
 * RegexTooLarge — unless it nests no quantifier inside a repeated group (`^.{0,10000}$`,
 * `[a-z]{1,6000}x`): then backtracking cannot blow up, and `fallback` (V8's RegExp) is used.
 */
export function compileLinear(source: string, flags: string, fallback: RegExp): LinearRegex {
  // regex.ts writes line assertions itself; V8's `m` (and its line terminators) is not modelled.
  if (flags.includes('m')) throw new SyntaxError('the m flag is not supported (line assertions are written out)');
  const tree = new Parser(source).parse();
  const emitter = new Emitter(flags);
  let program: Inst[];
  try {
    program = emitter.program(tree);
  } catch (err) {
    if (err instanceof RegexTooLarge && !nestsRepeats(tree, false)) return { test: (input) => fallback.test(input) };
    throw err;
  }
  const isWord = emitter.atomTest(WORD_CLASS);
  return { test: (input) => run(program, input, isWord) };
}

/** Whether a repeated node holds another repetition (what makes a backtracking engine exponential). */
function nestsRepeats(node: Node, insideRepeat: boolean): boolean {
  switch (node.kind) {
    case 'atom':
    case 'assert':
      return false;
    case 'seq':
      return node.items.some((n) => nestsRepeats(n, insideRepeat));
    case 'alt':
      // A repeated alternation (`(a|aa)*`) is as ambiguous as a nested quantifier.
      return insideRepeat || node.options.some((n) => nestsRepeats(n, insideRepeat));
    case 'repeat':
      return insideRepeat || nestsRepeats(node.node, node.max > 1);
  }
}

class Parser {
  private i = 0;
  constructor(private readonly src: string) {}

  parse(): Node {
    const node = this.alternation();
    if (this.i < this.src.length) throw new SyntaxError(`unexpected '${this.src[this.i]}' at ${this.i}`);
    return node;
  }

  private alternation(): Node {
    const options = [this.sequence()];
    while (this.src[this.i] === '|') {
      this.i++;
      options.push(this.sequence());
    }
    return options.length === 1 ? (options[0] as Node) : { kind: 'alt', options };
  }

  private sequence(): Node {
    const items: Node[] = [];
    while (this.i < this.src.length && this.src[this.i] !== '|' && this.src[this.i] !== ')') items.push(this.quantified(this.atom()));
    return { kind: 'seq', items };
  }

  private quantified(node: Node): Node {
    for (;;) {
      const c = this.src[this.i];
      let min: number;
      let max: number;
      if (c === '*') [min, max] = [0, Infinity];
      else if (c === '+') [min, max] = [1, Infinity];
      else if (c === '?') [min, max] = [0, 1];
      else if (c === '{') {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i));
        if (!m) return node; // a literal brace (V8 accepted it as one under `u` only when valid; kept as is)
        min = Number(m[1]);
        max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
        this.i += m[0].length - 1;
      } else return node;
      this.i++;
      if (this.src[this.i] === '?') this.i++; // lazy: the same set of matches for a yes/no answer
      if (node.kind === 'assert') continue; // a repeated assertion asserts the same thing
      node = { kind: 'repeat', node, min, max };
    }
  }

  private atom(): Node {
    const src = this.src;
    const c = src[this.i] as string;
    if (c === '(') {
      // The assertions regex.ts writes; then its class atoms `(?=X)[\s\S]` (Rust has no lookaround).
      for (const [what, text] of ASSERTION_TEXTS) {
        if (src.startsWith(text, this.i)) {
          this.i += text.length;
          return { kind: 'assert', what };
        }
      }
      if (src.startsWith('(?=', this.i)) return { kind: 'atom', source: this.classAtomText() };
      this.i++;
      if (src[this.i] === '?') {
        if (src[this.i + 1] === ':') this.i += 2;
        else if (src[this.i + 1] === '<') {
          const end = src.indexOf('>', this.i);
          if (end < 0) throw new SyntaxError('unterminated group name');
          this.i = end + 1;
        } else throw new SyntaxError(`unsupported group at ${this.i}`);
      }
      const inner = this.alternation();
      if (src[this.i] !== ')') throw new SyntaxError('missing )');
      this.i++;
      return inner;
    }
    if (c === '^' || c === '$') {
      this.i++;
      return { kind: 'assert', what: c === '^' ? 'start' : 'end' };
    }
    if (c === '[') return { kind: 'atom', source: this.classText() };
    if (c === '\\') {
      const n = src[this.i + 1];
      if (n === 'b' || n === 'B') {
        this.i += 2;
        return { kind: 'assert', what: n === 'b' ? 'word' : 'not_word' };
      }
      return { kind: 'atom', source: this.escapeText() };
    }
    const cp = src.codePointAt(this.i) as number;
    const text = String.fromCodePoint(cp);
    this.i += text.length;
    return { kind: 'atom', source: text };
  }

  /** One escape as source text: `\p{L}`, `\x{…}`-style braces, `\uXXXX`, `\cX`, or two characters. */
  private escapeText(): string {
    const rest = this.src.slice(this.i);
    // An escaped surrogate pair (`\ud83d\ude00`) is one character to V8 under `u`: keep it one atom.
    const m =
      /^\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}/.exec(rest) ??
      /^\\(?:[pPxu]\{[^}]*\}|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|c[A-Za-z])/.exec(rest) ??
      /^\\[\s\S]/u.exec(rest);
    if (!m) throw new SyntaxError('dangling \\');
    this.i += m[0].length;
    return m[0];
  }

  /** A class atom `(?=X)[\s\S]` (X: classes, escapes and nested lookarounds of one character) as source text. */
  private classAtomText(): string {
    const start = this.i;
    let depth = 0;
    do {
      const c = this.src[this.i];
      if (c === undefined) throw new SyntaxError('unterminated lookahead');
      if (c === '\\') this.escapeText();
      else if (c === '[') this.classText();
      else {
        if (c === '(') depth++;
        else if (c === ')') depth--;
        this.i++;
      }
    } while (depth > 0);
    if (!this.src.startsWith('[\\s\\S]', this.i)) throw new SyntaxError(`unsupported lookahead at ${start}`);
    this.i += '[\\s\\S]'.length;
    return this.src.slice(start, this.i);
  }

  /** A whole class `[…]` as source text (escapes and a leading `]` handled as regex.ts left them). */
  private classText(): string {
    const start = this.i;
    this.i++;
    if (this.src[this.i] === '^') this.i++;
    while (this.i < this.src.length && this.src[this.i] !== ']') {
      if (this.src[this.i] === '\\') this.escapeText();
      else this.i++;
    }
    if (this.src[this.i] !== ']') throw new SyntaxError('missing ]');
    this.i++;
    return this.src.slice(start, this.i);
  }
}

class Emitter {
  private readonly insts: Inst[] = [];
  private readonly atoms = new Map<string, (cp: number) => boolean>();
  private readonly atomFlags: string;

  constructor(flags: string) {
    this.atomFlags = [...new Set(`u${flags}`.replace(/[gmy]/g, ''))].join('');
  }

  program(tree: Node): Inst[] {
    this.emit(tree);
    this.push({ op: 'match' });
    return this.insts;
  }

  private push(inst: Inst): number {
    if (this.insts.length >= LINEAR_PROGRAM_MAX) throw new RegexTooLarge(`the pattern expands to more than ${LINEAR_PROGRAM_MAX} steps (counted repetitions multiply)`);
    this.insts.push(inst);
    return this.insts.length - 1;
  }

  /** Emits `node`; its exits fall through to the next instruction emitted. */
  private emit(node: Node): void {
    switch (node.kind) {
      case 'atom': {
        const at = this.insts.length;
        this.push({ op: 'char', test: this.atomTest(node.source), next: at + 1 });
        return;
      }
      case 'assert': {
        const at = this.insts.length;
        this.push({ op: 'assert', what: node.what, next: at + 1 });
        return;
      }
      case 'seq':
        for (const item of node.items) this.emit(item);
        return;
      case 'alt': {
        const jumps: number[] = [];
        node.options.forEach((option, k) => {
          if (k === node.options.length - 1) return this.emit(option);
          const split = this.push({ op: 'split', a: 0, b: 0 });
          (this.insts[split] as { a: number }).a = split + 1;
          this.emit(option);
          jumps.push(this.push({ op: 'jmp', to: 0 }));
          (this.insts[split] as { b: number }).b = this.insts.length;
        });
        for (const j of jumps) (this.insts[j] as { to: number }).to = this.insts.length;
        return;
      }
      case 'repeat': {
        for (let k = 0; k < node.min; k++) this.emit(node.node);
        if (node.max === Infinity) {
          // L: split body, out; body; jmp L
          const split = this.push({ op: 'split', a: 0, b: 0 });
          (this.insts[split] as { a: number }).a = split + 1;
          this.emit(node.node);
          this.push({ op: 'jmp', to: split });
          (this.insts[split] as { b: number }).b = this.insts.length;
          return;
        }
        const splits: number[] = [];
        for (let k = node.min; k < node.max; k++) {
          const split = this.push({ op: 'split', a: 0, b: 0 });
          (this.insts[split] as { a: number }).a = split + 1;
          splits.push(split);
          this.emit(node.node);
        }
        for (const s of splits) (this.insts[s] as { b: number }).b = this.insts.length;
        return;
      }
    }
  }

  atomTest(source: string): (cp: number) => boolean {
    const known = this.atoms.get(source);
    if (known) return known;
    const regex = new RegExp(`^(?:${source})$`, this.atomFlags);
    const ascii = new Int8Array(128); // 0 unknown, 1 yes, -1 no
    // Other code points, as met: bounded, so a value of many distinct characters cannot grow it.
    const wide = new Map<number, boolean>();
    const test = (cp: number): boolean => {
      if (cp < 128) {
        const seen = ascii[cp] as number;
        if (seen !== 0) return seen > 0;
        const yes = regex.test(String.fromCharCode(cp));
        ascii[cp] = yes ? 1 : -1;
        return yes;
      }
      const seen = wide.get(cp);
      if (seen !== undefined) return seen;
      const yes = regex.test(String.fromCodePoint(cp));
      if (wide.size < WIDE_CACHE_MAX) wide.set(cp, yes);
      return yes;
    };
    this.atoms.set(source, test);
    return test;
  }
}

/** The Pike VM: every thread advances one code point at a time; a state is held once per step. */
function run(program: Inst[], input: string, wordAtom: (cp: number) => boolean): boolean {
  // Rust's Unicode `\w`, decided by V8 (WORD_CLASS under the pattern's flags).
  const isWord = (cp: number | undefined): boolean => cp !== undefined && wordAtom(cp);
  const seen = new Int32Array(program.length).fill(-1);
  let current: number[] = [];
  let next: number[] = [];
  let generation = 0;
  let prev: number | undefined;
  const holds = (what: Assertion, at: number, here: number | undefined): boolean => {
    switch (what) {
      case 'start':
        return at === 0;
      case 'end':
        return at === input.length;
      case 'line_start':
        return at === 0 || prev === 0x0a;
      case 'line_end':
        return here === undefined || here === 0x0a;
      case 'crlf_start':
        return at === 0 || prev === 0x0a || (prev === 0x0d && here !== 0x0a);
      case 'crlf_end':
        return here === undefined || here === 0x0d || (here === 0x0a && prev !== 0x0d);
      case 'word':
        return isWord(prev) !== isWord(here);
      case 'not_word':
        return isWord(prev) === isWord(here);
      case 'word_start':
        return !isWord(prev) && isWord(here);
      case 'word_end':
        return isWord(prev) && !isWord(here);
      case 'word_start_half':
        return !isWord(prev);
      case 'word_end_half':
        return !isWord(here);
    }
  };
  // Adds `pc` and everything reachable from it without reading (an explicit stack: no recursion).
  const add = (list: number[], start: number, at: number, here: number | undefined): boolean => {
    const stack = [start];
    while (stack.length > 0) {
      const pc = stack.pop() as number;
      if (seen[pc] === generation) continue;
      seen[pc] = generation;
      const inst = program[pc] as Inst;
      switch (inst.op) {
        case 'match':
          return true;
        case 'jmp':
          stack.push(inst.to);
          break;
        case 'split':
          stack.push(inst.b, inst.a);
          break;
        case 'assert':
          if (holds(inst.what, at, here)) stack.push(inst.next);
          break;
        case 'char':
          list.push(pc);
          break;
      }
    }
    return false;
  };
  for (let at = 0; ; ) {
    const here = at < input.length ? input.codePointAt(at) : undefined;
    // Unanchored: a new thread starts at every position (the leading `.*?` of a search).
    if (add(current, 0, at, here)) return true;
    if (here === undefined) return false;
    const width = here > 0xffff ? 2 : 1;
    generation++;
    next.length = 0;
    const afterAt = at + width;
    const after = afterAt < input.length ? input.codePointAt(afterAt) : undefined;
    prev = here;
    for (const pc of current) {
      const inst = program[pc] as Extract<Inst, { op: 'char' }>;
      if (inst.test(here) && add(next, inst.next, afterAt, after)) return true;
    }
    // `current` now holds the threads added under this generation; the next start thread joins them.
    [current, next] = [next, current];
    at = afterAt;
  }
}
