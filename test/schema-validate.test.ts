import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileSchema, parseAggregateSchema, type CompiledSchema, type Violation } from '../src/core/schema/index.js';

const NOW = '2024-01-01T00:00:00Z';

/** A schema with one column `v` and one free event `set`. */
function column(settings: unknown): CompiledSchema {
  return compileSchema(parseAggregateSchema({ aggregate: 'thing', column_types: { v: settings }, events: { set: {} } }, NOW), 1);
}

function accepts(compiled: CompiledSchema, value: unknown, normalised: unknown = value): void {
  const outcome = compiled.validatePayload('set', { v: value });
  assert.ok(outcome.ok, `${JSON.stringify(value)} refused: ${outcome.ok ? '' : JSON.stringify(outcome.violations)}`);
  assert.deepEqual(outcome.payload['v'], normalised, `normalised form of ${JSON.stringify(value)}`);
}

function refuses(compiled: CompiledSchema, value: unknown, rule = 'type', message?: RegExp): Violation[] {
  const outcome = compiled.validatePayload('set', { v: value });
  assert.equal(outcome.ok, false, `${JSON.stringify(value)} accepted`);
  if (outcome.ok) return [];
  assert.ok(outcome.violations.some((x) => x.rule === rule && x.field === 'v' && (message === undefined || message.test(x.message))), `${JSON.stringify(value)}: ${JSON.stringify(outcome.violations)}`);
  return outcome.violations;
}

test('schema validate - integer accepts and normalises integers within i64', () => {
  const c = column('integer');
  accepts(c, 42);
  accepts(c, -7);
  accepts(c, '42', 42);
  accepts(c, ' -0012 ', -12);
  accepts(c, '+5', 5);
  accepts(c, 5.0, 5); // JSON.parse gives 5: indistinguishable from 5
  accepts(c, Number.MAX_SAFE_INTEGER);
  accepts(c, '9007199254740993', '9007199254740993'); // beyond 2^53: kept exact as canonical text
  accepts(c, '-9223372036854775808', '-9223372036854775808');
  accepts(c, '0009223372036854775807', '9223372036854775807');
  refuses(c, '9223372036854775808', 'type', /^field v exceeds signed integer range$/);
  refuses(c, 5.5, 'type', /^field v must be an integer$/);
  refuses(c, 2 ** 60, 'type', /send larger integers as strings/);
  for (const bad of ['5.0', '1e3', 'abc', '', true, [], {}]) refuses(c, bad, 'type', /must be an integer/);
});

test('schema validate - float accepts numbers and float text', () => {
  const c = column('float');
  accepts(c, 1.5);
  accepts(c, 3);
  accepts(c, ' 2.5 ', 2.5);
  accepts(c, '1e3', 1000);
  accepts(c, '-.5', -0.5);
  accepts(c, '5.', 5);
  for (const bad of ['inf', 'NaN', '1e400', 'x', '', true, {}]) refuses(c, bad, 'type', /^field v must be a float$/);
});

test('schema validate - decimal(p,s) checks scale and precision as written and stores canonical text', () => {
  const c = column('decimal(5,2)');
  accepts(c, 12.5, '12.50');
  accepts(c, '12.5', '12.50');
  accepts(c, ' +012.34 ', '12.34');
  accepts(c, '0.5', '0.50');
  accepts(c, '.5', '0.50');
  accepts(c, '-0.00', '0.00');
  accepts(c, 999.99, '999.99');
  accepts(c, '7', '7.00');
  accepts(c, 1e-2, '0.01');
  refuses(c, '1.234', 'type', /^field v must have at most 2 decimal places$/);
  refuses(c, '1.230', 'type', /at most 2 decimal places/); // trailing zeros count, as written
  refuses(c, '1234.5', 'type', /^field v must have precision <= 5$/); // stored as 1234.50: 6 digits
  refuses(c, 1e21, 'type', /precision <= 5/);
  for (const bad of ['abc', '', '.', '1,5', '1e2', true, []]) refuses(c, bad, 'type', /^field v must be a decimal value$/);
  const whole = column('numeric(3,0)');
  accepts(whole, '123', '123');
  accepts(whole, '123.', '123');
  refuses(whole, '0.5', 'type', /at most 0 decimal places/);
  const tight = column('decimal(2,2)');
  accepts(tight, '0.55', '0.55'); // SQL-style: a zero integer part takes no digit (the original counted it)
  accepts(tight, '.5', '0.50');
  refuses(tight, '1.5', 'type', /precision <= 2/);
  // The stored form passes its own schema again (patches are validated on the state they produce).
  const stored = c.validatePayload('set', { v: '999.9' });
  assert.ok(stored.ok);
  assert.ok(c.validateState(stored.payload).ok);
});

