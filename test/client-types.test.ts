/**
 * The client's types, checked twice: by tsc (this file does not compile if the generics were lost,
 * if a result field were snake_case, or if the error union drifted from the server's catalogue),
 * and at run time against a real server (camelCase everywhere but in user data, which is never
 * re-cased; `toWire` gives the API's JSON back exactly).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createClient,
  fromWire,
  toWire,
  VersionConflictError,
  type AggregateView,
  type ErrorCode,
  type EventDbxClient,
  type EventRecord,
  type Page,
  type ServerErrorCode,
  type Wire,
} from '../src/client/index.js';
import type * as core from '../src/core/index.js';
import type { ERROR_CATALOGUE } from '../src/core/errors.js';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';

/** Compiles only if `value` is assignable to `T`. */
function expectType<T>(value: T): T {
  return value;
}
/** Exact type equality (not mere assignability). */
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function assertType<_T extends true>(): void {}

interface Person {
  firstName: string;
  last_name: string;
  address: { postCode: string };
}
interface Renamed {
  firstName: string;
}

let server: TestServer;
let client: EventDbxClient;
before(async () => {
  server = await startServerInProcess();
  client = createClient({ url: server.url, token: server.token });
});
after(async () => {
  await client.close();
  await server.stop();
  removeDir(server.dataDir);
});

test('client types - get<T>, events<T>, list<T> and apply<P> type the state and payloads', { timeout: 10_000 }, async () => {
  const person: Person = { firstName: 'Ada', last_name: 'Lovelace', address: { postCode: 'W1' } };
  const created = await client.create<Person>('person', 't-1', 'person_created', { payload: person });
  assertType<Equal<typeof created.state, Person>>();
  const renamed = await client.apply('person', 't-1', 'person_renamed', { payload: { firstName: 'Grace' } satisfies Renamed });
  assertType<Equal<typeof renamed.payload, { firstName: string }>>();
  // @ts-expect-error the payload is typed by what was sent
  void renamed.payload.last_name;

  const got = await client.get<Person>('person', 't-1');
  assertType<Equal<typeof got.state, Person>>();
  expectType<string>(got.state.address.postCode);
  // @ts-expect-error a typed state has no other fields (a lost generic would be an index signature)
  void got.state.missing;

  const page = await client.events<Person | Renamed>('person', 't-1');
  assertType<Equal<typeof page, Page<EventRecord<Person | Renamed>>>>();
  expectType<Person | Renamed>(page.items[0]!.payload);
  const listed = await client.list<Person>('person');
  assertType<Equal<(typeof listed.items)[number]['state'], Person>>();
  const all = await client.listEvents<Renamed>({ filter: 'event_type = "person_renamed"' });
  expectType<Renamed[]>(all.items.map((e) => e.payload));
  const one = await client.event<Renamed>(renamed.metadata.eventId);
  assertType<Equal<typeof one.payload, Renamed>>();
  for await (const a of client.listAll<Person>('person')) assertType<Equal<typeof a.state, Person>>();

  // The same values at run time, with user data exactly as written (never re-cased).
  assert.deepEqual(got.state, { firstName: 'Grace', last_name: 'Lovelace', address: { postCode: 'W1' } });
  assert.deepEqual(page.items.map((e) => e.payload), [person, { firstName: 'Grace' }]);
  assert.deepEqual(listed.items.map((a) => a.state.firstName), ['Grace']);
  assert.deepEqual(all.items.map((e) => e.payload), [{ firstName: 'Grace' }]);
  assert.deepEqual(one, renamed);
});

