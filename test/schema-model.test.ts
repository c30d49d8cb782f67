import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DbxError } from '../src/core/errors.js';
import {
  canonicalColumnType,
  COUNTRY_CODES,
  parseAggregateSchema,
  parseRestrictMode,
  schemaRequiredViolation,
  type SchemaProblem,
} from '../src/core/schema/index.js';
import * as core from '../src/core/index.js';

const NOW = '2024-01-02T03:04:05.678Z';

function problemsOf(input: unknown): SchemaProblem[] {
  try {
    parseAggregateSchema(input, NOW);
  } catch (err) {
    assert.ok(err instanceof DbxError, `expected DbxError, got ${String(err)}`);
    assert.equal(err.code, 'validation_failed');
    assert.equal(err.status, 400);
    return err.details as SchemaProblem[];
  }
  assert.fail('schema was accepted');
}

test('schema model - defaults of a minimal schema', () => {
  const schema = parseAggregateSchema({ aggregate: 'person' }, NOW);
  assert.deepEqual(schema, {
    aggregate: 'person',
    snapshot_threshold: null,
    locked: false,
    field_locks: [],
    hidden: false,
    hidden_fields: [],
    column_types: {},
    events: {},
    created_at: NOW,
    updated_at: NOW,
  });
});

test('schema model - type names and aliases are case-insensitive with canonical lower-case output', () => {
  const cases: Array<[string, string]> = [
    ['integer', 'integer'], ['INT', 'integer'], ['Float', 'float'], ['double', 'float'], ['BOOL', 'boolean'],
    ['boolean', 'boolean'], ['String', 'text'], ['text', 'text'], ['TimeStamp', 'timestamp'], ['DATE', 'date'],
    ['Json', 'json'], ['bytes', 'binary'], ['BINARY', 'binary'], ['Object', 'object'],
    ['decimal(8,2)', 'decimal(8,2)'], ['NUMERIC( 8 , 2 )', 'decimal(8,2)'], ['Decimal (38, 0)', 'decimal(38,0)'], [' int ', 'integer'],
  ];
  for (const [input, expected] of cases) assert.equal(canonicalColumnType(input), expected, input);
  for (const bad of ['integer(3)', 'decimal(8)', 'decimal(2,3)', 'decimal(0,0)', 'decimal(256,2)', 'varchar', '']) {
    assert.throws(() => canonicalColumnType(bad), (err: unknown) => err instanceof DbxError && err.code === 'validation_failed' && err.message === `invalid column type '${bad}'`, bad);
  }
});

test('schema model - bare type strings and flattened rule objects give canonical columns', () => {
  const schema = parseAggregateSchema(
    {
      aggregate: 'person',
      snapshot_threshold: 50,
      locked: true,
      hidden: true,
      field_locks: ['ssn', 'email', 'ssn'],
      hidden_fields: ['z', 'a', 'z'],
      column_types: {
        zeta: 'NUMERIC(8, 2)',
        age: { type: 'INT', required: false, range: { min: 0, max: '150' } },
        name: { type: 'String', required: true, regex: '^[A-Z]', contains: [], must_match: 'legacy', length: { min: 1 } },
        mail: { type: 'text', format: 'EMAIL' },
        home: { type: 'object', properties: { zip: { type: 'text', regex: ['^\\d{5}$'] }, city: 'string' } },
      },
      events: { renamed: { fields: ['name', 'age', 'name'], notes: 'why' }, created: {} },
    },
    NOW,
  );
  assert.deepEqual(Object.keys(schema.column_types), ['age', 'home', 'mail', 'name', 'zeta']);
  assert.deepEqual(schema.column_types['zeta'], { type: 'decimal(8,2)' });
  assert.deepEqual(schema.column_types['age'], { type: 'integer', range: { min: '0', max: '150' } });
  assert.deepEqual(schema.column_types['name'], { type: 'text', required: true, regex: ['^[A-Z]'], length: { min: 1 } });
  assert.deepEqual(schema.column_types['mail'], { type: 'text', format: 'email' });
  assert.deepEqual(schema.column_types['home'], {
    type: 'object',
    properties: { city: { type: 'text' }, zip: { type: 'text', regex: ['^\\d{5}$'] } },
  });
  assert.deepEqual(schema.events, { created: { fields: [] }, renamed: { fields: ['age', 'name'], notes: 'why' } });
  assert.deepEqual(schema.field_locks, ['email', 'ssn']);
  assert.deepEqual(schema.hidden_fields, ['a', 'z']);
  assert.equal(schema.snapshot_threshold, 50);
  assert.equal(schema.locked, true);
  assert.equal(schema.hidden, true);
});

