/**
 * The linear-time schema regex matcher (core/schema/linear-regex.ts) answers exactly as V8's
 * backtracking engine on the same translated pattern (a curated list plus seeded random
 * patterns), and stays linear on the inputs that make V8 backtrack for ages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileSchemaRegex } from '../src/core/schema/regex.js';

const PATTERNS = [
  '(?i)^abc', '^[A-Z]', '^[a-z😀]+$', '^\\d{5}$', '^\\p{Lu}\\pL+$', 'a|b|c', '^(a|ab)(c|bcd)(d*)$', '\\bfoo\\b', '\\Bo',
  '(?m)^b$', '(?s)a.b', 'a.b', '^$', '', 'x*', '^(?:[a-z]+\\.)*[a-z]+$', '\\Aab\\z', '[^\\]a]+', '[]a]', 'a{2,3}b', 'a{2,}',
  'a{0}b', '(?P<n>ab)+', '(?<n>x)y?', '[\\p{L}\\d_-]+', '^\\x41\\u0042$', '(?i)straße', '(?i)[a-c]+$', '\\.\\*', '^(a*)*$',
  '(a|b)*abb', '[😀-😂]', '^.$', '(?i)ǅ', '\\s+\\S', '\\w+@\\w+\\.com', '^[^@]+@[^@]+$', 'é', '(?i)É', '^(ab|a)(bc|c)?$',
];
const INPUTS = [
  '', 'a', 'abc', 'ABC', 'xabc', 'Abc', 'aB', '12345', '1234', 'Hello', 'hello', 'a😀b', '😀', '😁', 'ab', 'abcd', 'abbcd',
  'foo bar', 'afoob', 'a\nb', 'a\nb\nc', 'b', 'aab', 'aaab', 'aaaa', 'abab', 'x.y.z', 'x..y', 'STRASSE', 'straße', 'ǆ', 'Ǆ',
  ' a', 'me@x.com', '@', 'É', 'é', 'abc\n', '\uD800', 'a\uD800b', 'ababb', 'AB', 'a.*',
];

function agree(pattern: string, inputs: string[]): number {
  const compiled = compileSchemaRegex(pattern);
  if (!compiled.ok) return 0;
  for (const input of inputs) {
    assert.equal(compiled.matcher.test(input), compiled.regex.test(input), `${JSON.stringify(pattern)} on ${JSON.stringify(input)}`);
  }
  return inputs.length;
}

test('schema regex - the linear matcher answers as V8 does on a curated list', () => {
  let checked = 0;
  for (const p of PATTERNS) checked += agree(p, INPUTS);
  assert.ok(checked > 1500);
});

test('schema regex - the linear matcher answers as V8 does on seeded random patterns', () => {
  let seed = 42;
  const next = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const parts = ['a', 'b', 'c', '.', '*', '+', '?', '|', '(', ')', '[', ']', '^', '$', '{2}', '{1,3}', '\\d', '\\w', 'x', '\\b', '(?:', '[^a]'];
  const chars = 'abcx1 _.';
  let checked = 0;
  for (let t = 0; t < 5000; t++) {
    const pattern = Array.from({ length: 1 + next(8) }, () => parts[next(parts.length)]).join('');
    const inputs = Array.from({ length: 8 }, () => Array.from({ length: next(8) }, () => chars[next(chars.length)]).join(''));
    checked += agree(pattern, inputs);
  }
  assert.ok(checked > 5000, `${checked} comparisons`);
});

test('schema regex - nested and stacked quantifiers stay linear on hostile input', () => {
  for (const [pattern, input] of [
    ['^(a+)+$', `${'a'.repeat(100_000)}!`],
    ['^(a|aa)*$', `${'a'.repeat(100_000)}!`],
    ['^\\d+\\d+\\d+$', `${'1'.repeat(100_000)}!`],
  ] as const) {
    const compiled = compileSchemaRegex(pattern);
    assert.ok(compiled.ok);
    const started = performance.now();
    assert.equal(compiled.matcher.test(input), false);
    // V8 needs longer than the age of the universe for the first; linear is milliseconds.
    assert.ok(performance.now() - started < 5_000, `${pattern}: ${(performance.now() - started).toFixed(0)} ms`);
  }
});

test('schema regex - a counted repetition that expands past the program bound is refused at save time', () => {
  const refused = compileSchemaRegex('(a{100}){1000}');
  assert.equal(refused.ok, false);
  assert.match((refused as { message: string }).message, /more than \d+ steps/);
});

test('schema regex - large counted repetitions without nesting are accepted (V8 runs them); a stored pattern never fails a worker', () => {
  for (const pattern of ['^.{0,10000}$', '^[a-z]{1,10000}$', '^\\d{20000}$']) {
    const compiled = compileSchemaRegex(pattern);
    assert.ok(compiled.ok, pattern);
    assert.equal(compiled.matcher.test('a'.repeat(50)), compiled.regex.test('a'.repeat(50)));
  }
  const stored = compileSchemaRegex('(a+){20000}', { stored: true });
  assert.ok(stored.ok, 'a stored pattern compiles (on V8) whatever its size');
});

test('schema regex - word boundaries, multiline anchors and escaped surrogate pairs as V8 has them', () => {
  for (const [pattern, input] of [
    ['(?i)\\b', '\u017F'], ['(?i)a\\b', 'a\u017F'], ['(?m)^b', 'a\rb'], ['(?m)a$', 'a\rb'], ['(?m)^b', 'a\u2028b'],
    ['\\ud83d\\ude00', '😀'], ['^\\ud83d\\ude00$', '😀'], ['[\\ud83d\\ude00]', '😀'],
  ] as const) agree(pattern, [input]);
});