test('schema validate - boolean spellings normalise to true and false', () => {
  const c = column('boolean');
  for (const t of [true, 1, 'true', 'TRUE', ' True ', '1', 'yes', 'YES', 'on']) accepts(c, t, true);
  for (const f of [false, 0, 'false', 'False', '0', 'no', 'off', ' OFF ']) accepts(c, f, false);
  for (const bad of [2, -1, 0.5, 'y', 't', 'maybe', '', [], {}]) refuses(c, bad, 'type', /^field v must be a boolean$/);
});

test('schema validate - text accepts strings only', () => {
  const c = column('text');
  accepts(c, 'hello');
  accepts(c, '');
  for (const bad of [1, true, [], {}]) refuses(c, bad, 'type', /^field v must be a string$/);
});

test('schema validate - timestamp takes RFC 3339 and stores UTC Z with the fraction as given', () => {
  const c = column('timestamp');
  accepts(c, '2024-05-01T10:00:00Z');
  accepts(c, '2024-05-01T12:30:00+02:30', '2024-05-01T10:00:00Z');
  accepts(c, '2024-05-01t10:00:00.120z', '2024-05-01T10:00:00.120Z');
  accepts(c, '2024-05-01 10:00:00.123456789-01:00', '2024-05-01T11:00:00.123456789Z');
  accepts(c, '2024-12-31T23:30:00-01:00', '2025-01-01T00:30:00Z');
  accepts(c, '2024-02-29T00:00:00Z');
  accepts(c, '0000-01-01T00:00:00Z');
  const bad = ['2024-05-01', '2024-05-01T10:00:00', '2024-13-01T00:00:00Z', '2023-02-29T00:00:00Z', '2024-05-01T24:00:00Z', '2024-05-01T23:59:60Z',
    '2024-05-01T10:00:00.1234567890Z', '0000-01-01T00:00:00+01:00', ' 2024-05-01T10:00:00Z', '2024-05-01T10:00:00+24:00', 1714557600];
  for (const b of bad) refuses(c, b, 'type', /^field v must be an RFC3339 timestamp$/);
});

test('schema validate - date is a real YYYY-MM-DD day, unchanged', () => {
  const c = column('date');
  accepts(c, '2024-02-29');
  accepts(c, '1999-12-31');
  for (const bad of ['2023-02-29', '2024-04-31', '2024-1-05', '2024-01-05T00:00:00Z', '20240105', 20240105]) {
    refuses(c, bad, 'type', /^field v must be a date formatted as YYYY-MM-DD$/);
  }
});

test('schema validate - json accepts anything, binary takes padded base64', () => {
  const j = column('json');
  for (const any of [1, 'x', true, [1, 2], { a: null }]) accepts(j, any);
  const b = column('binary');
  for (const ok of ['', 'aGVsbG8=', 'aGk=', 'AAAA', 'QQ==']) accepts(b, ok);
  for (const bad of ['aGVsbG8', 'aGk', '====', 'a===', 'QR==', 'aGVsbG9=', '-_-_', 'aGV sbG8=', 42]) {
    refuses(b, bad, 'type', /^field v must be base64 encoded$/);
  }
});

test('schema validate - object validates nested properties recursively with dotted paths', () => {
  const c = column({
    type: 'object',
    properties: { zip: { type: 'text', required: true, regex: '^\\d{5}$' }, geo: { type: 'object', properties: { lat: { type: 'float', range: { min: '-90', max: '90' } } } }, n: 'int' },
  });
  accepts(c, { zip: '12345', geo: { lat: '45.5' }, n: '3', extra: true }, { zip: '12345', geo: { lat: 45.5 }, n: 3, extra: true });
  for (const bad of ['x', [], 1]) refuses(c, bad, 'type', /^field v must be a JSON object$/);
  const outcome = c.validatePayload('set', { v: { geo: { lat: 100 }, n: null } });
  assert.equal(outcome.ok, false);
  if (!outcome.ok) {
    assert.deepEqual(outcome.violations.map((x) => [x.field, x.rule]), [['v.geo.lat', 'range'], ['v.n', 'type'], ['v.zip', 'required']]);
    assert.equal(outcome.violations.find((x) => x.rule === 'required')?.message, 'field v.zip is required');
  }
  const json = column({ type: 'json', properties: { id: 'integer' } });
  accepts(json, [1]);
  accepts(json, { id: '7' }, { id: 7 });
  const bad = json.validatePayload('set', { v: { id: 'x' } });
  assert.deepEqual(bad.ok ? [] : bad.violations.map((x) => x.field), ['v.id']);
});