test('schema model - output parses to itself', () => {
  const once = parseAggregateSchema({ aggregate: 'order', column_types: { total: { type: 'Numeric(10, 2)', range: { min: '0' } } }, events: { placed: { fields: ['total'] } } }, NOW);
  assert.deepEqual(parseAggregateSchema(JSON.parse(JSON.stringify(once)), '2030-01-01T00:00:00Z'), once);
});

test('schema model - timestamps are normalised to UTC', () => {
  const schema = parseAggregateSchema({ aggregate: 'a', created_at: '2024-01-01T01:00:00+01:00', updated_at: '2024-06-01T00:00:00.5Z' }, NOW);
  assert.equal(schema.created_at, '2024-01-01T00:00:00Z');
  assert.equal(schema.updated_at, '2024-06-01T00:00:00.5Z');
  assert.deepEqual(problemsOf({ aggregate: 'a', created_at: 'yesterday' }).map((p) => p.field), ['created_at']);
});

test('schema model - every save-time problem is listed in one error', () => {
  const problems = problemsOf({
    aggregate: 'Bad Name',
    surprise: true,
    column_types: {
      a: 'wat',
      b: { type: 'text', regex: ['(', '(?=x)', 'a\\1', 'ok'] },
      c: { type: 'integer', range: { min: 'x', max: '1.5' }, properties: { x: 'text' } },
      d: { type: 'text', format: 'nope' },
      e: { type: 'int', format: 'email', contains: ['x'], length: { min: 1 } },
      f: { type: 'text', requried: true },
      g: { type: 'date', range: { min: '2024-02-30' } },
      h: { type: 'timestamp', range: { max: '2024-01-01' } },
      i: { type: 'float', range: { min: '10', max: '1' } },
      j: { type: 'decimal(8,2)', range: { min: 'abc' } },
      k: { type: 'text', length: { min: 5, max: 2 } },
      l: { type: 'boolean', range: { min: '0' } },
    },
    events: { Created: { fields: [1] }, ok: { notes: 'x'.repeat(129) } },
  });
  const byField = new Map(problems.map((p) => [p.field, p]));
  const expect: Array<[string, string, RegExp]> = [
    ['aggregate', 'shape', /snake_case/],
    ['', 'shape', /surprise/],
    ['column_types.a.type', 'type', /^invalid column type 'wat'$/],
    ['column_types.b.regex.0', 'regex', /^has invalid regex '\('/],
    ['column_types.b.regex.1', 'regex', /lookaround/],
    ['column_types.b.regex.2', 'regex', /backreferences/],
    ['column_types.c.range.min', 'range', /^range minimum 'x' is not a valid integer$/],
    ['column_types.c.range.max', 'range', /^range maximum '1.5' is not a valid integer$/],
    ['column_types.c.properties', 'properties', /^cannot define nested properties on non-object type$/],
    ['column_types.d.format', 'format', /^unknown format 'nope'/],
    ['column_types.e.format', 'format', /text columns only/],
    ['column_types.e.contains', 'contains', /text columns only/],
    ['column_types.e.length', 'length', /does not support length validation/],
    ['column_types.f', 'shape', /requried/],
    ['column_types.g.range.min', 'range', /is not a valid date/],
    ['column_types.h.range.max', 'range', /is not a valid RFC3339 timestamp/],
    ['column_types.i.range', 'range', /exceeds maximum/],
    ['column_types.j.range.min', 'range', /is not a valid decimal/],
    ['column_types.k.length', 'length', /exceeds maximum/],
    ['column_types.l.range', 'range', /does not support range validation/],
    ['events.Created', 'shape', /snake_case/],
    ['events.Created.fields.0', 'shape', /string/],
    ['events.ok.notes', 'length', /128/],
  ];
  for (const [field, rule, message] of expect) {
    const p = byField.get(field);
    assert.ok(p, `no problem listed for ${field}: ${JSON.stringify(problems)}`);
    assert.equal(p.rule, rule, field);
    assert.match(p.message, message, field);
  }
  assert.equal(byField.has('column_types.b.regex.3'), false, 'a good regex is not a problem');
  assert.equal(problems.length, expect.length, JSON.stringify(problems, null, 1));
});

