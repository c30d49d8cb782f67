/**
 * RFC 8785 canonical JSON (core/canonical-json.ts), over which every event hash is taken: checked
 * against a plain reference implementation on seeded random JSON values, and on fixed cases.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalize } from '../src/core/index.js';

/** The scheme written as plainly as possible: sort the keys, recurse, JSON.stringify the leaves. */
function reference(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => reference(v ?? null)).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).filter((k) => record[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${reference(record[k])}`).join(',')}}`;
}

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const KEY_CHARS = ['a', 'b', 'Z', '_', '1', 'é', '\u0000', '"', '\\', '\ud83d\ude00', 'aa', 'B'];

function randomValue(rnd: () => number, depth: number): unknown {
  const pick = rnd();
  if (depth <= 0 || pick < 0.35) {
    const leaf = rnd();
    if (leaf < 0.2) return null;
    if (leaf < 0.35) return rnd() < 0.5;
    if (leaf < 0.6) return [0, -0, 1.5, -1e21, 1e-7, 123456789, 2 ** 53 + 1, 5e-324][Math.floor(rnd() * 8)];
    return Array.from({ length: Math.floor(rnd() * 4) }, () => KEY_CHARS[Math.floor(rnd() * KEY_CHARS.length)]).join('');
  }
  if (pick < 0.6) return Array.from({ length: Math.floor(rnd() * 5) }, () => randomValue(rnd, depth - 1));
  const out: Record<string, unknown> = {};
  const n = Math.floor(rnd() * 7);
  for (let i = 0; i < n; i++) {
    const key = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => KEY_CHARS[Math.floor(rnd() * KEY_CHARS.length)]).join('');
    out[key] = rnd() < 0.1 ? undefined : randomValue(rnd, depth - 1);
  }
  return out;
}

test('canonical-json - equals the plain reference on 5,000 seeded random values', () => {
  const rnd = random(20261204);
  for (let i = 0; i < 5000; i++) {
    const value = randomValue(rnd, 4);
    assert.equal(canonicalize(value), reference(value), JSON.stringify(value));
  }
});

test('canonical-json - fixed cases: key order by UTF-16 code units, no white space, undefined members dropped', () => {
  assert.equal(canonicalize({ b: 1, a: [true, null, { d: 'x', c: undefined }], A: 'é' }), '{"A":"é","a":[true,null,{"d":"x"}],"b":1}');
  // U+1F600 (a surrogate pair, 0xD83D…) sorts before U+FFFD but after U+00E9 by code units.
  assert.equal(canonicalize({ '\ufffd': 1, '\ud83d\ude00': 2, 'é': 3 }), '{"é":3,"😀":2,"\ufffd":1}');
  assert.equal(canonicalize([]), '[]');
  assert.equal(canonicalize({}), '{}');
  assert.throws(() => canonicalize({ n: Number.NaN }), /NaN/);
});