test('schema validate - contains, does_not_contain and regex (one or many) are case-sensitive searches', () => {
  const c = column({ type: 'text', contains: ['@', 'a'], does_not_contain: ['<script', 'DROP'], regex: ['^[a-z]', '\\d$'] });
  accepts(c, 'ab@c1');
  refuses(c, 'bc1', 'contains', /^field v must contain '@'$/);
  refuses(c, 'ab@c1 DROP 2', 'does_not_contain', /^field v must not contain 'DROP'$/);
  refuses(c, 'Ab@c1', 'regex', /^field v must match pattern \^\[a-z\]$/);
  const many = refuses(c, 'Q<script', 'regex');
  assert.deepEqual(many.map((x) => x.rule), ['contains', 'contains', 'does_not_contain', 'regex', 'regex'], 'every failed rule is listed');
  const flags = column({ type: 'text', regex: '(?i)^abc' });
  accepts(flags, 'ABCdef');
  const unicode = column({ type: 'text', regex: '^\\p{Lu}\\pL+$' });
  accepts(unicode, 'Élan');
  refuses(unicode, 'élan', 'regex');
});

test('schema validate - length counts code points for text and decoded bytes for binary, together with the other rules', () => {
  const t = column({ type: 'text', length: { min: 2, max: 3 }, regex: '^[a-z😀]+$' });
  accepts(t, 'ab');
  accepts(t, '😀😀😀'); // 3 code points, 6 UTF-16 units
  refuses(t, 'a', 'length', /^field v must have length >= 2$/);
  refuses(t, 'abcd', 'length', /^field v must have length <= 3$/);
  refuses(t, 'ABCD', 'length'); // the original skipped length when a regex was set
  const b = column({ type: 'binary', length: { min: 2, max: 3 } });
  accepts(b, 'aGk='); // 2 bytes
  accepts(b, 'AAAA'); // 3 bytes
  refuses(b, 'QQ==', 'length', />= 2/); // 1 byte
  refuses(b, 'AAAAAA==', 'length', /<= 3/); // 4 bytes
});

test('schema validate - range on integer, float, decimal, timestamp and date', () => {
  const i = column({ type: 'integer', range: { min: '-5', max: '9223372036854775807' } });
  accepts(i, -5);
  accepts(i, '9223372036854775807', '9223372036854775807');
  refuses(i, -6, 'range', /^field v must be >= -5$/);
  const big = column({ type: 'integer', range: { max: '9007199254740993' } });
  accepts(big, '9007199254740993', '9007199254740993');
  refuses(big, '9007199254740994', 'range', /must be <= 9007199254740993/);
  const f = column({ type: 'float', range: { min: '0.5', max: '1e2' } });
  accepts(f, 0.5);
  accepts(f, '100', 100);
  refuses(f, 0.49, 'range', /must be >= 0.5/);
  refuses(f, 100.01, 'range', /must be <= 1e2/);
  const d = column({ type: 'decimal(6,2)', range: { min: '0.01', max: '10' } });
  accepts(d, '0.01', '0.01');
  accepts(d, 10, '10.00');
  refuses(d, '0', 'range', /must be >= 0.01/);
  refuses(d, '-1', 'range');
  refuses(d, '10.01', 'range', /must be <= 10/);
  const ts = column({ type: 'timestamp', range: { min: '2024-01-01T00:00:00+01:00', max: '2024-12-31T23:59:59.5Z' } });
  accepts(ts, '2023-12-31T23:00:00Z');
  accepts(ts, '2024-12-31T23:59:59.5Z');
  refuses(ts, '2023-12-31T22:59:59.999Z', 'range', /must be on or after 2024-01-01T00:00:00\+01:00/);
  refuses(ts, '2024-12-31T23:59:59.51Z', 'range', /must be on or before/);
  const date = column({ type: 'date', range: { min: '2024-01-01', max: '2024-12-31' } });
  accepts(date, '2024-06-15');
  refuses(date, '2023-12-31', 'range', /^field v must be on or after 2024-01-01$/);
  refuses(date, '2025-01-01', 'range', /^field v must be on or before 2024-12-31$/);
});

