/**
 * Syntax of the filter language: text → tokens → AST (reference §7.1–7.2, plus `>=`, `<=` and `@`
 * after a dot). Kept apart from evaluation so each file reads at once. Input length and nesting are
 * bounded so a hostile query string cannot exhaust the stack or burn CPU in the parser.
 */
import { DbxError } from './errors.js';

export type CompareOp = '=' | '!=' | '>' | '<' | '>=' | '<=';

/** Defaults of `[query] filter_chars_max` / `filter_depth_max`. */
export const FILTER_CHARS_MAX = 4096;
export const FILTER_DEPTH_MAX = 64;

/**
 * What a filter may cost to parse and to evaluate per row: evaluation is O(length) per row (each
 * comparison once; LIKE O(text × pattern)) and recursion O(depth), so both are bounded here, at
 * validation, before any row is read.
 */
export interface FilterLimits {
  chars_max: number;
  depth_max: number;
}

export const FILTER_LIMITS: FilterLimits = { chars_max: FILTER_CHARS_MAX, depth_max: FILTER_DEPTH_MAX };

export type FilterValue = string | number | boolean | null;

export type FilterExpr =
  | { kind: 'and'; items: FilterExpr[] }
  | { kind: 'or'; items: FilterExpr[] }
  | { kind: 'not'; expr: FilterExpr }
  // `text`/`texts`: the source digits of a literal beyond 2^53 (an integer, or a decimal such as
  // `…304.0`), which a number cannot hold exactly (event ids); present only then, so ordinary ASTs
  // stay as they were.
  | { kind: 'compare'; field: string; op: CompareOp; value: FilterValue; text?: string }
  | { kind: 'in'; field: string; values: FilterValue[]; texts?: (string | null)[] }
  | { kind: 'like'; field: string; pattern: FilterValue };

export type Token =
  | { kind: 'ident'; text: string }
  | { kind: 'string'; text: string }
  // Numbers stay text until the parser needs them, so a lexing error later in the input is reported
  // first, as the original does (it lexes everything before parsing anything).
  | { kind: 'number'; text: string }
  | { kind: 'bool'; value: boolean }
  | { kind: 'null' }
  | { kind: 'and' | 'or' | 'not' | 'in' | 'like' }
  | { kind: 'op'; op: CompareOp }
  | { kind: '(' | ')' | '[' | ']' | ',' };

export function filterError(detail: string): DbxError {
  return new DbxError('invalid_input', `invalid filter expression: ${detail}`);
}

const KEYWORDS: ReadonlyMap<string, Token> = new Map<string, Token>([
  ['AND', { kind: 'and' }],
  ['OR', { kind: 'or' }],
  ['NOT', { kind: 'not' }],
  ['IN', { kind: 'in' }],
  ['LIKE', { kind: 'like' }],
  ['TRUE', { kind: 'bool', value: true }],
  ['FALSE', { kind: 'bool', value: false }],
  ['NULL', { kind: 'null' }],
]);

const SINGLE: ReadonlyMap<string, Token> = new Map<string, Token>([
  ['(', { kind: '(' }],
  [')', { kind: ')' }],
  ['[', { kind: '[' }],
  [']', { kind: ']' }],
  [',', { kind: ',' }],
  ['=', { kind: 'op', op: '=' }],
]);

const isIdentStart = (c: string): boolean => /^[A-Za-z_$]$/.test(c);
const isIdentPart = (c: string): boolean => /^[A-Za-z0-9_.$]$/.test(c);
const isDigit = (c: string): boolean => c >= '0' && c <= '9';

export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source.charAt(i);
    if (/\s/.test(c)) {
      i += 1;
    } else if (isIdentStart(c)) {
      let end = i + 1;
      // `@` only right after a dot: extension keys start with `@` (`extensions.@trace.id`), and
      // nothing else needs it, so `a@b` stays an error rather than a silent field name.
      while (end < source.length) {
        const d = source.charAt(end);
        if (isIdentPart(d) || (d === '@' && source.charAt(end - 1) === '.')) end += 1;
        else break;
      }
      const text = source.slice(i, end);
      tokens.push(KEYWORDS.get(text.toUpperCase()) ?? { kind: 'ident', text });
      i = end;
    } else if (c === '"' || c === "'") {
      const [text, end] = readString(source, i);
      tokens.push({ kind: 'string', text });
      i = end;
    } else if (isDigit(c) || c === '-') {
      let end = i + 1;
      while (end < source.length && (isDigit(source.charAt(end)) || source.charAt(end) === '.')) end += 1;
      tokens.push({ kind: 'number', text: source.slice(i, end) });
      i = end;
    } else if (c === '!' || c === '>' || c === '<') {
      const withEq = source.charAt(i + 1) === '=';
      if (c === '!' && !withEq) throw filterError("expected '=' after '!'");
      const op = (withEq ? `${c}=` : c) as CompareOp;
      tokens.push({ kind: 'op', op });
      i += withEq ? 2 : 1;
    } else {
      const single = SINGLE.get(c);
      if (single === undefined) {
        const whole = String.fromCodePoint(source.codePointAt(i) ?? 0);
        throw filterError(`unexpected character '${whole}'`);
      }
      tokens.push(single);
      i += 1;
    }
  }
  return tokens;
}

