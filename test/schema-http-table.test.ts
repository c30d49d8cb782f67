/**
 * Issue 9: every column type, rule and format checked over HTTP against one real server. Each row
 * gets its own aggregate type with one column `v`, one accepted write (201, the normalised value is
 * what the event and the state hold) and one or more refused writes (400 validation_failed naming
 * field and rule, nothing stored). The unit tables live in schema-validate.test.ts; this file only
 * proves the same answers survive the HTTP path (body parsing, worker round-trip, error model).
 * All rows of a table run in parallel, so the whole file takes about two seconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer } from './helpers/server.js';
import { assertError, headOf } from './helpers/assertions.js';

const server = useServer();

/** An accepted write: `value` goes in, `stored` (default: unchanged) comes back in event and state. */
type Good = { value: unknown; stored?: unknown };
/**
 * A refused write: `payload` defaults to `{ v: value }`; `field` defaults to `v`. `bodyPath` marks a
 * value the request-body check refuses before the schema sees it (details carry `path`, not `rule`).
 */
type Bad = { value?: unknown; payload?: Record<string, unknown>; rule: string; field?: string; bodyPath?: string };
type Row = { name: string; settings: unknown; good: Good[]; bad: Bad[] };

const g = (value: unknown, stored: unknown = value): Good => ({ value, stored });
const b = (value: unknown, rule = 'type', field = 'v'): Bad => ({ value, rule, field });

/** PUTs every row's schema, then sends every write of every row at once and checks each answer. */
async function runTable(table: string, rows: Row[]): Promise<void> {
  const aggregateOf = (row: Row) => `${table}_${row.name}`;
  await Promise.all(
    rows.map(async (row) => {
      const aggregate = aggregateOf(row);
      const res = await server.request('PUT', `/v1/schemas/${aggregate}`, {
        aggregate,
        events: { set: { fields: [] } },
        column_types: { v: row.settings },
      });
      assert.ok(res.status === 200 || res.status === 201, `${aggregate}: ${JSON.stringify(res.body)}`);
    }),
  );
  const checks: Promise<void>[] = [];
  for (const row of rows) {
    const type = aggregateOf(row);
    row.good.forEach((good, i) => {
      checks.push(
        (async () => {
          const where = `${type} accepts ${JSON.stringify(good.value)}`;
          const res = await server.request('POST', `/v1/aggregates/${type}/ok${i}/events`, { event_type: 'set', payload: { v: good.value } });
          assert.equal(res.status, 201, `${where}: ${JSON.stringify(res.body)}`);
          assert.deepEqual(res.body.payload.v, good.stored, `${where}: stored event payload`);
          const view = await server.request('GET', `/v1/aggregates/${type}/ok${i}`);
          assert.equal(view.status, 200, `${where}: ${JSON.stringify(view.body)}`);
          assert.deepEqual(view.body.state.v, good.stored, `${where}: state`);
        })(),
      );
    });
    row.bad.forEach((bad, i) => {
      checks.push(
        (async () => {
          const payload = bad.payload ?? { v: bad.value };
          const where = `${type} refuses ${JSON.stringify(payload)}`;
          const res = await server.request('POST', `/v1/aggregates/${type}/bad${i}/events`, { event_type: 'set', payload });
          assertError(res, 400, 'validation_failed');
          const details = res.body.error.details as { field: string; rule: string; message: string }[];
          const field = bad.field ?? 'v';
          const named = bad.bodyPath !== undefined
            ? (d: any) => d.path === bad.bodyPath && d.message.length > 0
            : (d: any) => d.field === field && d.rule === bad.rule && d.message.length > 0;
          assert.ok(Array.isArray(details) && details.some(named), `${where}: expected ${bad.bodyPath ?? `${field}/${bad.rule}`} in ${JSON.stringify(details)}`);
          assert.equal(await headOf(server, type, `bad${i}`), null, `${where}: nothing stored`);
        })(),
      );
    });
  }
  // allSettled so one failing row does not leave the others' requests dangling past the test.
  const outcomes = await Promise.allSettled(checks);
  const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => String(o.reason?.message ?? o.reason));
  assert.deepEqual(failures, [], `${failures.length} of ${checks.length} ${table} checks failed`);
}

