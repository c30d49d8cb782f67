/**
 * Schema enforcement over HTTP against real servers (issue 9 items 5–10): restriction modes, the
 * §6.2 validation order with every violation listed, normalisation stored and hashed, patches
 * validated on the state they produce, refused writes changing nothing, locks, hiding, the schema
 * version recorded per event, schema snapshot thresholds, and a write right after a schema change
 * checked against it (two workers, so the change must reach both).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, spawnServer, startServerInProcess, useServer, type TestServer } from './helpers/server.js';
import { assertError, headOf } from './helpers/assertions.js';

const server = useServer({ configToml: '[storage]\nworkers = 2\n' });

type Answer = { status: number; body: any };
const put = (s: TestServer, aggregate: string, schema: unknown) => s.request('PUT', `/v1/schemas/${aggregate}`, schema);
const create = (s: TestServer, type: string, id: string, event_type: string, payload: unknown) =>
  s.request('POST', `/v1/aggregates/${type}/${id}`, { event_type, payload });
const apply = (s: TestServer, type: string, id: string, event_type: string, payload: unknown) =>
  s.request('POST', `/v1/aggregates/${type}/${id}/events`, { event_type, payload });
const patch = (s: TestServer, type: string, id: string, event_type: string, ops: unknown[]) =>
  s.request('POST', `/v1/aggregates/${type}/${id}/patch`, { event_type, patch: ops });

function ok(res: Answer, status = 201): any {
  assert.equal(res.status, status, JSON.stringify(res.body));
  return res.body;
}

async function putOk(s: TestServer, aggregate: string, schema: unknown): Promise<number> {
  const res = await put(s, aggregate, schema);
  assert.ok(res.status === 200 || res.status === 201, JSON.stringify(res.body));
  return res.body.version as number;
}

const person = {
  column_types: {
    age: { type: 'integer', range: { min: '0', max: '150' } },
    email: { type: 'text', format: 'email' },
    active: 'boolean',
    born: 'timestamp',
    price: 'decimal(8,2)',
  },
  events: { person_created: { fields: [] }, person_updated: {}, person_moved: { fields: ['city', 'zip'] } },
};

test('schema enforcement - default mode validates a type with a schema and allows a type without one', { timeout: 30_000 }, async () => {
  await putOk(server, 'person', person);
  ok(await create(server, 'person', 'p1', 'person_created', { age: 30, email: 'a@b.co' }));
  assertError(await create(server, 'person', 'p2', 'person_created', { age: 'old' }), 400, 'validation_failed');
  assertError(await apply(server, 'person', 'p1', 'no_such_event', {}), 400, 'validation_failed');
  // No schema for `note`: anything goes.
  ok(await create(server, 'note', 'n1', 'whatever', { age: 'old', x: [1, 2] }));
  const status = ok(await server.request('GET', '/v1/status'), 200);
  assert.equal(status.restrict, 'default');
});

test('schema enforcement - one 400 lists every violation in the reference order', { timeout: 30_000 }, async () => {
  await putOk(server, 'person', person);
  const res = await apply(server, 'person', 'order1', 'person_moved', { city: 'Oslo', country: 'NO', age: -3, email: 'nope' });
  assertError(res, 400, 'validation_failed');
  const details = res.body.error.details as { field: string; rule: string; message: string }[];
  assert.deepEqual(
    details.map((d) => [d.field, d.rule]),
    [
      ['zip', 'field_missing'],
      ['country', 'field_not_permitted'],
      ['age', 'field_not_permitted'],
      ['email', 'field_not_permitted'],
      ['age', 'range'],
      ['email', 'format'],
    ],
  );
  for (const d of details) assert.ok(d.message.length > 0);
  assert.match(res.body.error.message, /^schema violation: missing required field zip for event person_moved \(and 5 more\)$/);
});

test('schema enforcement - a refused write changes nothing (version and root unchanged)', { timeout: 30_000 }, async () => {
  await putOk(server, 'person', person);
  ok(await create(server, 'person', 'same', 'person_created', { age: 1 }));
  const before = await headOf(server, 'person', 'same');
  assertError(await apply(server, 'person', 'same', 'person_updated', { age: 'x', email: 'bad' }), 400, 'validation_failed');
  assertError(await patch(server, 'person', 'same', 'person_updated', [{ op: 'replace', path: '/age', value: 'x' }]), 400, 'validation_failed');
  // An atomic batch with one bad event writes none of them.
  const batch = await server.request('POST', '/v1/batch', {
    events: [
      { aggregate_type: 'person', aggregate_id: 'same', event_type: 'person_updated', payload: { age: 2 } },
      { aggregate_type: 'person', aggregate_id: 'other', event_type: 'person_updated', payload: { age: 'x' } },
    ],
  });
  assertError(batch, 400, 'validation_failed');
  assert.deepEqual(await headOf(server, 'person', 'same'), before);
  assert.equal(await headOf(server, 'person', 'other'), null);
  assertError(await create(server, 'person', 'never', 'person_created', { age: 'x' }), 400, 'validation_failed');
  assert.equal(await headOf(server, 'person', 'never'), null);
});

test('schema enforcement - normalised values are what is stored, hashed and merged into state', { timeout: 30_000 }, async () => {
  await putOk(server, 'person', person);
  const event = ok(await create(server, 'person', 'norm', 'person_created', { age: '42', active: 'yes', born: '2024-01-01T10:00:00+02:00', price: 5, extra: '7' }));
  ok(await apply(server, 'person', 'norm', 'person_updated', { active: '0' }));
  const events = ok(await server.request('GET', '/v1/aggregates/person/norm/events'), 200).items;
  const stored = events[0].payload;
  assert.equal(stored.age, 42);
  assert.equal(stored.active, true);
  assert.match(stored.born, /^2024-01-01T08:00:00(\.0+)?Z$/);
  assert.equal(typeof stored.price, 'string', 'decimals are canonical strings');
  assert.equal(stored.extra, '7', 'undeclared fields pass through untouched');
  assert.equal(events[1].payload.active, false);
  const state = ok(await server.request('GET', '/v1/aggregates/person/norm'), 200).state;
  assert.equal(state.age, 42);
  assert.equal(state.active, false);
  assert.equal(state.born, stored.born);
  void event;
  const verify = ok(await server.request('GET', '/v1/aggregates/person/norm/verify'), 200);
  assert.equal(verify.valid, true, JSON.stringify(verify));
});

test('schema enforcement - a patch is validated on the state it produces and stored so it replays', { timeout: 30_000 }, async () => {
  await putOk(server, 'person', { ...person, column_types: { ...person.column_types, email: { type: 'text', format: 'email', required: true } } });
  ok(await create(server, 'person', 'pat', 'person_created', { age: 1, email: 'a@b.co' }));
  const r1 = await patch(server, 'person', 'pat', 'person_updated', [{ op: 'replace', path: '/age', value: 'x' }]);
  assertError(r1, 400, 'validation_failed');
  assert.deepEqual(r1.body.error.details.map((d: any) => [d.field, d.rule]), [['age', 'type']]);
  const r2 = await patch(server, 'person', 'pat', 'person_updated', [{ op: 'remove', path: '/email' }]);
  assertError(r2, 400, 'validation_failed');
  assert.equal(r2.body.error.details[0].rule, 'required', 'the resulting state lacks a required field');
  const r3 = await patch(server, 'person', 'pat', 'not_declared', [{ op: 'replace', path: '/age', value: 2 }]);
  assertError(r3, 400, 'validation_failed');
  assert.equal(r3.body.error.details[0].rule, 'event_undeclared');
  // A value that normalises: the stored patch carries the normalised value, so a replay agrees.
  const ev = ok(await patch(server, 'person', 'pat', 'person_updated', [{ op: 'replace', path: '/age', value: '43' }]));
  assert.equal(ev.metadata.schema_version !== undefined, true);
  const view = ok(await server.request('GET', '/v1/aggregates/person/pat'), 200);
  assert.equal(view.state.age, 43);
  assert.equal(view.version, 2);
  const verify = ok(await server.request('GET', '/v1/aggregates/person/pat/verify'), 200);
  assert.equal(verify.valid, true, JSON.stringify(verify));
});

test('schema enforcement - locked refuses every write and field locks refuse payloads and patches that set them (409 schema_locked)', { timeout: 30_000 }, async () => {
  await putOk(server, 'vault', { field_locks: ['ssn'], column_types: { ssn: 'text', age: 'integer' }, events: { opened: {}, changed: {} } });
  ok(await create(server, 'vault', 'v1', 'opened', { age: 1 }));
  const before = await headOf(server, 'vault', 'v1');
  const set = await apply(server, 'vault', 'v1', 'changed', { ssn: '123', age: 'x' });
  assertError(set, 409, 'schema_locked');
  assert.deepEqual(set.body.error.details.map((d: any) => d.rule), ['field_lock', 'type'], 'every violation is listed');
  assertError(await patch(server, 'vault', 'v1', 'changed', [{ op: 'add', path: '/ssn', value: '1' }]), 409, 'schema_locked');
  ok(await apply(server, 'vault', 'v1', 'changed', { age: 2 }));
  const afterOk = await headOf(server, 'vault', 'v1');
  assert.notDeepEqual(afterOk, before);

  await putOk(server, 'vault', { field_locks: ['ssn'], locked: true, column_types: { ssn: 'text', age: 'integer' }, events: { opened: {}, changed: {} } });
  assertError(await apply(server, 'vault', 'v1', 'changed', { age: 3 }), 409, 'schema_locked');
  assertError(await create(server, 'vault', 'v2', 'opened', {}), 409, 'schema_locked');
  assertError(await patch(server, 'vault', 'v1', 'changed', [{ op: 'replace', path: '/age', value: 3 }]), 409, 'schema_locked');
  assertError(await server.request('POST', '/v1/aggregates/vault/v1/archive', {}), 409, 'schema_locked');
  assert.deepEqual(await headOf(server, 'vault', 'v1'), afterOk);
});

test('schema enforcement - hidden_fields are absent from every answer that carries state or payload', { timeout: 30_000 }, async () => {
  await putOk(server, 'account', { hidden_fields: ['secret', 'address.zip'], events: { opened: {}, changed: {} } });
  const noSecret = (value: unknown, where: string) => {
    const text = JSON.stringify(value);
    assert.doesNotMatch(text, /"secret"|s3cr3t|"zip"|0150/, `${where}: ${text}`);
  };
  const created = ok(await create(server, 'account', 'a1', 'opened', { secret: 's3cr3t', name: 'x', address: { city: 'Oslo', zip: '0150' } }));
  noSecret(created, 'create answer');
  assert.equal(created.state.name, 'x');
  assert.equal(created.state.address.city, 'Oslo');
  noSecret(ok(await apply(server, 'account', 'a1', 'changed', { secret: 's3cr3t', n: 1 })), 'apply answer');
  noSecret(ok(await patch(server, 'account', 'a1', 'changed', [{ op: 'replace', path: '/secret', value: 's3cr3t' }, { op: 'add', path: '/m', value: 1 }])), 'patch answer');
  const batch = ok(
    await server.request('POST', '/v1/batch', { events: [{ aggregate_type: 'account', aggregate_id: 'a1', event_type: 'changed', payload: { secret: 's3cr3t' } }] }),
  );
  noSecret(batch, 'batch answer');
  const eventId = batch.events[0].metadata.event_id;
  noSecret(ok(await server.request('GET', '/v1/aggregates/account/a1'), 200), 'get');
  noSecret(ok(await server.request('GET', '/v1/aggregates/account/a1?version=1'), 200), 'get ?version');
  noSecret(ok(await server.request('GET', '/v1/aggregates/account/a1?include_events=true'), 200), 'get include_events');
  const selected = ok(await server.request('GET', '/v1/aggregates/account/a1/select?fields=secret,name,address,address.zip'), 200);
  assert.deepEqual(selected, { secret: null, name: 'x', address: { city: 'Oslo' }, 'address.zip': null });
  noSecret(ok(await server.request('GET', '/v1/aggregates'), 200), 'list');
  noSecret(ok(await server.request('GET', '/v1/aggregates/account'), 200), 'list of type');
  noSecret(ok(await server.request('GET', '/v1/aggregates/account/a1/events'), 200), 'events of aggregate');
  noSecret(ok(await server.request('GET', '/v1/events'), 200).items.filter((e: any) => e.aggregate_type === 'account'), 'events list');
  noSecret(ok(await server.request('GET', `/v1/events/${eventId}`), 200), 'event by id');
  noSecret(ok(await server.request('POST', '/v1/aggregates/account/a1/snapshots', {})), 'snapshot answer');
  noSecret(ok(await server.request('GET', '/v1/aggregates/account/a1/snapshots'), 200), 'snapshots');
  noSecret(ok(await server.request('POST', '/v1/aggregates/account/a1/archive', {}), 200), 'archive answer');
  noSecret(ok(await server.request('POST', '/v1/aggregates/account/a1/restore', {}), 200), 'restore answer');
  // Still stored: the server's own verify replays the full events.
  assert.equal(ok(await server.request('GET', '/v1/aggregates/account/a1/verify'), 200).valid, true);
});

test('schema enforcement - a hidden type answers 404 on reads and is absent from lists', { timeout: 30_000 }, async () => {
  ok(await create(server, 'ghost', 'g1', 'made', { a: 1 }));
  const eventId = ok(await apply(server, 'ghost', 'g1', 'made', { a: 2 })).metadata.event_id;
  await putOk(server, 'ghost', { hidden: true, events: { made: {} } });
  for (const path of ['', '/select?fields=a', '/events', '/verify', '/proof?version=1', '/snapshots']) {
    assertError(await server.request('GET', `/v1/aggregates/ghost/g1${path}`), 404, 'not_found');
  }
  assertError(await server.request('GET', `/v1/events/${eventId}`), 404, 'not_found');
  const all = ok(await server.request('GET', '/v1/aggregates?take=1000'), 200);
  assert.ok(!all.items.some((v: any) => v.aggregate_type === 'ghost'));
  assert.deepEqual(ok(await server.request('GET', '/v1/aggregates/ghost'), 200).items, []);
  const events = ok(await server.request('GET', '/v1/events?take=1000'), 200);
  assert.ok(!events.items.some((e: any) => e.aggregate_type === 'ghost'));
  // Unhidden again: everything reads as before.
  await putOk(server, 'ghost', { hidden: false, events: { made: {} } });
  assert.equal(ok(await server.request('GET', '/v1/aggregates/ghost/g1'), 200).version, 2);
});

test('schema enforcement - each event records the schema version it met; later changes never rewrite it', { timeout: 30_000 }, async () => {
  const v1 = await putOk(server, 'ledger', { column_types: { amount: 'integer' }, events: { booked: {} } });
  const first = ok(await create(server, 'ledger', 'l1', 'booked', { amount: 1 }));
  const v2 = await putOk(server, 'ledger', { column_types: { amount: 'text' }, events: { booked: {} } });
  assert.ok(v2 > v1);
  const second = ok(await apply(server, 'ledger', 'l1', 'booked', { amount: 'ten' }));
  assert.equal(second.metadata.schema_version, v2);
  const events = ok(await server.request('GET', '/v1/aggregates/ledger/l1/events'), 200).items;
  assert.equal(events[0].metadata.schema_version, v1);
  assert.equal(events[0].hash, ok(await server.request('GET', '/v1/aggregates/ledger/l1?include_events=true'), 200).events[0].hash);
  void first;
  assert.equal(ok(await server.request('GET', '/v1/aggregates/ledger/l1/verify'), 200).valid, true);
  // A type without a schema records none.
  assert.equal(ok(await create(server, 'plain', 'x', 'e', {})).state !== undefined, true);
  const plain = ok(await server.request('GET', '/v1/aggregates/plain/x/events'), 200).items[0];
  assert.equal('schema_version' in plain.metadata, false);
});

test('schema enforcement - a schema snapshot_threshold overrides the config default', { timeout: 30_000 }, async () => {
  await putOk(server, 'counter', { snapshot_threshold: 2, events: { tick: {} } });
  for (let i = 0; i < 4; i++) ok(i === 0 ? await create(server, 'counter', 'c1', 'tick', { i }) : await apply(server, 'counter', 'c1', 'tick', { i }));
  for (let i = 0; i < 4; i++) ok(i === 0 ? await create(server, 'unschemed', 'u1', 'tick', { i }) : await apply(server, 'unschemed', 'u1', 'tick', { i }));
  const snaps = ok(await server.request('GET', '/v1/aggregates/counter/c1/snapshots'), 200).items.map((s: any) => s.version);
  assert.deepEqual(snaps.sort(), [2, 4]);
  assert.deepEqual(ok(await server.request('GET', '/v1/aggregates/unschemed/u1/snapshots'), 200).items, [], 'config default (100) applies elsewhere');
});

test('schema enforcement - a write right after a schema change is checked against the new version on every worker', { timeout: 60_000 }, async () => {
  for (let round = 0; round < 8; round++) {
    const integer = round % 2 === 0;
    const version = await putOk(server, 'flip', { column_types: { n: integer ? 'integer' : 'text' }, events: { set: {} } });
    // Several aggregates, so the writes land on both workers.
    const answers = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => apply(server, 'flip', `f${round}-${i}`, 'set', { n: 'abc' })));
    for (const res of answers) {
      if (integer) assertError(res, 400, 'validation_failed');
      else assert.equal(ok(res).metadata.schema_version, version);
    }
  }
});

test('schema enforcement - restrict=off really skips validation even with a schema', { timeout: 30_000 }, async () => {
  const s = await startServerInProcess({ configToml: 'restrict = "off"\n' });
  try {
    await putOk(s, 'person', { ...person, locked: true, field_locks: ['ssn'] });
    const ev = ok(await create(s, 'person', 'p', 'undeclared', { age: 'old', ssn: '1', born: 'soon' }));
    assert.equal(ev.state.age, 'old');
    const stored = ok(await s.request('GET', '/v1/aggregates/person/p/events'), 200).items[0];
    assert.equal('schema_version' in stored.metadata, false, 'nothing was validated');
    ok(await apply(s, 'person', 'p', 'person_updated', { age: '7' }));
    assert.equal(ok(await s.request('GET', '/v1/aggregates/person/p'), 200).state.age, '7', 'no normalisation under off');
    assert.equal(ok(await s.request('GET', '/v1/status'), 200).restrict, 'off');
  } finally {
    await s.stop();
    removeDir(s.dataDir);
  }
});

test('schema enforcement - restrict=strict refuses a type without a schema with rule schema_required', { timeout: 30_000 }, async () => {
  const s = await startServerInProcess({ configToml: 'restrict = "strict"\n' });
  try {
    const res = await create(s, 'loose', 'l1', 'e', {});
    assertError(res, 400, 'validation_failed');
    assert.deepEqual(
      res.body.error.details.map((d: any) => d.rule),
      ['schema_required'],
    );
    assert.match(res.body.error.message, /requires a schema/);
    assert.equal(await headOf(s, 'loose', 'l1'), null);
    await putOk(s, 'loose', { events: { e: {} } });
    ok(await create(s, 'loose', 'l1', 'e', { any: 1 }));
    assertError(await apply(s, 'loose', 'l1', 'other', {}), 400, 'validation_failed');
    // Deleting the schema makes the type unwritable again, archive included.
    assert.equal((await s.request('DELETE', '/v1/schemas/loose')).status, 200);
    assertError(await apply(s, 'loose', 'l1', 'e', {}), 400, 'validation_failed');
    assertError(await s.request('POST', '/v1/aggregates/loose/l1/archive', {}), 400, 'validation_failed');
    assert.equal(ok(await s.request('GET', '/v1/status'), 200).restrict, 'strict');
  } finally {
    await s.stop();
    removeDir(s.dataDir);
  }
});

test('schema enforcement - dbx start --restrict accepts the original aliases', { timeout: 40_000 }, async () => {
  const s = await spawnServer({ extraArgs: ['--restrict=prod'] });
  try {
    assert.equal(ok(await s.request('GET', '/v1/status'), 200).restrict, 'default');
  } finally {
    await s.stop();
    removeDir(s.dataDir);
  }
});

test('schema enforcement - events that carry schema_version export and import with their hashes', { timeout: 30_000 }, async () => {
  const v = await putOk(server, 'exported', { column_types: { n: 'integer' }, events: { set: {} } });
  ok(await create(server, 'exported', 'e1', 'set', { n: '1' }));
  ok(await apply(server, 'exported', 'e1', 'set', { n: 2 }));
  const events = ok(await server.request('GET', '/v1/aggregates/exported/e1/events'), 200).items;
  assert.equal(events[0].metadata.schema_version, v);
  const target = await startServerInProcess();
  try {
    const ndjson = events.map((e: unknown) => JSON.stringify(e)).join('\n') + '\n';
    const res = await target.request('POST', '/v1/import', ndjson, { 'content-type': 'application/x-ndjson' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const head = await headOf(target, 'exported', 'e1');
    assert.equal(head?.merkle_root, events[1].merkle_root, 'the imported history has the same root');
  } finally {
    await target.stop();
    removeDir(target.dataDir);
  }
});
