/** Write paths (DESIGN §3, §6): create, apply, patch, archive/restore, concurrency, idempotency, batch. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shardFor } from '../src/core/index.js';
import { useServer } from './helpers/server.js';
import { assertError, headOf, range } from './helpers/assertions.js';

const server = useServer();

test('writes - create answers 201 with the aggregate; a second create is 409 already_exists', { timeout: 20_000 }, async () => {
  const created = await server.request('POST', '/v1/aggregates/person/w-create', { event_type: 'person_created', payload: { name: 'Ada', age: 36 } });
  assert.equal(created.status, 201);
  assert.equal(created.body.aggregate_type, 'person');
  assert.equal(created.body.aggregate_id, 'w-create');
  assert.equal(created.body.version, 1);
  assert.equal(created.body.archived, false);
  assert.deepEqual(created.body.state, { name: 'Ada', age: 36 });
  assert.match(created.body.merkle_root, /^[0-9a-f]{64}$/);

  const again = await server.request('POST', '/v1/aggregates/person/w-create', { event_type: 'person_created', payload: { name: 'Bob' } });
  assertError(again, 409, 'already_exists');
  assert.deepEqual(await headOf(server, 'person', 'w-create'), { version: 1, merkle_root: created.body.merkle_root });
});

test('writes - apply to a missing aggregate creates it and merges payloads (null removes a key)', { timeout: 20_000 }, async () => {
  const first = await server.request('POST', '/v1/aggregates/person/w-apply/events', { event_type: 'person_named', payload: { name: 'Ada', city: 'London' } });
  assert.equal(first.status, 201);
  assert.equal(first.body.version, 1);
  assert.equal(first.body.event_type, 'person_named');
  const second = await server.request('POST', '/v1/aggregates/person/w-apply/events', { event_type: 'person_moved', payload: { city: null, country: 'UK' } });
  assert.equal(second.status, 201);
  assert.equal(second.body.version, 2);
  const got = await server.request('GET', '/v1/aggregates/person/w-apply');
  assert.equal(got.status, 200);
  assert.deepEqual(got.body.state, { name: 'Ada', country: 'UK' });
  assert.equal(got.body.merkle_root, second.body.merkle_root);
});

test('writes - POST /v1/events names the aggregate in the body', { timeout: 20_000 }, async () => {
  const res = await server.request('POST', '/v1/events', { aggregate_type: 'order', aggregate_id: 'w-body', event_type: 'order_placed', payload: { total: 12.5 } });
  assert.equal(res.status, 201);
  assert.equal(res.body.aggregate_type, 'order');
  assert.equal(res.body.aggregate_id, 'w-body');
  assert.equal(res.body.version, 1);
  const got = await server.request('GET', '/v1/aggregates/order/w-body');
  assert.deepEqual(got.body.state, { total: 12.5 });
});

test('writes - patch applies RFC 6902, stores the patch array as payload; patch on a missing aggregate is 404', { timeout: 20_000 }, async () => {
  await server.request('POST', '/v1/aggregates/person/w-patch', { event_type: 'person_created', payload: { name: 'Ada', tags: ['a'], address: { city: 'London' } } });
  const patch = [
    { op: 'replace', path: '/name', value: 'Grace' },
    { op: 'add', path: '/tags/-', value: 'b' },
    { op: 'remove', path: '/address/city' },
    { op: 'add', path: '/age', value: 85 },
  ];
  const res = await server.request('POST', '/v1/aggregates/person/w-patch/patch', { event_type: 'person_patched', patch });
  assert.equal(res.status, 201);
  assert.equal(res.body.version, 2);
  assert.deepEqual(res.body.payload, patch);
  const got = await server.request('GET', '/v1/aggregates/person/w-patch');
  assert.deepEqual(got.body.state, { name: 'Grace', tags: ['a', 'b'], address: {}, age: 85 });
  const stored = await server.request('GET', '/v1/aggregates/person/w-patch/events');
  assert.deepEqual(stored.body.items[1].payload, patch);

  const missing = await server.request('POST', '/v1/aggregates/person/w-nobody/patch', { event_type: 'person_patched', patch });
  assertError(missing, 404, 'not_found');
  assert.equal(await headOf(server, 'person', 'w-nobody'), null);
});

test('writes - archive refuses further writes with 409 aggregate_archived; restore allows them again', { timeout: 20_000 }, async () => {
  await server.request('POST', '/v1/aggregates/person/w-arch', { event_type: 'person_created', payload: { name: 'Ada' } });
  const archived = await server.request('POST', '/v1/aggregates/person/w-arch/archive', { comment: 'gone' });
  assert.equal(archived.status, 200);
  assert.equal(archived.body.archived, true);
  assert.equal(archived.body.version, 2);
  const before = await headOf(server, 'person', 'w-arch');

  assertError(await server.request('POST', '/v1/aggregates/person/w-arch/events', { event_type: 'person_named', payload: { name: 'X' } }), 409, 'aggregate_archived');
  assertError(await server.request('POST', '/v1/aggregates/person/w-arch/patch', { event_type: 'p', patch: [{ op: 'add', path: '/x', value: 1 }] }), 409, 'aggregate_archived');
  assertError(await server.request('POST', '/v1/events', { aggregate_type: 'person', aggregate_id: 'w-arch', event_type: 'person_named' }), 409, 'aggregate_archived');
  assertError(await server.request('POST', '/v1/aggregates/person/w-arch/archive', {}), 409, 'aggregate_archived');
  assert.deepEqual(await headOf(server, 'person', 'w-arch'), before);

  // The body of archive/restore is optional altogether.
  const restored = await server.request('POST', '/v1/aggregates/person/w-arch/restore');
  assert.equal(restored.status, 200);
  assert.equal(restored.body.archived, false);
  assert.equal(restored.body.version, 3);
  const events = await server.request('GET', '/v1/aggregates/person/w-arch/events');
  assert.deepEqual(events.body.items.map((e: { event_type: string }) => e.event_type), ['person_created', 'aggregate_archived', 'aggregate_restored']);
  assert.deepEqual(events.body.items[1].payload, { comment: 'gone' });
  const applied = await server.request('POST', '/v1/aggregates/person/w-arch/events', { event_type: 'person_named', payload: { name: 'Back' } });
  assert.equal(applied.status, 201);
  assert.equal(applied.body.version, 4);
});

test('writes - expected_version mismatch is 409 version_conflict with details.current_version', { timeout: 20_000 }, async () => {
  await server.request('POST', '/v1/aggregates/person/w-occ', { event_type: 'person_created', payload: { n: 1 } });
  await server.request('POST', '/v1/aggregates/person/w-occ/events', { event_type: 'person_named', payload: { n: 2 } });
  const before = await headOf(server, 'person', 'w-occ');
  const stale = await server.request('POST', '/v1/aggregates/person/w-occ/events', { event_type: 'person_named', payload: { n: 3 }, expected_version: 1 });
  assertError(stale, 409, 'version_conflict');
  assert.equal(stale.body.error.details.current_version, 2);
  const stalePatch = await server.request('POST', '/v1/aggregates/person/w-occ/patch', { event_type: 'p', patch: [{ op: 'add', path: '/x', value: 1 }], expected_version: 5 });
  assertError(stalePatch, 409, 'version_conflict');
  assert.equal(stalePatch.body.error.details.current_version, 2);
  const newAggregate = await server.request('POST', '/v1/aggregates/person/w-occ-new/events', { event_type: 'person_named', payload: {}, expected_version: 1 });
  assertError(newAggregate, 409, 'version_conflict');
  assert.equal(newAggregate.body.error.details.current_version, 0);
  assert.deepEqual(await headOf(server, 'person', 'w-occ'), before);

  const ok = await server.request('POST', '/v1/aggregates/person/w-occ/events', { event_type: 'person_named', payload: { n: 3 }, expected_version: 2 });
  assert.equal(ok.status, 201);
  assert.equal(ok.body.version, 3);
});

test('writes - an idempotent retry returns the same event; the key reused with other content is 409', { timeout: 20_000 }, async () => {
  const body = { event_type: 'payment_made', payload: { amount: 10 }, idempotency_key: 'pay-1' };
  const first = await server.request('POST', '/v1/aggregates/account/w-idem/events', body);
  assert.equal(first.status, 201);
  const retry = await server.request('POST', '/v1/aggregates/account/w-idem/events', body);
  assert.equal(retry.status, 201);
  assert.equal(retry.body.metadata.event_id, first.body.metadata.event_id);
  assert.equal(retry.body.hash, first.body.hash);
  assert.equal(retry.body.version, 1);
  assert.equal(retry.headers.get('idempotent-replayed'), 'true');
  assert.equal((await headOf(server, 'account', 'w-idem'))?.version, 1);

  const reused = await server.request('POST', '/v1/aggregates/account/w-idem/events', { ...body, payload: { amount: 99 } });
  assertError(reused, 409, 'already_exists');
  assert.equal((await headOf(server, 'account', 'w-idem'))?.version, 1);

  // Concurrent retries of one key append once.
  const burst = await Promise.all(range(8).map(() => server.request('POST', '/v1/aggregates/account/w-idem/events', { ...body, idempotency_key: 'pay-2' })));
  assert.ok(burst.every((r) => r.status === 201));
  assert.equal(new Set(burst.map((r) => r.body.metadata.event_id)).size, 1);
  assert.equal((await headOf(server, 'account', 'w-idem'))?.version, 2);
});

/** Ids of one type, at least `perShard` on each of the 4 default shards (placement is a hash). */
function idsSpanningShards(prefix: string, perShard: number): string[] {
  const counts = [0, 0, 0, 0];
  const ids: string[] = [];
  for (let i = 1; counts.some((c) => c < perShard); i++) {
    const id = `${prefix}-${i}`;
    const shard = shardFor({ shardCount: 4, multiTenant: false }, 'default', 'item', id);
    if ((counts[shard] as number) >= perShard) continue;
    counts[shard] = (counts[shard] as number) + 1;
    ids.push(id);
  }
  return ids;
}