const TYPES: Row[] = [
  {
    name: 'integer',
    settings: 'integer',
    good: [g(42), g('42', 42), g(' -0012 ', -12), g('9007199254740993', '9007199254740993')],
    bad: [b(5.5), b('5.0'), b('abc'), b(true), b('9223372036854775808'),
      // A JSON number beyond 2^53 cannot be kept exactly: the body check refuses it first (I-JSON).
      { value: 2 ** 60, rule: 'type', bodyPath: 'body.payload.v' }],
  },
  { name: 'float', settings: 'float', good: [g(1.5), g(' 2.5 ', 2.5), g('1e3', 1000)], bad: [b('inf'), b('NaN'), b('1e400'), b(true)] },
  {
    name: 'decimal',
    settings: 'decimal(5,2)',
    good: [g(12.5, '12.50'), g(' +012.34 ', '12.34'), g('.5', '0.50'), g('7', '7.00')],
    bad: [b('1.234'), b('1234.5'), b('abc'), b('1e2')],
  },
  {
    name: 'boolean',
    settings: 'boolean',
    good: [g(true), g('yes', true), g(' True ', true), g(1, true), g('off', false), g(0, false)],
    bad: [b(2), b('maybe'), b(''), b([])],
  },
  { name: 'text', settings: 'text', good: [g('hello'), g('')], bad: [b(1), b(true), b({})] },
  {
    name: 'timestamp',
    settings: 'timestamp',
    good: [g('2024-05-01T10:00:00Z'), g('2024-05-01T12:30:00+02:30', '2024-05-01T10:00:00Z'), g('2024-12-31T23:30:00-01:00', '2025-01-01T00:30:00Z')],
    bad: [b('2024-05-01'), b('2024-05-01T10:00:00'), b('2023-02-29T00:00:00Z'), b(1714557600)],
  },
  { name: 'date', settings: 'date', good: [g('2024-02-29'), g('1999-12-31')], bad: [b('2023-02-29'), b('2024-01-05T00:00:00Z'), b(20240105)] },
  { name: 'json', settings: 'json', good: [g(1), g('x'), g([1, 2]), g({ a: null })], bad: [] },
  { name: 'binary', settings: 'binary', good: [g('aGVsbG8='), g('')], bad: [b('aGVsbG8'), b('-_-_'), b(42)] },
  {
    name: 'object',
    settings: {
      type: 'object',
      properties: { zip: { type: 'text', required: true, regex: '^\\d{5}$' }, geo: { type: 'object', properties: { lat: { type: 'float', range: { min: '-90', max: '90' } } } }, n: 'int' },
    },
    good: [g({ zip: '12345', geo: { lat: '45.5' }, n: '3', extra: true }, { zip: '12345', geo: { lat: 45.5 }, n: 3, extra: true })],
    bad: [b('x'), b([]), b({ zip: '12345', geo: { lat: 100 } }, 'range', 'v.geo.lat'), b({ zip: '12345', n: 'x' }, 'type', 'v.n'), b({ n: 1 }, 'required', 'v.zip'), b({ zip: '1234' }, 'regex', 'v.zip')],
  },
];

const RULES: Row[] = [
  { name: 'required', settings: { type: 'text', required: true }, good: [g('x')], bad: [{ payload: {}, rule: 'required' }, { payload: { v: null }, rule: 'required' }] },
  { name: 'contains', settings: { type: 'text', contains: ['@', 'a'] }, good: [g('ab@c')], bad: [b('bc@', 'contains'), b('abc', 'contains')] },
  { name: 'does_not_contain', settings: { type: 'text', does_not_contain: ['<script', 'DROP'] }, good: [g('drop it')], bad: [b('x DROP y', 'does_not_contain'), b('<script>', 'does_not_contain')] },
  { name: 'regex', settings: { type: 'text', regex: ['^[a-z]', '\\d$'] }, good: [g('ab1')], bad: [b('Ab1', 'regex'), b('abc', 'regex')] },
  { name: 'regex_flags', settings: { type: 'text', regex: '(?i)^abc' }, good: [g('ABCdef')], bad: [b('xabc', 'regex')] },
  { name: 'length_text', settings: { type: 'text', length: { min: 2, max: 3 } }, good: [g('ab'), g('😀😀😀')], bad: [b('a', 'length'), b('abcd', 'length')] },
  { name: 'length_binary', settings: { type: 'binary', length: { min: 2, max: 3 } }, good: [g('aGk='), g('AAAA')], bad: [b('QQ==', 'length'), b('AAAAAA==', 'length')] },
  { name: 'range_integer', settings: { type: 'integer', range: { min: '-5', max: '10' } }, good: [g(-5), g('10', 10)], bad: [b(-6, 'range'), b('11', 'range')] },
  { name: 'range_float', settings: { type: 'float', range: { min: '0.5', max: '1e2' } }, good: [g(0.5), g('100', 100)], bad: [b(0.49, 'range'), b(100.01, 'range')] },
  { name: 'range_decimal', settings: { type: 'decimal(6,2)', range: { min: '0.01', max: '10' } }, good: [g('0.01'), g(10, '10.00')], bad: [b('0', 'range'), b('10.01', 'range')] },
  {
    name: 'range_timestamp',
    settings: { type: 'timestamp', range: { min: '2024-01-01T00:00:00+01:00', max: '2024-12-31T23:59:59.5Z' } },
    good: [g('2023-12-31T23:00:00Z'), g('2024-12-31T23:59:59.5Z')],
    bad: [b('2023-12-31T22:59:59.999Z', 'range'), b('2024-12-31T23:59:59.51Z', 'range')],
  },
  { name: 'range_date', settings: { type: 'date', range: { min: '2024-01-01', max: '2024-12-31' } }, good: [g('2024-06-15')], bad: [b('2023-12-31', 'range'), b('2025-01-01', 'range')] },
];

