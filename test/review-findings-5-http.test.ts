/**
 * Findings of a black-box review of the HTTP API's contracts (2026-12-04), each pinned against a
 * real server over HTTP: a sorted-list cursor whose position lacks what its sort compares is
 * refused (it answered a silent empty last page, or rows from anywhere); an aggregate's snapshots
 * are paged like every list (they came all at once, each with a whole state, and `take` was refused);
 * with `multi_tenant = true` the global stream and exports refuse a request without X-Tenant-Id
 * like every other tenant-scoped route (they served the `default` tenant's data).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';
import { createClient } from '../src/client/index.js';
import { assertError } from './helpers/assertions.js';

let server: TestServer;

before(async () => {
  server = await startServerInProcess();
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
});

/** A sorted cursor with its fingerprint and marks kept and its position replaced. */
function forged(cursor: string, position: unknown): string {
  const decoded = JSON.parse(Buffer.from(cursor.slice(2), 'base64url').toString('utf8')) as Record<string, unknown>;
  return `s:${Buffer.from(JSON.stringify({ ...decoded, p: position })).toString('base64url')}`;
}

test('review-findings-5-http - a sorted cursor whose position lacks the sort values is refused, not answered as an empty last page', { timeout: 60_000 }, async () => {
  for (let i = 0; i < 4; i++) assert.equal((await server.request('POST', `/v1/aggregates/sorted/s-${i}`, { event_type: 'created', payload: { i } })).status, 201);
  const aggregates = `/v1/aggregates/sorted?take=2&sort=${encodeURIComponent('version:desc,aggregate_id')}`;
  const events = `/v1/events?take=2&sort=${encodeURIComponent('event_type,created_at:desc')}`;
  for (const path of [aggregates, events]) {
    const first = await server.request('GET', path);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const cursor = first.body.next_cursor as string;
    assert.match(cursor, /^s:/);
    // The genuine cursor still pages on.
    const next = await server.request('GET', `${path}&cursor=${encodeURIComponent(cursor)}`);
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.equal(next.body.items.length, 2);
    const position = JSON.parse(Buffer.from(cursor.slice(2), 'base64url').toString('utf8')).p as Record<string, unknown>;
    const broken: unknown[] = [{}, { ...position, version: 'x' }, { ...position, aggregate_id: 5 }, { ...position, metadata: {} }];
    for (const p of broken) {
      const res = await server.request('GET', `${path}&cursor=${encodeURIComponent(forged(cursor, p))}`);
      // Only a field the sort reads is checked: aggregates carry no metadata.
      if (path === aggregates && 'metadata' in (p as object)) continue;
      assertError(res, 400, 'invalid_input');
      assert.match(res.body.error.message, /invalid cursor/);
    }
  }
});

test('review-findings-5-http - an aggregate\'s snapshots are paged: take (default list_page_size) and a version cursor, next_cursor null at the end', { timeout: 60_000 }, async () => {
  assert.equal((await server.request('POST', '/v1/aggregates/snapped/s-1', { event_type: 'created', payload: { n: 0 } })).status, 201);
  for (let i = 1; i <= 12; i++) {
    if (i > 1) assert.equal((await server.request('POST', '/v1/aggregates/snapped/s-1/events', { event_type: 'ticked', payload: { n: i } })).status, 201);
    assert.equal((await server.request('POST', '/v1/aggregates/snapped/s-1/snapshots', {})).status, 201);
  }
  const first = await server.request('GET', '/v1/aggregates/snapped/s-1/snapshots');
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.deepEqual(first.body.items.map((s: { version: number }) => s.version), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(first.body.next_cursor, '10');
  const rest = await server.request('GET', `/v1/aggregates/snapped/s-1/snapshots?take=5&cursor=${first.body.next_cursor}`);
  assert.deepEqual(rest.body.items.map((s: { version: number }) => s.version), [11, 12]);
  assert.equal(rest.body.next_cursor, null);
  const two = await server.request('GET', '/v1/aggregates/snapped/s-1/snapshots?take=2&cursor=3');
  assert.deepEqual(two.body.items.map((s: { version: number }) => s.version), [4, 5]);
  assert.equal(two.body.next_cursor, '5');
  assert.deepEqual((await server.request('GET', '/v1/aggregates/snapped/s-1/snapshots?take=0')).body, { items: [], next_cursor: null });
  assert.equal((await server.request('GET', '/v1/aggregates/snapped/s-1/snapshots?take=1001')).body.items.length, 12);
  assertError(await server.request('GET', '/v1/aggregates/snapped/s-1/snapshots?cursor=abc'), 400, 'validation_failed');
  assertError(await server.request('GET', '/v1/aggregates/snapped/s-1/snapshots?take=-1'), 400, 'validation_failed');
  // The client still answers every snapshot, following the cursors.
  const client = createClient({ url: server.url, token: server.token });
  assert.equal((await client.snapshots('snapped', 's-1')).length, 12);
});

test('review-findings-5-http - multi-tenant: /v1/stream and /v1/export* refuse a request without X-Tenant-Id, as every tenant-scoped route does', { timeout: 60_000 }, async () => {
  const mt = await startServerInProcess({ configToml: '[tenants]\nmulti_tenant = true\n' });
  try {
    const def = { 'x-tenant-id': 'default' };
    assert.equal((await mt.request('POST', '/v1/aggregates/doc/d-1', { event_type: 'created', payload: { secret: 'D' } }, def)).status, 201);
    for (const path of ['/v1/stream?after=start', '/v1/export?type=doc', '/v1/export/types']) {
      const refused = await mt.request('GET', path);
      assertError(refused, 400, 'invalid_input');
      assert.match(refused.body.error.message, /X-Tenant-Id/);
      assert.ok(!JSON.stringify(refused.body).includes('"D"'), `${path} answered the default tenant's data`);
      // Naming the tenant still works.
      const named = await mt.request('GET', path, undefined, def);
      assert.equal(named.status, 200, `${path}: ${JSON.stringify(named.body)}`);
    }
    // Server-wide routes keep working without the header.
    assert.equal((await mt.request('GET', '/v1/status')).status, 200);
    assert.equal((await mt.request('GET', '/v1/tenants')).status, 200);
  } finally {
    await mt.stop();
    removeDir(mt.dataDir);
  }
});
