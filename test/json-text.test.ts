/**
 * The I-JSON scan run on every body and import line before JSON.parse (core/json-text.ts):
 * duplicate member names (in small objects, searched in a list, and in large ones, in a Set),
 * __proto__, and numbers that underflow to 0, with the path of each problem.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonTextProblem } from '../src/core/index.js';

const objectOf = (names: string[]) => `{${names.map((n, i) => `"${n}":${i}`).join(',')}}`;

test('json-text - duplicate names are found in small and large objects, at their path', () => {
  const many = Array.from({ length: 40 }, (_, i) => `k${i}`);
  assert.equal(jsonTextProblem(objectOf(many)), undefined);
  for (const at of [1, 15, 16, 17, 39]) {
    const names = [...many.slice(0, at), `k${at === 39 ? 0 : at - 1}`, ...many.slice(at)];
    const problem = jsonTextProblem(`{"payload":{"list":[1,${objectOf(names)}]}}`);
    assert.equal(problem?.code, 'validation_failed', `duplicate inserted at ${at}`);
    assert.match(problem?.message ?? '', /duplicate member name/);
    assert.match(problem?.path ?? '', /^payload\.list\.1\.k\d+$/);
  }
  // The same name in sibling objects is no duplicate.
  assert.equal(jsonTextProblem('{"a":{"x":1},"b":{"x":2},"c":[{"x":3},{"x":4}]}'), undefined);
  assert.equal(jsonTextProblem('{"a":1,"__proto__":{}}')?.code, 'invalid_input');
});

test('json-text - only numbers that underflow to 0 are refused', () => {
  for (const fine of ['0', '-0', '0.0', '0e10', '-0.000E-5', '1e5', '12.5', '-3e-300', '123456789012345678901234567890', '5e-324']) {
    assert.equal(jsonTextProblem(`{"n":${fine}}`), undefined, fine);
  }
  for (const tiny of ['1e-400', '-2.5E-999', '0.0001e-330', '9e-325']) {
    const problem = jsonTextProblem(`{"payload":{"n":[0,${tiny}]}}`);
    assert.equal(problem?.code, 'validation_failed', tiny);
    assert.equal(problem?.path, 'payload.n.1', tiny);
    assert.match(problem?.message ?? '', /too small for a double/);
  }
  // Strings that look like numbers are strings.
  assert.equal(jsonTextProblem('{"n":"1e-400"}'), undefined);
});