test('client types - options and results are camelCase; the wire form is the API JSON', { timeout: 10_000 }, async () => {
  const event = await client.apply('person', 't-2', 'person_created', { payload: { a_b: 1 }, metadata: { '@source_app': { camelKey: 1 } }, idempotencyKey: 'k-t-2' });
  expectType<string>(event.aggregateType);
  expectType<string>(event.metadata.eventId);
  expectType<string>(event.merkleRoot);
  // @ts-expect-error results are camelCase only
  void event.aggregate_type;
  assert.equal(event.aggregateType, 'person');
  assert.equal(event.aggregateId, 't-2');
  assert.equal(event.eventType, 'person_created');
  assert.match(event.metadata.eventId, /^\d+$/);
  assert.match(event.metadata.createdAt, /^\d{4}-/);
  assert.deepEqual(event.payload, { a_b: 1 });
  assert.deepEqual(event.extensions, { '@source_app': { camelKey: 1 } }, 'extensions are user data');
  assert.equal('aggregate_type' in event, false);

  const view = await client.get('person', 't-2', { includeEvents: true });
  assert.equal(view.events?.[0]?.metadata.eventId, event.metadata.eventId);
  assert.equal(typeof view.createdAt, 'string');
  assert.equal(typeof view.updatedAt, 'string');
  const page = await client.list('person', { take: 1 });
  assert.equal(page.nextCursor, 'a:person:t-1');
  const status = await client.status();
  assert.equal(status.dataDir, server.dataDir);
  assert.equal(typeof status.uptimeSecs, 'number');
  const proof = await client.inclusionProof('person', 't-2', 1);
  assert.equal(proof.treeSize, 1);
  assert.equal(proof.leafHash, event.hash);

  // toWire is the exact inverse of what the transport did: the raw answer comes back.
  const raw = await server.request('GET', '/v1/aggregates/person/t-2?include_events=true');
  assert.deepEqual(toWire(view), raw.body);
  assert.deepEqual(fromWire(raw.body as core.AggregateView), view);
  expectType<core.AggregateView>(toWire(view));
  assertType<Equal<Wire<AggregateView>['merkle_root'], string>>();
});

test('client types - schemas keep user-chosen names (events, fields) while their settings are camelCase', { timeout: 10_000 }, async () => {
  const record = await client.putSchema('invoice', {
    snapshotThreshold: 5,
    events: { invoice_opened: { fields: ['totalDue', 'line_items'] } },
    columnTypes: { totalDue: { type: 'integer', required: true }, line_items: { type: 'object', properties: { unitPrice: { type: 'text', doesNotContain: ['x'] } } } },
    hiddenFields: ['secretNote'],
  });
  assert.equal(record.schema.snapshotThreshold, 5);
  assert.deepEqual(Object.keys(record.schema.events), ['invoice_opened']);
  assert.deepEqual(Object.keys(record.schema.columnTypes).sort(), ['line_items', 'totalDue']);
  assert.deepEqual(record.schema.columnTypes.line_items?.properties?.unitPrice?.doesNotContain, ['x']);
  assert.deepEqual(record.schema.hiddenFields, ['secretNote']);
  const raw = await server.request('GET', '/v1/schemas/invoice');
  assert.equal(raw.body.schema.snapshot_threshold, 5);
  assert.deepEqual(raw.body.schema.column_types.line_items.properties.unitPrice.does_not_contain, ['x']);
  assert.deepEqual(toWire(record), raw.body);

  const check = await client.validateSchema('invoice', 'invoice_opened', { totalDue: '7', line_items: { unitPrice: 'y' } });
  assert.equal(check.valid, true);
  assert.equal(check.schemaVersion, record.version);
  assert.deepEqual(check.payload, { totalDue: 7, line_items: { unitPrice: 'y' } });
  const documents = await client.jsonSchema('invoice');
  assert.ok(documents.invoice_opened, 'JSON Schema documents are returned as sent');
});

test('client types - the error union is the catalogue and each class narrows its code', () => {
  assertType<Equal<ServerErrorCode, keyof typeof ERROR_CATALOGUE>>();
  assertType<Equal<ErrorCode, keyof typeof ERROR_CATALOGUE | 'timeout' | 'aborted'>>();
  const err = new VersionConflictError('version_conflict', 'x', { details: { current_version: 4 } });
  assertType<Equal<typeof err.code, 'version_conflict'>>();
  expectType<number | undefined>(err.currentVersion);
  assert.equal(err.currentVersion, 4);
  // @ts-expect-error a code outside the union does not compile
  expectType<ErrorCode>('no_such_code');
});