test('writes - a batch spanning every shard commits all its events, answered in input order', { timeout: 20_000 }, async () => {
  const ids = idsSpanningShards('w-batch', 4);
  const events = ids.flatMap((id) => [
    { aggregate_type: 'item', aggregate_id: id, event_type: 'item_added', payload: { id } },
    { aggregate_type: 'item', aggregate_id: id, event_type: 'item_priced', payload: { price: 1 } },
  ]);
  const res = await server.request('POST', '/v1/batch', { events });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.events.length, events.length);
  res.body.events.forEach((e: { aggregate_id: string; version: number }, i: number) => {
    assert.equal(e.aggregate_id, events[i]?.aggregate_id);
    assert.equal(e.version, (i % 2) + 1);
  });
  for (const id of ids) {
    const got = await server.request('GET', `/v1/aggregates/item/${id}`);
    assert.equal(got.body.version, 2);
    assert.deepEqual(got.body.state, { id, price: 1 });
  }
});

test('writes - a batch with one wrong expected_version changes nothing anywhere', { timeout: 20_000 }, async () => {
  const ids = idsSpanningShards('w-atomic', 4);
  for (const id of ids) await server.request('POST', `/v1/aggregates/item/${id}`, { event_type: 'item_added', payload: { id } });
  const before = await Promise.all(ids.map((id) => headOf(server, 'item', id)));

  const events = ids.map((id, i) => ({
    aggregate_type: 'item',
    aggregate_id: id,
    event_type: 'item_priced',
    payload: { price: i },
    expected_version: i === ids.length - 1 ? 7 : 1,
  }));
  const res = await server.request('POST', '/v1/batch', { events });
  assertError(res, 409, 'version_conflict');
  assert.equal(res.body.error.details.current_version, 1);
  // Also a batch that would create new aggregates alongside the bad one.
  const withNew = await server.request('POST', '/v1/batch', {
    events: [...events.slice(0, 3).map((e) => ({ ...e, aggregate_id: `${e.aggregate_id}-new`, expected_version: 0 })), events[events.length - 1]],
  });
  assertError(withNew, 409, 'version_conflict');
  // And the single-shard path: two events for one aggregate, the second one stale.
  const sameShard = await server.request('POST', '/v1/batch', {
    events: [
      { ...events[0], expected_version: 1 },
      { ...events[0], expected_version: 1 },
    ],
  });
  assertError(sameShard, 409, 'version_conflict');

  const afterwards = await Promise.all(ids.map((id) => headOf(server, 'item', id)));
  assert.deepEqual(afterwards, before);
  for (const id of ids.slice(0, 3)) assert.equal(await headOf(server, 'item', `${id}-new`), null);
  const good = await server.request('POST', '/v1/batch', { events: events.map((e) => ({ ...e, expected_version: 1 })) });
  assert.equal(good.status, 201);
});

