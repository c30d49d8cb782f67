/**
 * Hidden fields in `?filter=` / `?sort=` (issue 9 item 7): answers leave hidden_fields out, so a
 * filter or sort on one must be refused too, or it would reveal the value one query at a time.
 * Real server, real LMDB; every list route that takes a filter is covered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

const server = useServer();

const q = (path: string, params: Record<string, string>) =>
  `${path}?${Object.entries(params)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join('&')}`;

async function ok(path: string): Promise<any> {
  const res = await server.request('GET', path);
  assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
  return res.body;
}

async function refused(path: string, field: string, message = /is hidden by the schema/): Promise<void> {
  const res = await server.request('GET', path);
  assertError(res, 400, 'invalid_input');
  assert.match(res.body.error.message, message, path);
  // Nothing about the value comes back, in the message or elsewhere.
  assert.doesNotMatch(JSON.stringify(res.body), /s3cr3t|0150/, `${path} (${field})`);
}

let ready: Promise<void> | undefined;
function seed(): Promise<void> {
  ready ??= (async () => {
    const put = await server.request('PUT', '/v1/schemas/vault', { hidden_fields: ['secret', 'address.zip'], events: { opened: {}, changed: {} } });
    assert.ok(put.status === 200 || put.status === 201, JSON.stringify(put.body));
    for (const [id, secret] of [
      ['v1', 's3cr3t'],
      ['v2', 'other'],
    ] as const) {
      const res = await server.request('POST', `/v1/aggregates/vault/${id}`, { event_type: 'opened', payload: { secret, name: id, address: { city: 'Oslo', zip: '0150' } } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    // A type without a schema, with a field of the same name: a list across types still refuses it.
    const plain = await server.request('POST', '/v1/aggregates/plain/p1', { event_type: 'made', payload: { secret: 'open', name: 'p1' } });
    assert.equal(plain.status, 201, JSON.stringify(plain.body));
  })();
  return ready;
}

const hiddenAggregateFilters = ["state.secret = 's3cr3t'", "secret = 's3cr3t'", "name = 'v1' AND NOT (state.secret LIKE 's%')", "state.address.zip IN ['0150']", "address.zip != null"];
const hiddenEventFilters = ["payload.secret = 's3cr3t'", "secret = 's3cr3t'", "event_type = 'opened' OR payload.address.zip = '0150'"];

test('schema hidden filter - a filter on a hidden field is refused on every aggregate list', { timeout: 30_000 }, async () => {
  await seed();
  for (const filter of hiddenAggregateFilters) {
    await refused(q('/v1/aggregates', { filter }), filter);
    await refused(q('/v1/aggregates/vault', { filter }), filter);
  }
});

test('schema hidden filter - a filter on a hidden field is refused on every event list', { timeout: 30_000 }, async () => {
  await seed();
  for (const filter of hiddenEventFilters) {
    await refused(q('/v1/events', { filter }), filter);
    await refused(q('/v1/aggregates/vault/v1/events', { filter }), filter);
  }
});

// Sort takes only built-in fields (filter.ts parseSort), so a hidden one is refused as unsupported.
test('schema hidden filter - a sort on a hidden field is refused', { timeout: 30_000 }, async () => {
  await seed();
  for (const sort of ['state.secret', 'secret:desc', 'address.zip']) {
    await refused(q('/v1/aggregates', { sort }), sort, /unsupported aggregate sort field/);
    await refused(q('/v1/aggregates/vault', { sort }), sort, /unsupported aggregate sort field/);
  }
  for (const sort of ['payload.secret', 'secret']) await refused(q('/v1/events', { sort }), sort, /unsupported event sort field/);
});

test('schema hidden filter - filters on visible fields still work', { timeout: 30_000 }, async () => {
  await seed();
  const ids = (body: any) => body.items.map((i: any) => `${i.aggregate_type}/${i.aggregate_id}`);
  assert.deepEqual(ids(await ok(q('/v1/aggregates/vault', { filter: "state.name = 'v1'" }))), ['vault/v1']);
  assert.deepEqual(ids(await ok(q('/v1/aggregates', { filter: "address.city = 'Oslo'", sort: 'aggregate_id:desc' }))), ['vault/v2', 'vault/v1']);
  // Above a hidden field (the object holding it) is allowed: an object matches no literal.
  assert.deepEqual(ids(await ok(q('/v1/aggregates/vault', { filter: "address != null AND name = 'v2'" }))), ['vault/v2']);
  assert.deepEqual(ids(await ok(q('/v1/events', { filter: "payload.name = 'p1'" }))), ['plain/p1']);
  assert.deepEqual(ids(await ok(q('/v1/aggregates/vault/v2/events', { filter: "event_type = 'opened'" }))), ['vault/v2']);
  // A field of a type in the path that hides nothing is not refused because another type hides it.
  assert.deepEqual(ids(await ok(q('/v1/aggregates/plain', { filter: "secret = 'open'" }))), ['plain/p1']);
});
