/**
 * Findings of a schema and security review (2026-12-03, fourth session), each pinned: write
 * answers that carry an aggregate's whole state (archive, restore, snapshot) leave it out for a
 * caller that may not read the aggregate and for a hidden type.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, removeDir, startServerInProcess, type TestServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

let server: TestServer;

before(async () => {
  server = await startServerInProcess();
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
});

async function tokenFor(actions: string[]): Promise<string> {
  const res = await server.request('POST', '/v1/tokens', { group: 'g', user: actions.join('-').replace(/[^a-z-]/g, ''), actions, tenants: ['default'] });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.token as string;
}

test('review-findings-3 - archive, restore and snapshot answers carry the state only to a caller that may read it, never for a hidden type', { timeout: 60_000 }, async () => {
  const as = (tok: string, method: string, path: string, body?: unknown) => httpRequest(server.url, tok, method, path, body);
  // A visible type: a writer without aggregate.read gets the receipt without the state.
  assert.equal((await server.request('POST', '/v1/aggregates/ledger/l-1', { event_type: 'opened', payload: { secret: 'S1' } })).status, 201);
  const writer = await tokenFor(['aggregate.append', 'aggregate.archive']);
  assertError(await as(writer, 'GET', '/v1/aggregates/ledger/l-1'), 403, 'forbidden');
  const snap = await as(writer, 'POST', '/v1/aggregates/ledger/l-1/snapshots', {});
  assert.equal(snap.status, 201, JSON.stringify(snap.body));
  assert.equal(snap.body.version, 1);
  assert.ok(!('state' in snap.body) && !JSON.stringify(snap.body).includes('S1'), JSON.stringify(snap.body));
  const archived = await as(writer, 'POST', '/v1/aggregates/ledger/l-1/archive', {});
  assert.equal(archived.status, 200);
  assert.equal(archived.body.archived, true);
  assert.ok(!('state' in archived.body) && !JSON.stringify(archived.body).includes('S1'));
  const restored = await as(writer, 'POST', '/v1/aggregates/ledger/l-1/restore', {});
  assert.equal(restored.status, 200);
  assert.ok(!('state' in restored.body));
  // A reader-writer still gets the state.
  const both = await tokenFor(['aggregate.read', 'aggregate.append', 'aggregate.archive']);
  const full = await as(both, 'POST', '/v1/aggregates/ledger/l-1/snapshots', {});
  assert.deepEqual(full.body.state, { secret: 'S1' });
  assert.deepEqual((await as(both, 'POST', '/v1/aggregates/ledger/l-1/archive', {})).body.state, { secret: 'S1' });

  // A hidden type: its state leaves the server for no one, the root token included.
  assert.equal((await server.request('PUT', '/v1/schemas/vault', { events: { vault_opened: { fields: [] } }, hidden: true })).status, 200);
  assert.equal((await server.request('POST', '/v1/aggregates/vault/v-1', { event_type: 'vault_opened', payload: { s: 'HIDDEN' } })).status, 201);
  assertError(await server.request('GET', '/v1/aggregates/vault/v-1'), 404, 'not_found');
  for (const [path, status] of [['snapshots', 201], ['archive', 200], ['restore', 200]] as const) {
    const res = await server.request('POST', `/v1/aggregates/vault/v-1/${path}`, {});
    assert.equal(res.status, status, `${path}: ${JSON.stringify(res.body)}`);
    assert.ok(!JSON.stringify(res.body).includes('HIDDEN'), `${path} answered the hidden state`);
  }
});

test('review-findings-3 - pages of merged lists close their LMDB ranges: 300 partial pages under writes leave every read answering', { timeout: 120_000 }, async () => {
  for (let i = 0; i < 3; i++) assert.equal((await server.request('POST', `/v1/aggregates/pager/p-${i}`, { event_type: 'created', payload: { i } })).status, 201);
  // Each page stops part-way through the shards' ranges; each write between them makes the next
  // page open fresh read transactions. LMDB has 126 reader slots per environment.
  const pages = ['/v1/events?take=1', '/v1/aggregates?take=1', '/v1/stream?take=1', `/v1/events?take=1&filter=${encodeURIComponent("event_type = 'tick'")}`];
  for (let i = 0; i < 300; i++) {
    const path = pages[i % pages.length] as string;
    const res = await server.request('GET', path);
    assert.equal(res.status, 200, `page ${i} (${path}): ${JSON.stringify(res.body)}`);
    assert.equal((await server.request('POST', '/v1/aggregates/pager/p-0/events', { event_type: 'tick', payload: { i } })).status, 201);
  }
  assert.equal((await server.request('GET', '/v1/aggregates/pager/p-1')).status, 200);
});