test('schema model - non-objects and wrong shapes are refused, not thrown raw', () => {
  for (const input of [null, 42, 'x', [], { aggregate: 'a', column_types: [] }, { aggregate: 'a', field_locks: 'x' }]) {
    assert.ok(problemsOf(input).length > 0, JSON.stringify(input));
  }
});

test('schema model - Rust regex spellings are translated or refused at save time', () => {
  parseAggregateSchema({ aggregate: 'a', column_types: { t: { type: 'text', regex: ['(?i)^abc', '\\Aabc\\z', '\\pL+', '(?P<x>a)', '(?x) a # verbose'] } } }, NOW);
  const problems = problemsOf({ aggregate: 'a', column_types: { t: { type: 'text', regex: ['a(?i)b', '(?-u)a', '(?<=a)b'] } } });
  assert.deepEqual(problems.map((p) => p.field), ['column_types.t.regex.0', 'column_types.t.regex.1', 'column_types.t.regex.2']);
});

test('schema model - restrict modes accept the original aliases', () => {
  const table: Record<string, string[]> = {
    off: ['off', 'false', '0', 'no', 'none', 'unrestricted', 'dev', 'OFF', ' Dev '],
    default: ['default', 'true', '1', 'yes', 'on', 'prod', 'restricted', 'hybrid', 'PROD'],
    strict: ['strict', 'all', 'enforced', 'Strict'],
  };
  for (const [mode, spellings] of Object.entries(table)) for (const s of spellings) assert.equal(parseRestrictMode(s), mode, s);
  assert.throws(() => parseRestrictMode('sometimes'), (err: unknown) => err instanceof DbxError && err.code === 'invalid_input' && /sometimes/.test(err.message));
  assert.deepEqual(schemaRequiredViolation('order'), {
    field: '',
    rule: 'schema_required',
    message: 'aggregate order requires a schema before events can be appended when restrict=strict',
  });
});

test('schema model - the country list holds the 249 ISO 3166-1 alpha-2 codes', () => {
  assert.equal(COUNTRY_CODES.size, 249);
  for (const code of ['US', 'GB', 'DE', 'AX', 'SS', 'BQ']) assert.ok(COUNTRY_CODES.has(code), code);
  for (const code of ['UK', 'EU', 'XK', 'us']) assert.equal(COUNTRY_CODES.has(code), false, code);
  // Every code is a region ICU knows by name (an unknown region comes back as its own code).
  const names = new Intl.DisplayNames(['en'], { type: 'region' });
  for (const code of COUNTRY_CODES) assert.notEqual(names.of(code), code, code);
});

test('schema model - the core index exports the schema API without clashes', () => {
  assert.equal(typeof core.parseAggregateSchema, 'function');
  assert.equal(typeof core.compileSchema, 'function');
  assert.equal(typeof core.toJsonSchema, 'function');
  assert.equal(typeof core.parseRestrictMode, 'function');
  assert.equal(typeof core.canonicalColumnType, 'function');
});