const FORMATS: Record<string, { ok: string[]; bad: string[] }> = {
  email: { ok: ['ada@example.com', 'first.last+tag@sub.example.co.uk'], bad: ['plain', 'a@', 'a b@example.com', 'a@example..com'] },
  url: { ok: ['https://example.com', 'http://localhost:8080/path?q=1#f', 'urn:isbn:0451450523'], bad: ['example.com', '/relative/path', 'http://'] },
  credit_card: { ok: ['4111111111111111', '4111 1111 1111 1111', '378282246310005'], bad: ['4111111111111112', '1234', 'abcd efgh ijkl mnop'] },
  country_code: { ok: ['US', 'AX'], bad: ['UK', 'us', 'USA'] },
  iso_8601: { ok: ['2024-05-01T10:00:00Z', '2024-05-01T10:00:00.5+02:00'], bad: ['2024-05-01', 'yesterday'] },
  wgs_84: { ok: ['51.5,-0.12', ' -90 , 180 '], bad: ['91,0', '0,181', '51.5'] },
  camel_case: { ok: ['camel', 'camelCase2'], bad: ['CamelCase', 'camel_case'] },
  snake_case: { ok: ['snake', 'snake_case_2'], bad: ['Snake', 'snake__case', 'snake-case'] },
  kebab_case: { ok: ['kebab', 'kebab-case-2'], bad: ['Kebab', 'kebab--case', 'kebab_case'] },
  pascal_case: { ok: ['Pascal', 'PascalCase2'], bad: ['pascalCase', 'Pascal_Case'] },
  upper_case_snake_case: { ok: ['UPPER', 'UPPER_SNAKE_2'], bad: ['Upper', 'UPPER__SNAKE', 'UPPER-SNAKE'] },
};

test('schema http table - every column type accepts, normalises and refuses over HTTP', { timeout: 60_000 }, async () => {
  await runTable('t', TYPES);
});

test('schema http table - every rule (required, contains, does_not_contain, regex, length, range numeric and temporal) over HTTP', { timeout: 60_000 }, async () => {
  await runTable('r', RULES);
});

test('schema http table - every format accepts its positives and refuses its negatives over HTTP', { timeout: 60_000 }, async () => {
  const rows: Row[] = Object.entries(FORMATS).map(([format, { ok, bad }]) => ({
    name: format,
    settings: { type: 'text', format },
    good: ok.map((v) => g(v)),
    bad: [...bad.map((v) => b(v, 'format')), b(42, 'type')],
  }));
  assert.equal(rows.length, 11);
  await runTable('f', rows);
});

test('schema http table - a malformed schema body lists each problem with field and rule too (README: { field, rule, message })', { timeout: 30_000 }, async () => {
  // Before: the request-body check answered { path, message } only; the parser's own problems had field and rule.
  const res = await server.request('PUT', '/v1/schemas/shape_probe', { column_types: { age: { type: 'integer', min: 0 } }, locked: 'yes' });
  assertError(res, 400, 'validation_failed');
  const details = res.body.error.details as { path: string; field: string; rule: string; message: string }[];
  assert.ok(details.some((d) => d.field === 'column_types.age' && d.rule === 'unrecognized_keys' && d.path === 'body.column_types.age' && d.message.length > 0), JSON.stringify(details));
  assert.ok(details.some((d) => d.field === 'locked' && d.rule === 'invalid_type'), JSON.stringify(details));
  assert.equal((await server.request('GET', '/v1/schemas/shape_probe')).status, 404, 'nothing stored');
  // Every request check answers the same shape: a duplicate member name (found while parsing the body).
  const dup = await server.request('PUT', '/v1/schemas/shape_probe', '{"locked":true,"locked":false}');
  assert.equal(dup.status, 400);
  assert.deepEqual(dup.body.error.details.map((d: any) => [d.path, d.field, d.rule]), [['body.locked', 'locked', 'invalid']]);
});
