/**
 * Tokens of the filter language (reference §7.1). Kept apart from the parser so each file reads at
 * once; everything here is ASCII-driven except string contents, which pass through untouched.
 */
import { DbxError } from './errors.js';

export type CompareOp = '=' | '!=' | '>' | '<' | '>=' | '<=';

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

const SINGLE: Readonly<Record<string, Token>> = {
  '(': { kind: '(' },
  ')': { kind: ')' },
  '[': { kind: '[' },
  ']': { kind: ']' },
  ',': { kind: ',' },
  '=': { kind: 'op', op: '=' },
};

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
      const single = SINGLE[c];
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
