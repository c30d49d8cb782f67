/**
 * The schema registry over HTTP (issue 9 items 1, 9, 11): CRUD per tenant, numbered history kept
 * across changes and deletes, every problem of a bad schema in one 400, 404s, auth, the dry-run
 * validation, the JSON Schema export (checked with ajv) and durability across a restart.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { issueToken, readConfig, type IssueInput } from '../src/core/index.js';
import { startServer, type RunningServer } from '../src/coordinator/index.js';
import { httpRequest, removeDir, tempDataDir } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

let server: RunningServer;
let dataDir: string;
let root: string;

before(async () => {
  dataDir = tempDataDir();
  server = await startServer({ dataDir, listenPort: 0, host: '127.0.0.1', logLevel: 'silent' });
  root = token({ actions: ['*'] });
});
after(async () => {
  await server.stop();
  removeDir(dataDir);
});

function token(input: Partial<IssueInput>): string {
  return issueToken(readConfig(dataDir).config.auth, { group: 'team', user: 'tester', actions: ['*'], ...input }).token;
}

const call = (method: string, path: string, body?: unknown, headers?: Record<string, string>, tok = root) => httpRequest(server.url, tok, method, path, body, headers);
const acme = { 'x-tenant-id': 'acme' };

const person = {
  snapshot_threshold: 50,
  column_types: {
    age: { type: 'Int', range: { min: '0', max: '150' } },
    email: { type: 'string', format: 'email', required: true },
    name: 'text',
  },
  events: { person_created: { fields: ['email', 'name'] }, person_updated: {} },
};

test('schemas - create, get, list, replace and delete over HTTP', { timeout: 20_000 }, async () => {
  const created = await call('POST', '/v1/schemas', { aggregate: 'person', ...person });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.version, 1);
  assert.equal(created.body.tenant, 'default');
  const schema = created.body.schema;
  assert.equal(schema.aggregate, 'person');
  assert.equal(schema.column_types.age.type, 'integer', 'canonical type names');
  assert.deepEqual(schema.column_types.name, { type: 'text' });
  assert.deepEqual(schema.events.person_updated, { fields: [] });
  assert.equal(schema.locked, false);
  assert.equal(schema.created_at, schema.updated_at);

  assertError(await call('POST', '/v1/schemas', { aggregate: 'person', ...person }), 409, 'already_exists');
  const got = await call('GET', '/v1/schemas/person');
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, created.body);

  await new Promise((r) => setTimeout(r, 5));
  const replaced = await call('PUT', '/v1/schemas/person', { ...person, locked: true });
  assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
  assert.equal(replaced.body.version, 2);
  assert.equal(replaced.body.schema.locked, true);
  assert.equal(replaced.body.schema.created_at, schema.created_at, 'created_at is kept');
  assert.ok(replaced.body.schema.updated_at > schema.updated_at, 'updated_at moves');
  const again = await call('PUT', '/v1/schemas/person', { ...person, locked: true });
  assert.equal(again.body.version, 2, 'an unchanged schema is not a new version');

  assert.equal((await call('PUT', '/v1/schemas/order', { events: { order_placed: {} } })).status, 200, 'PUT creates');
  const list = await call('GET', '/v1/schemas');
  assert.equal(list.status, 200);
  assert.deepEqual(
    list.body.items.map((r: any) => [r.schema.aggregate, r.version]),
    [['order', 1], ['person', 2]],
  );
  const paged = await call('GET', '/v1/schemas?take=1');
  assert.deepEqual(paged.body.items.map((r: any) => r.schema.aggregate), ['order']);
  assert.equal(paged.body.next_cursor, 'order');
  assert.deepEqual((await call('GET', `/v1/schemas?cursor=${paged.body.next_cursor}`)).body.items.map((r: any) => r.schema.aggregate), ['person']);

  const deleted = await call('DELETE', '/v1/schemas/order');
  assert.equal(deleted.status, 200);
  assert.equal(deleted.body.deleted, true);
  assertError(await call('GET', '/v1/schemas/order'), 404, 'not_found');
  assert.deepEqual((await call('GET', '/v1/schemas')).body.items.map((r: any) => r.schema.aggregate), ['person']);
});

test('schemas - every change is a numbered version, kept after later changes and after delete', { timeout: 20_000 }, async () => {
  const base = { events: { invoice_sent: {} } };
  assert.equal((await call('PUT', '/v1/schemas/invoice', base)).body.version, 1);
  assert.equal((await call('PUT', '/v1/schemas/invoice', { ...base, snapshot_threshold: 10 })).body.version, 2);
  assert.equal((await call('PUT', '/v1/schemas/invoice', { ...base, hidden_fields: ['total', 'total'] })).body.version, 3);
  const tombstone = await call('DELETE', '/v1/schemas/invoice');
  assert.equal(tombstone.body.version, 4);
  const recreated = await call('POST', '/v1/schemas', { aggregate: 'invoice', events: { invoice_paid: {} } });
  assert.equal(recreated.status, 201);
  assert.equal(recreated.body.version, 5, 'numbering continues after a delete');

  const history = await call('GET', '/v1/schemas/invoice/versions?take=100');
  assert.equal(history.status, 200);
  assert.deepEqual(
    history.body.items.map((v: any) => [v.version, v.deleted, Object.keys(v.schema.events)]),
    [
      [1, false, ['invoice_sent']],
      [2, false, ['invoice_sent']],
      [3, false, ['invoice_sent']],
      [4, true, ['invoice_sent']],
      [5, false, ['invoice_paid']],
    ],
  );
  assert.equal(history.body.items[1].schema.snapshot_threshold, 10);
  assert.deepEqual(history.body.items[2].schema.hidden_fields, ['total']);
  assert.equal(history.body.next_cursor, null);

  const v2 = await call('GET', '/v1/schemas/invoice/versions/2');
  assert.equal(v2.status, 200);
  assert.deepEqual(v2.body, history.body.items[1], 'an old version reads back unchanged');
  const page = await call('GET', '/v1/schemas/invoice/versions?take=2&cursor=2');
  assert.deepEqual(page.body.items.map((v: any) => v.version), [3, 4]);
  assert.equal(page.body.next_cursor, '4');
  assertError(await call('GET', '/v1/schemas/invoice/versions/9'), 404, 'not_found');
  assertError(await call('GET', '/v1/schemas/invoice/versions/0'), 400, 'validation_failed');
  assertError(await call('GET', '/v1/schemas/never_had_one/versions'), 404, 'not_found');
});

test('schemas - tenants are isolated: own schemas, own numbering', { timeout: 20_000 }, async () => {
  const created = await call('POST', '/v1/schemas', { aggregate: 'ticket', events: { ticket_opened: {} } }, acme);
  assert.equal(created.status, 201);
  assert.equal(created.body.tenant, 'acme');
  assertError(await call('GET', '/v1/schemas/ticket'), 404, 'not_found');
  assert.ok(!(await call('GET', '/v1/schemas')).body.items.some((r: any) => r.schema.aggregate === 'ticket'));
  assert.equal((await call('POST', '/v1/schemas', { aggregate: 'ticket', events: { other_event: {} } })).body.version, 1, 'default has its own ticket');
  assert.deepEqual(Object.keys((await call('GET', '/v1/schemas/ticket', undefined, acme)).body.schema.events), ['ticket_opened']);
  assert.deepEqual((await call('GET', '/v1/schemas', undefined, acme)).body.items.map((r: any) => r.schema.aggregate), ['ticket']);
  assert.equal((await call('DELETE', '/v1/schemas/ticket', undefined, acme)).status, 200);
  assert.equal((await call('GET', '/v1/schemas/ticket')).status, 200, "deleting acme's schema left default's");
});

test('schemas - a bad schema is one 400 validation_failed listing every problem; nothing is stored', { timeout: 20_000 }, async () => {
  const bad = await call('PUT', '/v1/schemas/broken', {
    column_types: {
      a: 'varchar',
      b: { type: 'text', regex: ['(unclosed'] },
      c: { type: 'integer', range: { min: 'ten' } },
      d: { type: 'text', format: 'postcode' },
      e: { type: 'boolean', length: { max: 3 } },
    },
    events: { 'Not-Snake': {} },
  });
  assertError(bad, 400, 'validation_failed');
  const fields = (bad.body.error.details as { field: string; rule: string; message: string }[]).map((d) => d.field).sort();
  assert.deepEqual(fields, ['column_types.a.type', 'column_types.b.regex.0', 'column_types.c.range.min', 'column_types.d.format', 'column_types.e.length', 'events.Not-Snake'].sort());
  for (const d of bad.body.error.details) assert.ok(d.rule && d.message, JSON.stringify(d));
  assertError(await call('GET', '/v1/schemas/broken'), 404, 'not_found');
  assertError(await call('GET', '/v1/schemas/broken/versions'), 404, 'not_found');

  // Shape problems (a misspelt rule, a wrong JSON type) are refused before any is stored, all listed.
  const shape = await call('PUT', '/v1/schemas/broken', { column_types: { a: { type: 'text', requried: true } }, locked: 'yes', events: {} });
  assertError(shape, 400, 'validation_failed');
  assert.ok(shape.body.error.details.length >= 2, JSON.stringify(shape.body.error.details));
  assertError(await call('PUT', '/v1/schemas/broken', { aggregate: 'other', events: {} }), 400, 'validation_failed');
  assertError(await call('PUT', '/v1/schemas/Broken', { events: {} }), 400, 'validation_failed');
  assertError(await call('POST', '/v1/schemas', { events: {} }), 400, 'validation_failed');
  assertError(await call('PUT', '/v1/schemas/broken', '[1,2]'), 400, 'validation_failed');
  assertError(await call('GET', '/v1/schemas/broken'), 404, 'not_found');
});

test('schemas - unknown schemas are 404 on get, delete, export and history', { timeout: 20_000 }, async () => {
  assertError(await call('GET', '/v1/schemas/ghost'), 404, 'not_found');
  assertError(await call('DELETE', '/v1/schemas/ghost'), 404, 'not_found');
  assertError(await call('GET', '/v1/schemas/ghost/json-schema'), 404, 'not_found');
  assertError(await call('GET', '/v1/schemas/ghost/versions/1'), 404, 'not_found');
});

test('schemas - expected_version guards replace and delete (409 version_conflict)', { timeout: 20_000 }, async () => {
  assertError(await call('PUT', '/v1/schemas/guarded?expected_version=1', { events: { a_happened: {} } }), 409, 'version_conflict');
  assert.equal((await call('PUT', '/v1/schemas/guarded?expected_version=0', { events: { a_happened: {} } })).body.version, 1);
  const stale = await call('PUT', '/v1/schemas/guarded?expected_version=0', { events: { b_happened: {} } });
  assertError(stale, 409, 'version_conflict');
  assert.equal(stale.body.error.details.current_version, 1);
  assert.equal((await call('PUT', '/v1/schemas/guarded?expected_version=1', { events: { b_happened: {} } })).body.version, 2);
  assertError(await call('DELETE', '/v1/schemas/guarded?expected_version=1'), 409, 'version_conflict');
  assert.equal((await call('DELETE', '/v1/schemas/guarded?expected_version=2')).status, 200);
});

test('schemas - auth: schema.read reads, schema.write writes, aggregate.read gets 403; resources apply', { timeout: 20_000 }, async () => {
  assert.equal((await call('PUT', '/v1/schemas/secured', { events: { s_made: {} } })).status, 200);
  const aggregateReader = token({ actions: ['aggregate.read'] });
  assertError(await call('PUT', '/v1/schemas/secured', { events: { s_changed: {} } }, {}, aggregateReader), 403, 'forbidden');
  assertError(await call('POST', '/v1/schemas', { aggregate: 'other', events: {} }, {}, aggregateReader), 403, 'forbidden');
  assertError(await call('DELETE', '/v1/schemas/secured', undefined, {}, aggregateReader), 403, 'forbidden');
  assertError(await call('GET', '/v1/schemas/secured', undefined, {}, aggregateReader), 403, 'forbidden');
  assertError(await call('GET', '/v1/schemas', undefined, {}, aggregateReader), 403, 'forbidden');

  const reader = token({ actions: ['schema.read'] });
  assert.equal((await call('GET', '/v1/schemas/secured', undefined, {}, reader)).status, 200);
  assert.equal((await call('GET', '/v1/schemas/secured/versions', undefined, {}, reader)).status, 200);
  assert.equal((await call('POST', '/v1/schemas/secured/validate', { event_type: 's_made', payload: {} }, {}, reader)).status, 200);
  assertError(await call('PUT', '/v1/schemas/secured', { events: { s_changed: {} } }, {}, reader), 403, 'forbidden');

  const scoped = token({ actions: ['schema.*'], resources: ['secured'] });
  assert.equal((await call('PUT', '/v1/schemas/secured', { events: { s_changed: {} } }, {}, scoped)).status, 200);
  assertError(await call('PUT', '/v1/schemas/elsewhere', { events: { e_made: {} } }, {}, scoped), 403, 'forbidden');
  assertError(await call('POST', '/v1/schemas', { aggregate: 'elsewhere', events: {} }, {}, scoped), 403, 'forbidden');
  assert.deepEqual((await call('GET', '/v1/schemas', undefined, {}, scoped)).body.items.map((r: any) => r.schema.aggregate), ['secured'], 'lists show only covered types');
  assertError(await call('GET', '/v1/schemas/secured', undefined, acme, scoped), 403, 'forbidden');
  assertError(await call('GET', '/v1/schemas/secured', undefined, {}, 'not-a-token'), 401, 'unauthorized');
  assertError(await call('GET', '/v1/schemas/secured', undefined, {}, ''), 401, 'unauthorized');
});

test("schemas - validate checks a payload with the server's compiled schema and writes nothing", { timeout: 20_000 }, async () => {
  await call('PUT', '/v1/schemas/member', {
    column_types: { age: { type: 'integer', range: { min: '18' } }, email: { type: 'text', format: 'email', required: true }, active: 'boolean' },
    events: { member_joined: {} },
  });
  const ok = await call('POST', '/v1/schemas/member/validate', { event_type: 'member_joined', payload: { age: '42', email: 'a@example.com', active: 'yes' } });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.valid, true);
  assert.deepEqual(ok.body.violations, []);
  assert.equal(ok.body.payload.age, 42, 'normalised as a write would be');
  assert.equal(ok.body.schema_version, 1);

  const bad = await call('POST', '/v1/schemas/member/validate', { event_type: 'member_joined', payload: { age: 12, email: 'nope' } });
  assert.equal(bad.status, 200);
  assert.equal(bad.body.valid, false);
  assert.deepEqual(bad.body.violations.map((v: any) => [v.field, v.rule]).sort(), [['age', 'range'], ['email', 'format']]);
  const undeclared = await call('POST', '/v1/schemas/member/validate', { event_type: 'member_left', payload: { email: 'a@example.com' } });
  assert.deepEqual(undeclared.body.violations.map((v: any) => v.rule), ['event_undeclared']);

  const none = await call('POST', '/v1/schemas/no_schema/validate', { event_type: 'any_thing', payload: { x: 1 } });
  assert.deepEqual(none.body, { valid: true, violations: [], payload: { x: 1 }, schema_version: null });
  assertError(await call('POST', '/v1/schemas/member/validate', { event_type: 'member_joined', payload: [] }), 400, 'validation_failed');
  assert.equal((await call('GET', '/v1/schemas/member')).body.version, 1);
});

test('schemas - the JSON Schema export gives the same verdicts as the server (ajv 2020)', { timeout: 20_000 }, async () => {
  await call('PUT', '/v1/schemas/shipment', {
    column_types: {
      weight: { type: 'float', range: { min: '0', max: '1000' } },
      count: { type: 'integer', required: true },
      code: { type: 'text', length: { min: 2, max: 5 }, regex: ['^[A-Z]+$'] },
      sent_at: 'timestamp',
      address: { type: 'object', properties: { zip: { type: 'text', required: true } } },
    },
    events: { shipment_sent: { fields: ['address', 'code', 'count', 'sent_at', 'weight'] }, shipment_noted: {} },
  });
  const exported = await call('GET', '/v1/schemas/shipment/json-schema');
  assert.equal(exported.status, 200, JSON.stringify(exported.body));
  const { validatorFor } = await loadAjv();
  const samples: [string, Record<string, unknown>][] = [
    ['shipment_sent', { count: 3, weight: 1.5, code: 'AB', sent_at: '2024-01-01T00:00:00Z', address: { zip: '1000' } }],
    ['shipment_sent', { count: 3, weight: 1.5, code: 'AB', sent_at: '2024-01-01T00:00:00Z', address: {} }],
    ['shipment_sent', { count: 3.5, weight: 1.5, code: 'AB', sent_at: '2024-01-01T00:00:00Z', address: { zip: '1' } }],
    ['shipment_sent', { count: 3, weight: 2000, code: 'AB', sent_at: '2024-01-01T00:00:00Z', address: { zip: '1' } }],
    ['shipment_sent', { count: 3, weight: 1, code: 'toolong', sent_at: '2024-01-01T00:00:00Z', address: { zip: '1' } }],
    ['shipment_sent', { count: 3, weight: 1, code: 'ab', sent_at: '2024-01-01T00:00:00Z', address: { zip: '1' } }],
    ['shipment_sent', { count: 3, weight: 1, code: 'AB', sent_at: 'yesterday', address: { zip: '1' } }],
    ['shipment_sent', { count: 3, weight: 1, code: 'AB', address: { zip: '1' } }],
    ['shipment_sent', { count: 3, weight: 1, code: 'AB', sent_at: '2024-01-01T00:00:00Z', address: { zip: '1' }, extra: true }],
    ['shipment_noted', { anything: 'goes', count: 1 }],
    ['shipment_noted', { weight: 1 }],
  ];
  for (const [event, payload] of samples) {
    const server = (await call('POST', '/v1/schemas/shipment/validate', { event_type: event, payload })).body;
    const local = validatorFor(exported.body, event)(payload);
    assert.equal(local, server.valid, `${event} ${JSON.stringify(payload)}: ajv ${local}, server ${server.valid} ${JSON.stringify(server.violations)}`);
  }
});

/** ajv is a dev dependency; the document's layout (one schema per event) comes from json-schema.ts. */
async function loadAjv(): Promise<{ validatorFor: (doc: any, event: string) => (payload: unknown) => boolean }> {
  const ajvModule: any = await import('ajv/dist/2020.js');
  const Ajv2020 = ajvModule.default?.default ?? ajvModule.default ?? ajvModule;
  let addFormats: ((ajv: unknown) => void) | undefined;
  try {
    const formats: any = await import('ajv-formats');
    addFormats = formats.default?.default ?? formats.default;
  } catch {
    addFormats = undefined;
  }
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats?.(ajv);
  return {
    validatorFor: (doc, event) => {
      const schema = eventDocument(doc, event);
      assert.ok(schema, `the export has a document for ${event}: ${JSON.stringify(doc).slice(0, 300)}`);
      const validate = ajv.compile(schema);
      return (payload) => validate(payload) as boolean;
    },
  };
}