const FORMAT_CASES: Record<string, { ok: string[]; bad: unknown[] }> = {
  email: {
    ok: ['ada@example.com', 'first.last+tag@sub.example.co.uk', "o'brien@x.io", 'user@localhost', 'a@[127.0.0.1]', 'a@[::1]', 'jörg@bücher.de'.replace('jörg', 'joerg')],
    bad: ['plain', '@example.com', 'a@', 'a@b@', 'a b@example.com', 'a@-example.com', 'a@exa_mple.com', 'a@[300.1.1.1]', `${'x'.repeat(65)}@example.com`, 'a@example..com'],
  },
  url: {
    ok: ['https://example.com', 'http://localhost:8080/path?q=1#f', 'ftp://files.example.com/a', 'mailto:ada@example.com', 'urn:isbn:0451450523'],
    bad: ['example.com', '/relative/path', 'http://', 'https://exa mple.com', '://nope', ''],
  },
  credit_card: {
    ok: ['4111111111111111', '4111 1111 1111 1111', '5500-0000-0000-0004', '378282246310005', '6011111111111117'],
    bad: ['4111111111111112', '1234', '41111111111111111111', 'abcd efgh ijkl mnop', ''],
  },
  country_code: { ok: ['US', 'GB', 'DE', 'AX'], bad: ['UK', 'us', 'USA', 'XK', 'EU', ''] },
  iso_8601: { ok: ['2024-05-01T10:00:00Z', '2024-05-01T10:00:00.5+02:00'], bad: ['2024-05-01', '2024-05-01T10:00:00', 'yesterday', '2023-02-29T00:00:00Z'] },
  wgs_84: { ok: ['51.5,-0.12', ' -90 , 180 ', '0,0', '45.5,-122.6'], bad: ['91,0', '0,181', '51.5', '1,2,3', 'a,b', 'inf,0', ''] },
  camel_case: { ok: ['camel', 'camelCase', 'camelCase2'], bad: ['CamelCase', 'camel_case', 'camel-case', '2camel', ''] },
  pascal_case: { ok: ['Pascal', 'PascalCase', 'PascalCase2'], bad: ['pascalCase', 'Pascal_Case', '2Pascal', ''] },
  snake_case: { ok: ['snake', 'snake_case', 'snake_case_2', 'a1'], bad: ['Snake', 'snake__case', 'snake_', '_snake', 'snake-case', '1snake', ''] },
  kebab_case: { ok: ['kebab', 'kebab-case', 'kebab-case-2'], bad: ['Kebab', 'kebab--case', 'kebab-', '-kebab', 'kebab_case', ''] },
  upper_case_snake_case: { ok: ['UPPER', 'UPPER_SNAKE', 'UPPER_SNAKE_2'], bad: ['Upper', 'UPPER__SNAKE', 'UPPER_', '_UPPER', 'UPPER-SNAKE', ''] },
};

test('schema validate - every format with positives and negatives', () => {
  for (const [format, { ok, bad }] of Object.entries(FORMAT_CASES)) {
    const c = column({ type: 'text', format });
    for (const value of ok) accepts(c, value);
    for (const value of bad) refuses(c, value, 'format', new RegExp(`^field v must match format ${format}$`));
    refuses(c, 42, 'type', /must be a string/);
  }
});

test('schema validate - required fields and top-level null as removal', () => {
  const c = compileSchema(parseAggregateSchema({ aggregate: 'thing', column_types: { name: { type: 'text', required: true }, age: 'integer' }, events: { set: {} } }, NOW), 1);
  assert.deepEqual(c.validatePayload('set', { age: 3 }), { ok: false, violations: [{ field: 'name', rule: 'required', message: 'field name is required' }] });
  assert.equal(c.validatePayload('set', { name: null }).ok, false, 'removing a required field is refused');
  assert.deepEqual(c.validatePayload('set', { name: 'x', age: null }), { ok: true, payload: { name: 'x', age: null } });
  const inherited = compileSchema(parseAggregateSchema({ aggregate: 'thing', column_types: { constructor: { type: 'text', required: true } }, events: { set: {} } }, NOW), 1);
  assert.equal(inherited.validatePayload('set', {}).ok, false, 'Object.prototype names are not mistaken for payload fields');
});

