import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { compileSchema, parseAggregateSchema, toJsonSchema } from '../src/core/schema/index.js';

// ajv and ajv-formats are CommonJS with a `default` property; NodeNext sees the module object.
type AjvLike = { compile(schema: object): ((data: unknown) => boolean) & { errors?: unknown } };
const Ajv2020 = ((Ajv2020Module as unknown as { default?: unknown }).default ?? Ajv2020Module) as new (opts: object) => AjvLike;
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: AjvLike) => void;

const NOW = '2024-01-01T00:00:00Z';

function newAjv(): AjvLike {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  return ajv;
}

interface Case {
  column: unknown;
  values: unknown[];
  /** true: ajv and the server agree on every value; false: ajv never refuses what the server takes. */
  exact: boolean;
}

const CASES: Record<string, Case> = {
  integer: { column: 'integer', exact: true, values: [0, 42, -7, '42', ' 12 ', '+5', 5.5, '5.0', 'x', '', true, [], {}, Number.MAX_SAFE_INTEGER] },
  integer_range: { column: { type: 'int', range: { min: '-5', max: '10' } }, exact: false, values: [-5, 10, 11, -6, '11', '3'] },
  float: { column: 'float', exact: true, values: [1.5, 3, '2.5', ' -.5 ', '1e3', '5.', 'inf', 'NaN', 'x', true, {}] },
  float_range: { column: { type: 'float', range: { min: '0.5', max: '100' } }, exact: true, values: [0.5, 100, 0.49, 100.01, 50] },
  decimal_text: { column: 'decimal(5,2)', exact: true, values: ['12.5', ' +012.34 ', '0.5', '.5', '-0.00', '999.99', '7', '1.234', '1234.5', '1000', 'abc', '', '.', '1e2', '5.', true] },
  decimal_scale0: { column: 'numeric(3,0)', exact: true, values: ['123', '123.', '1234', '0.5', '0'] },
  decimal_tight: { column: 'decimal(2,2)', exact: true, values: ['0.55', '.5', '1.5', '0', '0.555'] },
  decimal_number: { column: 'decimal(5,2)', exact: false, values: [12.5, 999.99, 1000, 0.001, -999.99, 1e21] },
  boolean: { column: 'bool', exact: true, values: [true, false, 0, 1, 2, '1', '0', 'TRUE', ' false ', 'yes', 'No', 'on', 'OFF', 'y', 'maybe', '', {}] },
  text: { column: 'text', exact: true, values: ['', 'x', 1, true, [], {}] },
  text_rules: {
    column: { type: 'text', contains: ['@', 'a.b'], does_not_contain: ['<script', '$('], regex: ['^[a-z]', '\\d$'], length: { min: 6, max: 12 } },
    exact: true,
    values: ['ab@a.b1', 'xa.b@12', 'Ab@a.b1', 'ab@axb1', 'ab@a.b<script1', 'a.b@$(1', 'ab@a.b', 'a@a.b1', 'ab@a.b123456789', '😀', 'za.b@😀😀1'],
  },
  text_length_unicode: { column: { type: 'text', length: { min: 2, max: 3 } }, exact: true, values: ['ab', '😀😀😀', '😀', 'abcd', 'é😀é'] },
  timestamp: {
    column: 'timestamp',
    exact: true,
    values: ['2024-05-01T10:00:00Z', '2024-05-01T12:30:00+02:30', '2024-05-01t10:00:00.120z', '2024-02-29T00:00:00Z', '2023-02-29T00:00:00Z', '2024-13-01T00:00:00Z', '2024-05-01', '2024-05-01T10:00:00', 'x', 42],
  },
  date: { column: 'date', exact: true, values: ['2024-02-29', '1999-12-31', '2023-02-29', '2024-04-31', '2024-1-05', '2024-01-05T00:00:00Z', 20240105] },
  date_range: { column: { type: 'date', range: { min: '2024-01-01' } }, exact: false, values: ['2024-06-01', '2023-12-31'] },
  json: { column: 'json', exact: true, values: [1, 'x', true, [1], { a: null }] },
  binary: { column: 'binary', exact: true, values: ['', 'aGVsbG8=', 'aGk=', 'AAAA', 'QQ==', 'aGVsbG8', 'QR==', 'aGVsbG9=', '====', '-_-_', 42] },
  binary_length: { column: { type: 'binary', length: { max: 1 } }, exact: false, values: ['QQ==', 'aGk=', 'AAAA'] },
  object: {
    column: { type: 'object', properties: { zip: { type: 'text', required: true, regex: '^\\d{5}$' }, n: 'integer', inner: { type: 'object', properties: { ok: 'boolean' } } } },
    exact: true,
    values: [{ zip: '12345' }, { zip: '12345', n: '3', inner: { ok: 'yes' }, extra: 1 }, {}, { zip: '1234' }, { zip: '12345', n: null }, { zip: '12345', inner: { ok: 'maybe' } }, [], 'x'],
  },
  camel_case: { column: { type: 'text', format: 'camel_case' }, exact: true, values: ['camel', 'camelCase2', 'CamelCase', 'camel_case', '2camel', ''] },
  pascal_case: { column: { type: 'text', format: 'pascal_case' }, exact: true, values: ['Pascal', 'PascalCase2', 'pascalCase', 'Pascal_Case', ''] },
  snake_case: { column: { type: 'text', format: 'snake_case' }, exact: true, values: ['snake', 'snake_case_2', 'a1', 'Snake', 'snake__case', 'snake_', '_snake', '1snake', ''] },
  kebab_case: { column: { type: 'text', format: 'kebab_case' }, exact: true, values: ['kebab', 'kebab-case-2', 'kebab--case', 'kebab-', '-kebab', 'kebab_case', ''] },
  upper_snake: { column: { type: 'text', format: 'upper_case_snake_case' }, exact: true, values: ['UPPER', 'UPPER_SNAKE_2', 'Upper', 'UPPER__SNAKE', 'UPPER_', ''] },
  country_code: { column: { type: 'text', format: 'country_code' }, exact: true, values: ['US', 'GB', 'AX', 'UK', 'us', 'USA', 'XK', ''] },
  iso_8601: { column: { type: 'text', format: 'iso_8601' }, exact: true, values: ['2024-05-01T10:00:00Z', '2024-05-01T10:00:00.5+02:00', '2024-05-01', 'yesterday', '2023-02-29T00:00:00Z'] },
  email: { column: { type: 'text', format: 'email' }, exact: false, values: ['ada@example.com', 'first.last+tag@sub.example.co.uk', 'plain', '@example.com', 'a@', 'a b@example.com', 'a@-example.com'] },
  url: { column: { type: 'text', format: 'url' }, exact: false, values: ['https://example.com', 'http://localhost:8080/p?q=1#f', 'mailto:ada@example.com', 'example.com', '/relative', ''] },
  credit_card: { column: { type: 'text', format: 'credit_card' }, exact: false, values: ['4111111111111111', '4111 1111 1111 1111', '4111111111111112', '1234', 'abcd'] },
  wgs_84: { column: { type: 'text', format: 'wgs_84' }, exact: false, values: ['51.5,-0.12', ' -90 , 180 ', '91,0', '51.5', 'a,b'] },
  regex_flags: { column: { type: 'text', regex: '(?i)^abc' }, exact: false, values: ['ABC', 'abc', 'xabc'] },
};

