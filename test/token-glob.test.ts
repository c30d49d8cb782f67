/** Token action and resource patterns: `*` and `?` globs, matched without backtracking. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { globMatch } from '../src/core/tokens.js';

test('token glob - `*` and `?` are the only wildcards; `_` and `%` are literal', () => {
  assert.equal(globMatch('aggregate.*', 'aggregate.read'), true);
  assert.equal(globMatch('order_*', 'order_item'), true);
  assert.equal(globMatch('order_*', 'orderXitem'), false);
  assert.equal(globMatch('a%c', 'abc'), false);
  assert.equal(globMatch('a?c', 'abc'), true);
  assert.equal(globMatch('a?c', 'ac'), false);
  assert.equal(globMatch('*', 'anything'), true);
  assert.equal(globMatch('exact', 'exact'), true);
  assert.equal(globMatch('exact', 'exactly'), false);
});

test('token glob - a pattern that makes a regex backtrack exponentially answers at once', () => {
  const started = process.hrtime.bigint();
  for (let i = 0; i < 100; i++) assert.equal(globMatch('*a*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(128)), false);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  // A backtracking regex takes minutes here; the linear matcher well under a second for all 100.
  assert.ok(ms < 1000, `100 matches took ${ms.toFixed(1)} ms`);
});