test('writes - a batch mixes applies and patches across shards; a patch sees the batch\'s earlier events', { timeout: 20_000 }, async () => {
  const res = await server.request('POST', '/v1/batch', {
    events: [
      { aggregate_type: 'cart', aggregate_id: 'c-1', event_type: 'item_added', payload: { items: ['a'] } },
      { aggregate_type: 'cart', aggregate_id: 'c-2', event_type: 'item_added', payload: { items: ['x'] } },
      { aggregate_type: 'cart', aggregate_id: 'c-1', event_type: 'item_added', patch: [{ op: 'add', path: '/items/-', value: 'b' }] },
    ],
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.deepEqual(res.body.events[2].payload, [{ op: 'add', path: '/items/-', value: 'b' }]);
  assert.deepEqual((await server.request('GET', '/v1/aggregates/cart/c-1')).body.state, { items: ['a', 'b'] });
  const bad = await server.request('POST', '/v1/batch', {
    events: [{ aggregate_type: 'cart', aggregate_id: 'c-1', event_type: 'item_added', patch: [{ op: 'remove', path: '/missing' }] }],
  });
  assertError(bad, 400, 'validation_failed');
  const unknownField = await server.request('POST', '/v1/batch', { events: [{ aggregate_type: 'cart', aggregate_id: 'c-1', event_type: 'x_y', payload: {}, bogus: 1 }] });
  assertError(unknownField, 400, 'validation_failed');
  assert.match(unknownField.body.error.message, /bogus/);
});