test('schema json-schema - ajv verdicts match validatePayload for every expressible type and format', () => {
  const ajv = newAjv();
  for (const [name, c] of Object.entries(CASES)) {
    const schema = parseAggregateSchema({ aggregate: 'thing', column_types: { v: c.column }, events: { set: {} } }, NOW);
    const server = compileSchema(schema, 1);
    const docs = toJsonSchema(schema);
    const validate = ajv.compile(docs['set'] as object);
    for (const value of c.values) {
      const payload = { v: value };
      const serverOk = server.validatePayload('set', payload).ok;
      const ajvOk = validate(payload);
      const what = `${name}: ${JSON.stringify(value)} (server ${serverOk}, ajv ${ajvOk})`;
      if (c.exact) assert.equal(ajvOk, serverOk, what);
      else if (serverOk) assert.equal(ajvOk, true, `${what}: the JSON Schema must not refuse what the server takes`);
    }
  }
});

test('schema json-schema - event field lists, required, null removal, field locks and locked', () => {
  const ajv = newAjv();
  const schema = parseAggregateSchema(
    {
      aggregate: 'person',
      field_locks: ['ssn'],
      column_types: { name: { type: 'text', required: true }, age: 'integer', meta: { type: 'json', required: true } },
      events: { created: { fields: ['name', 'age', 'meta'], notes: 'first event' }, noted: {} },
    },
    NOW,
  );
  const server = compileSchema(schema, 1);
  const docs = toJsonSchema(schema) as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(docs).sort(), ['created', 'noted']);
  const created = docs['created'] as Record<string, unknown>;
  assert.equal(created['$schema'], 'https://json-schema.org/draft/2020-12/schema');
  assert.equal(created['description'], 'first event');
  assert.equal(created['additionalProperties'], false);
  assert.deepEqual(created['required'], ['age', 'meta', 'name']);
  assert.equal((docs['noted'] as Record<string, unknown>)['additionalProperties'], undefined);
  const samples: Array<[string, Record<string, unknown>]> = [
    ['created', { name: 'Ada', age: 36, meta: {} }],
    ['created', { name: 'Ada', age: '36', meta: 1 }],
    ['created', { name: 'Ada', age: null, meta: [] }], // present: null counts for the field list
    ['created', { name: 'Ada', meta: {} }],
    ['created', { name: 'Ada', age: 1, meta: {}, extra: 1 }],
    ['created', { name: 'Ada', age: 1, meta: null }],
    ['created', { name: null, age: 1, meta: {} }],
    ['created', { name: 'Ada', age: 1, meta: {}, ssn: 'x' }],
    ['noted', { name: 'Ada', meta: 'x', anything: [1] }],
    ['noted', { name: 'Ada', meta: 'x', age: null }],
    ['noted', { name: 'Ada', meta: 'x', ssn: 'x' }],
    ['noted', { meta: 'x' }],
    ['noted', { name: 'Ada', meta: 'x', age: 'old' }],
  ];
  for (const [event, payload] of samples) {
    const validate = ajv.compile(docs[event] as object);
    assert.equal(validate(payload), server.validatePayload(event, payload).ok, `${event} ${JSON.stringify(payload)}`);
  }
  const locked = toJsonSchema({ ...schema, locked: true }) as Record<string, object>;
  const validateLocked = ajv.compile(locked['noted'] as object);
  assert.equal(validateLocked({ name: 'Ada', meta: 1 }), false);
  assert.equal(compileSchema({ ...schema, locked: true }, 2).validatePayload('noted', { name: 'Ada', meta: 1 }).ok, false);
});

test('schema json-schema - looser columns say so in $comment', () => {
  const schema = parseAggregateSchema({ aggregate: 'thing', column_types: { card: { type: 'text', format: 'credit_card' }, n: 'integer' }, events: { set: {} } }, NOW);
  const doc = toJsonSchema(schema)['set'] as { properties: Record<string, { anyOf: Array<Record<string, unknown>> }> };
  const card = doc.properties['card']?.anyOf[1] as Record<string, unknown>;
  assert.match(String(card['$comment']), /Luhn/);
  const n = doc.properties['n']?.anyOf[1] as Record<string, unknown>;
  assert.match(String(n['$comment']), /normalised to a number/);
});