/** A backslash takes the next character verbatim; there are no named escapes like `\n`. */
function readString(source: string, start: number): [string, number] {
  const quote = source.charAt(start);
  let text = '';
  let i = start + 1;
  while (i < source.length) {
    const c = source.charAt(i);
    if (c === quote) return [text, i + 1];
    if (c === '\\') {
      if (i + 1 >= source.length) throw filterError('unterminated escape sequence');
      text += source.charAt(i + 1);
      i += 2;
    } else {
      text += c;
      i += 1;
    }
  }
  throw filterError('unterminated string literal');
}

export function parseFilter(source: string, limits: FilterLimits = FILTER_LIMITS): FilterExpr {
  if (source.length > limits.chars_max) {
    // A length limit is query validation (like every other bounded parameter), not a syntax error.
    throw new DbxError('validation_failed', `query.filter: filter exceeds ${limits.chars_max} characters ([query] filter_chars_max)`, [
      { field: 'query.filter', message: `at most ${limits.chars_max} characters` },
    ]);
  }
  const tokens = tokenize(source);
  if (tokens.length === 0) throw filterError('filter cannot be empty');
  const parser = new Parser(tokens, limits.depth_max);
  const expr = parser.expression(0);
  if (!parser.atEnd()) throw filterError('unexpected tokens after expression');
  return expr;
}

class Parser {
  private position = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly depthMax: number,
  ) {}

  atEnd(): boolean {
    return this.position >= this.tokens.length;
  }

  private peek(): Token | undefined {
    return this.tokens[this.position];
  }

  private next(): Token | undefined {
    const token = this.tokens[this.position];
    if (token !== undefined) this.position += 1;
    return token;
  }

  private accept(kind: Token['kind']): boolean {
    if (this.peek()?.kind !== kind) return false;
    this.position += 1;
    return true;
  }

  private expect(kind: Token['kind']): void {
    if (!this.accept(kind)) throw filterError(`expected '${kind}'`);
  }

  /** `depth` counts parentheses and NOTs: the only places the parser (and evaluator) recurse. */
  expression(depth: number): FilterExpr {
    return this.chain('or', () => this.chain('and', () => this.not(depth)));
  }

  private chain(kind: 'and' | 'or', operand: () => FilterExpr): FilterExpr {
    const first = operand();
    if (this.peek()?.kind !== kind) return first;
    // A parenthesised group of the same operator is flattened, as the original does; it is the same
    // predicate either way and keeps trees shallow.
    const items = first.kind === kind ? [...first.items] : [first];
    while (this.accept(kind)) {
      const item = operand();
      if (item.kind === kind) items.push(...item.items);
      else items.push(item);
    }
    return { kind, items };
  }

  private not(depth: number): FilterExpr {
    if (!this.accept('not')) return this.primary(depth);
    return { kind: 'not', expr: this.not(this.enter(depth)) };
  }

  private primary(depth: number): FilterExpr {
    if (!this.accept('(')) return this.comparison();
    const expr = this.expression(this.enter(depth));
    this.expect(')');
    return expr;
  }

  private enter(depth: number): number {
    if (depth + 1 > this.depthMax) throw filterError(`nesting deeper than ${this.depthMax} levels`);
    return depth + 1;
  }

  private comparison(): FilterExpr {
    const head = this.next();
    if (head?.kind !== 'ident') throw filterError('expected field name in comparison');
    const field = head.text;
    const negated = this.accept('not');
    const op = this.next();
    let expr: FilterExpr;
    if (op?.kind === 'op') {
      const [value, text] = this.literal();
      expr = text === undefined ? { kind: 'compare', field, op: op.op, value } : { kind: 'compare', field, op: op.op, value, text };
    } else if (op?.kind === 'like') expr = { kind: 'like', field, pattern: this.value() };
    else if (op?.kind === 'in') expr = this.list(field);
    else throw filterError('expected comparison operator');
    return negated ? { kind: 'not', expr } : expr;
  }

  /** `[ ]` is allowed (matches nothing) and so is a trailing comma, as in the original. */
  private list(field: string): FilterExpr {
    this.expect('[');
    const values: FilterValue[] = [];
    const texts: (string | null)[] = [];
    while (this.peek()?.kind !== ']') {
      const [value, text] = this.literal();
      values.push(value);
      texts.push(text ?? null);
      if (!this.accept(',')) break;
    }
    this.expect(']');
    return texts.some((t) => t !== null) ? { kind: 'in', field, values, texts } : { kind: 'in', field, values };
  }

  /** A value, with its digits when it is an integer too large for a number to hold exactly. */
  private literal(): [FilterValue, string | undefined] {
    const token = this.peek();
    const value = this.value();
    // Also a decimal beyond 2^53 (`3882…304.0`): an event id literal compares on its digits.
    const exact = token?.kind === 'number' && /^\d+(?:\.\d*)?$/.test(token.text) && typeof value === 'number' && Math.abs(value) > Number.MAX_SAFE_INTEGER ? token.text : undefined;
    return [value, exact];
  }

  private value(): FilterValue {
    const token = this.next();
    if (token === undefined) throw filterError('unexpected end of filter');
    switch (token.kind) {
      case 'string':
      case 'ident':
        return token.text;
      case 'bool':
        return token.value;
      case 'null':
        return null;
      case 'number': {
        const value = Number(token.text);
        if (!Number.isFinite(value)) throw filterError(`invalid number: ${token.text}`);
        return value;
      }
      default:
        throw filterError('invalid value literal');
    }
  }
}