test('schema validate - validation order and event rules, every violation collected', () => {
  const schema = parseAggregateSchema(
    {
      aggregate: 'person',
      field_locks: ['ssn'],
      column_types: { age: 'integer', email: { type: 'text', format: 'email' } },
      events: { created: { fields: ['age', 'name'] }, noted: {} },
    },
    NOW,
  );
  const c = compileSchema(schema, 3);
  assert.equal(c.version, 3);
  assert.equal(c.schema, schema);
  const outcome = c.validatePayload('created', { ssn: '1', age: 'x', email: 'nope' });
  assert.deepEqual(outcome, {
    ok: false,
    violations: [
      { field: 'ssn', rule: 'field_lock', message: 'field ssn is locked for aggregate person' },
      { field: 'name', rule: 'field_missing', message: 'missing required field name for event created' },
      { field: 'ssn', rule: 'field_not_permitted', message: 'field ssn is not permitted for event created' },
      { field: 'email', rule: 'field_not_permitted', message: 'field email is not permitted for event created' },
      { field: 'age', rule: 'type', message: 'field age must be an integer' },
      { field: 'email', rule: 'format', message: 'field email must match format email' },
    ],
  });
  const undeclared = c.validatePayload('deleted', { age: 'x' });
  assert.deepEqual(undeclared.ok ? [] : undeclared.violations.map((x) => x.rule), ['event_undeclared', 'type']);
  assert.equal(undeclared.ok ? '' : undeclared.violations[0]?.message, 'event deleted is not defined for aggregate person');
  const free = c.validatePayload('noted', { anything: 1, age: '5' });
  assert.deepEqual(free, { ok: true, payload: { anything: 1, age: 5 } });
  const locked = compileSchema({ ...schema, locked: true }, 4);
  assert.deepEqual(locked.validatePayload('created', { ssn: 1 }), { ok: false, violations: [{ field: '', rule: 'locked', message: 'aggregate person is locked for updates' }] });
  assert.deepEqual(c.validatePayload('noted', [] as unknown as Record<string, unknown>), {
    ok: false,
    violations: [{ field: '', rule: 'object_payload', message: 'aggregate person expects object payload for validation' }],
  });
});

test('schema validate - normalising copies the payload; an already canonical payload is returned as is', () => {
  const c = column('integer');
  const input = { v: '42', other: 'kept' };
  const outcome = c.validatePayload('set', input);
  assert.ok(outcome.ok);
  assert.deepEqual(outcome.payload, { v: 42, other: 'kept' });
  assert.deepEqual(input, { v: '42', other: 'kept' }, 'the input is not modified');
  const same = { v: 42 };
  const again = c.validatePayload('set', same);
  assert.ok(again.ok && again.payload === same);
});

test('schema validate - validateState checks columns and required, no event rules', () => {
  const c = compileSchema(
    parseAggregateSchema({ aggregate: 'person', field_locks: ['ssn'], locked: true, column_types: { name: { type: 'text', required: true }, age: 'integer' }, events: { created: { fields: ['name'] } } }, NOW),
    1,
  );
  assert.deepEqual(c.validateState({ name: 'Ada', age: '36', ssn: 'x', extra: true }), { ok: true, payload: { name: 'Ada', age: 36, ssn: 'x', extra: true } });
  const bad = c.validateState({ age: 'old' });
  assert.deepEqual(bad.ok ? [] : bad.violations.map((x) => `${x.field}:${x.rule}`), ['age:type', 'name:required']);
});

test('schema validate - a schema without columns or field lists accepts any payload of a declared event', () => {
  const c = compileSchema(parseAggregateSchema({ aggregate: 'thing', events: { set: {} } }, NOW), 1);
  const payload = { a: 1, b: [null], c: { d: 'x' } };
  const outcome = c.validatePayload('set', payload);
  assert.ok(outcome.ok && outcome.payload === payload);
});