function eventDocument(doc: any, event: string): unknown {
  return doc?.events?.[event] ?? doc?.[event] ?? doc?.$defs?.[event];
}

test('schemas - the registry is durable: schemas and history survive a restart; listeners hear each change', { timeout: 30_000 }, async () => {
  const heard: [string, string, number, boolean][] = [];
  const unsubscribe = server.registry.onChange((c) => void heard.push([c.tenant, c.aggregate, c.version, c.record !== null]));
  await call('PUT', '/v1/schemas/durable', { events: { d_made: {} } });
  await call('PUT', '/v1/schemas/durable', { events: { d_made: {} } }); // unchanged: nothing to hear
  await call('PUT', '/v1/schemas/durable', { events: { d_changed: {} } }, acme);
  await call('DELETE', '/v1/schemas/durable', undefined, acme);
  unsubscribe();
  assert.deepEqual(heard, [
    ['default', 'durable', 1, true],
    ['acme', 'durable', 1, true],
    ['acme', 'durable', 2, false],
  ]);
  assert.equal(server.registry.get('default', 'durable')?.version, 1);

  const before = (await call('GET', '/v1/schemas/invoice/versions?take=100')).body;
  await server.stop();
  server = await startServer({ dataDir, listenPort: 0, host: '127.0.0.1', logLevel: 'silent' });
  assert.deepEqual((await call('GET', '/v1/schemas/invoice/versions?take=100')).body, before);
  assert.equal((await call('GET', '/v1/schemas/durable')).body.version, 1);
  assert.equal((await call('GET', '/v1/schemas/durable/versions', undefined, acme)).body.items.length, 2);
});

