/** The TypeScript client against a real server: every method, typed errors, retries, keep-alive. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient, EventDbxError, type EventDbxClient } from '../src/client/index.js';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';

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

async function rejectsWith(promise: Promise<unknown>, code: string, status: number): Promise<EventDbxError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof EventDbxError, `expected EventDbxError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.status, status);
    return err;
  }
  assert.fail(`expected ${code}`);
}

test('client - connect checks the token and returns the server status', { timeout: 10_000 }, async () => {
  const status = await client.connect();
  assert.equal(status.pid, process.pid);
  assert.equal(status.port, server.port);
  assert.equal(status.dataDir, server.dataDir);
  assert.equal(typeof status.shards, 'number');
  assert.ok(status.workers >= 1);
  const anonymous = createClient({ ip: '127.0.0.1', port: server.port, token: 'not-a-token' });
  try {
    await rejectsWith(anonymous.connect(), 'unauthorized', 401);
  } finally {
    await anonymous.close();
  }
});

test('client - create, apply, patch, get, select, events', { timeout: 10_000 }, async () => {
  const created = await client.create('person', 'c-1', 'person_created', { payload: { name: 'Ada', address: { city: 'London' } }, note: 'first' });
  assert.equal(created.version, 1);
  assert.deepEqual(created.state, { name: 'Ada', address: { city: 'London' } });
  await rejectsWith(client.create('person', 'c-1', 'person_created'), 'already_exists', 409);

  const applied = await client.apply('person', 'c-1', 'person_renamed', { payload: { name: 'Grace' }, metadata: { '@source': 'test' }, expectedVersion: 1 });
  assert.equal(applied.version, 2);
  assert.deepEqual(applied.extensions, { '@source': 'test' });
  const conflict = await rejectsWith(client.apply('person', 'c-1', 'person_renamed', { payload: {}, expectedVersion: 1 }), 'version_conflict', 409);
  assert.equal((conflict.details as { current_version: number }).current_version, 2, 'details stay as the server sent them');

  const patched = await client.patch('person', 'c-1', 'person_moved', [{ op: 'replace', path: '/address/city', value: 'Paris' }]);
  assert.equal(patched.version, 3);

  const got = await client.get('person', 'c-1', { includeEvents: true });
  assert.deepEqual(got.state, { name: 'Grace', address: { city: 'Paris' } });
  assert.deepEqual(got.events?.map((e) => e.version), [1, 2, 3]);
  const old = await client.get('person', 'c-1', { version: 1 });
  assert.equal(old.state.name, 'Ada');

  assert.deepEqual(await client.select('person', 'c-1', ['name', 'address.city', 'missing']), { name: 'Grace', 'address.city': 'Paris', missing: null });
  const page = await client.events('person', 'c-1', { take: 2 });
  assert.deepEqual(page.items.map((e) => e.version), [1, 2]);
  assert.ok(page.nextCursor);
  const rest = await client.events('person', 'c-1', { cursor: page.nextCursor as string });
  assert.deepEqual(rest.items.map((e) => e.version), [3]);
  assert.deepEqual(await client.event(applied.metadata.eventId), applied);

  await rejectsWith(client.get('person', 'nobody'), 'not_found', 404);
  await rejectsWith(client.apply('Person', 'x', 'e'), 'validation_failed', 400);
});

test('client - list pages, listAll follows cursors, archive and restore change the scope', { timeout: 10_000 }, async () => {
  for (let i = 0; i < 5; i++) await client.create('invoice', `i-${i}`, 'invoice_opened', { payload: { n: i } });
  const first = await client.list('invoice', { take: 2 });
  assert.deepEqual(first.items.map((a) => a.aggregateId), ['i-0', 'i-1']);
  const all = [];
  for await (const aggregate of client.listAll('invoice', { take: 2 })) all.push(aggregate.aggregateId);
  assert.deepEqual(all, ['i-0', 'i-1', 'i-2', 'i-3', 'i-4']);
  const sorted = await client.list('invoice', { sort: 'aggregate_id:desc', take: 1 });
  assert.equal(sorted.items[0]?.aggregateId, 'i-4');

  const archived = await client.archive('invoice', 'i-0', { comment: 'paid' });
  assert.equal(archived.archived, true);
  await rejectsWith(client.apply('invoice', 'i-0', 'invoice_changed'), 'aggregate_archived', 409);
  assert.deepEqual((await client.list('invoice', { archivedOnly: true })).items.map((a) => a.aggregateId), ['i-0']);
  assert.equal((await client.list('invoice', { includeArchived: true, take: 100 })).items.length, 5);
  assert.equal((await client.restore('invoice', 'i-0')).archived, false);

  const events = await client.listEvents({ filter: 'aggregate_type = "invoice"', take: 100 });
  assert.ok(events.items.length >= 7);
});

test('client - verify, snapshot, batch, idempotent replay', { timeout: 10_000 }, async () => {
  await client.create('order', 'o-1', 'order_placed', { payload: { total: 10 } });
  const verified = await client.verify('order', 'o-1');
  assert.equal(verified.valid, true);
  const snapshot = await client.snapshot('order', 'o-1', { comment: 'now' });
  assert.equal(snapshot.version, 1);
  assert.equal((await client.snapshots('order', 'o-1')).length, 1);
  const proof = await client.inclusionProof('order', 'o-1', 1);
  assert.ok(proof);

  const events = await client.batch([
    { aggregateType: 'order', aggregateId: 'o-1', eventType: 'order_paid', payload: { paid: true } },
    { aggregateType: 'order', aggregateId: 'o-2', eventType: 'order_placed', payload: { total: 3 } },
  ]);
  assert.deepEqual(events.map((e) => [e.aggregateId, e.version]), [['o-1', 2], ['o-2', 1]]);
  await rejectsWith(
    client.batch([
      { aggregateType: 'order', aggregateId: 'o-3', eventType: 'order_placed' },
      { aggregateType: 'order', aggregateId: 'o-1', eventType: 'order_paid', expectedVersion: 1 },
    ]),
    'version_conflict',
    409,
  );
  await rejectsWith(client.get('order', 'o-3'), 'not_found', 404);

  const once = await client.apply('order', 'o-2', 'order_paid', { payload: { paid: true }, idempotencyKey: 'pay-o-2' });
  const twice = await client.apply('order', 'o-2', 'order_paid', { payload: { paid: true }, idempotencyKey: 'pay-o-2' });
  assert.deepEqual(twice, once);
  assert.equal((await client.get('order', 'o-2')).version, 2);
});

test('client - an unreachable server is EventDbxError unavailable', { timeout: 10_000 }, async () => {
  const dead = createClient({ url: 'http://127.0.0.1:1', token: 't', retry: { attempts: 2, initialDelayMs: 1, maxDelayMs: 5 } });
  try {
    const err = await rejectsWith(dead.get('person', 'x'), 'unavailable', 0);
    assert.match(err.message, /cannot reach EventDBX at http:\/\/127\.0\.0\.1:1/);
  } finally {
    await dead.close();
  }
  assert.throws(() => createClient({ url: 'ftp://x' }), (err: unknown) => err instanceof EventDbxError && err.code === 'invalid_input');
});

test('client - retries only idempotent calls, over one keep-alive connection', { timeout: 10_000 }, async () => {
  // A real HTTP peer that is always draining (503): it counts requests and TCP connections.
  let requests = 0;
  let connections = 0;
  const peer: Server = createServer((req, res) => {
    requests++;
    req.resume();
    req.on('end', () => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'unavailable', message: 'draining' } }));
    });
  });
  peer.on('connection', () => connections++);
  await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
  const { port } = peer.address() as AddressInfo;
  const flaky = createClient({ url: `http://127.0.0.1:${port}`, token: 't', connections: 1, retry: { attempts: 3, initialDelayMs: 1, maxDelayMs: 5 } });
  try {
    const count = async (call: Promise<unknown>): Promise<number> => {
      const start = requests;
      await rejectsWith(call, 'unavailable', 503);
      return requests - start;
    };
    assert.equal(await count(flaky.get('person', 'p')), 3, 'a GET is retried');
    assert.equal(await count(flaky.apply('person', 'p', 'person_seen')), 1, 'a write without a key is not');
    assert.equal(await count(flaky.apply('person', 'p', 'person_seen', { idempotencyKey: 'k' })), 3, 'a write with a key is');
    assert.equal(
      await count(flaky.batch([{ aggregateType: 'person', aggregateId: 'p', eventType: 'person_seen', idempotencyKey: 'k' }, { aggregateType: 'person', aggregateId: 'q', eventType: 'person_seen' }])),
      1,
      'a batch is retried only when every event has a key',
    );
    assert.equal(connections, 1, 'every request reused one keep-alive connection');
  } finally {
    await flaky.close();
    await new Promise((resolve) => peer.close(resolve));
  }
});

test('client - metrics, the OpenAPI document and a tenant export (round trip through importTenant)', { timeout: 20_000 }, async () => {
  const tenantClient = createClient({ url: server.url, token: server.token, tenant: 'exported' });
  try {
    await tenantClient.create('order', 'o-1', 'order_placed', { payload: { total: 3 } });
    await tenantClient.apply('order', 'o-1', 'order_paid', { payload: { paid: true } });
    const metrics = await client.metrics();
    assert.match(metrics, /^# HELP /m);
    assert.match(metrics, /eventdbx_events_appended_total\b/);
    const doc = await client.openapi();
    assert.equal(doc.openapi, '3.1.0');
    assert.ok((doc.paths as Record<string, unknown>)['/v1/tenants/{tenant}/export'], 'the document lists the tenant export');

    const { contentType, body } = await client.exportTenant('exported');
    assert.match(contentType, /application\/x-ndjson/);
    const parts: Buffer[] = [];
    for await (const chunk of body) parts.push(chunk as Buffer);
    const lines = Buffer.concat(parts).toString('utf8').trim().split('\n');
    const records = lines.map((l) => JSON.parse(l) as { aggregate_id: string; version: number; hash: string; merkle_root: string });
    assert.deepEqual(records.map((r) => [r.aggregate_id, r.version]), [['o-1', 1], ['o-1', 2]]);
    assert.ok(records.every((r) => /^[0-9a-f]{64}$/.test(r.hash) && /^[0-9a-f]{64}$/.test(r.merkle_root)));
    // Event ids are unique across the server: the export goes back once the tenant is gone.
    await client.removeTenant('exported');
    await rejectsWith(tenantClient.get('order', 'o-1'), 'not_found', 404);
    const summary = await client.importTenant('exported', lines.join('\n') + '\n');
    assert.equal(summary.imported, 2);
    assert.equal(summary.aggregates, 1);
    assert.deepEqual((await tenantClient.get('order', 'o-1')).state, { total: 3, paid: true });
    await rejectsWith(client.exportTenant('Not A Tenant!'), 'validation_failed', 400);
  } finally {
    await tenantClient.close();
  }
});