test('schemas - /openapi.json describes the schema routes and a strict schema body', { timeout: 20_000 }, async () => {
  const doc = (await httpRequest(server.url, undefined, 'GET', '/openapi.json')).body;
  for (const [path, method] of [
    ['/v1/schemas', 'get'],
    ['/v1/schemas', 'post'],
    ['/v1/schemas/{aggregate}', 'get'],
    ['/v1/schemas/{aggregate}', 'put'],
    ['/v1/schemas/{aggregate}', 'delete'],
    ['/v1/schemas/{aggregate}/versions', 'get'],
    ['/v1/schemas/{aggregate}/versions/{version}', 'get'],
    ['/v1/schemas/{aggregate}/json-schema', 'get'],
    ['/v1/schemas/{aggregate}/validate', 'post'],
  ] as const) {
    assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} documented`);
  }
  const put = doc.paths['/v1/schemas/{aggregate}'].put;
  assert.equal(put['x-eventdbx-action'], 'schema.write');
  assert.equal(doc.paths['/v1/schemas'].get['x-eventdbx-action'], 'schema.read');
  const body = put.requestBody.content['application/json'].schema;
  assert.equal(body.additionalProperties, false);
  for (const key of ['aggregate', 'snapshot_threshold', 'locked', 'field_locks', 'hidden', 'hidden_fields', 'column_types', 'events']) {
    assert.ok(body.properties[key], `body documents ${key}`);
  }
  // The column rules refer to themselves (object columns nest), so they are a component the body refers to.
  const columns = body.properties.column_types.anyOf.find((s: any) => s.type === 'object').additionalProperties.$ref.split('/').pop();
  assert.match(JSON.stringify(doc.components.schemas[columns]), /does_not_contain/, 'column rules are described');
});
