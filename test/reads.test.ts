/**
 * Reads (DESIGN §3, §6): historical gets rebuilt from snapshots, select, event pages, aggregate
 * lists merged across shards with the original's cursors, filters and sorts, event lookups, 404s.
 * Config: snapshot_threshold = 5 and page_limit = 5, so caps and snapshots show with little data.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { shardFor } from '../src/core/index.js';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';
import { assertError, range } from './helpers/assertions.js';

let server: TestServer;
const LISTS = { 'x-tenant-id': 'lists' };
const get = (path: string, headers: Record<string, string> = {}) => server.request('GET', path, undefined, headers);

/** Expected state after each version of doc/r-hist (top-level merge; null removes a key). */
const history: Record<string, unknown>[] = range(12).map((v) => ({ step: v, ...(v % 3 === 0 ? { gone: null } : { gone: v }), [`k${v % 4}`]: v }));
const states: Record<string, unknown>[] = [];
const events: any[] = [];

before(async () => {
  server = await startServerInProcess({ configToml: 'snapshot_threshold = 5\npage_limit = 5\n' });
  let state: Record<string, unknown> = {};
  for (const payload of history) {
    const res = await server.request('POST', '/v1/aggregates/doc/r-hist/events', { event_type: 'doc_edited', payload });
    assert.equal(res.status, 201);
    events.push(res.body);
    state = { ...state, ...payload };
    for (const [k, v] of Object.entries(payload)) if (v === null) delete state[k];
    states.push(state);
  }
  // Tenant "lists": three types spread over the shards; a-2 and b-3 archived.
  const ids: [string, string][] = [
    ...range(4).map((i): [string, string] => ['alpha', `a-${i}`]),
    ...range(4).map((i): [string, string] => ['beta', `b-${i}`]),
    ...range(3).map((i): [string, string] => ['gamma', `g-${i}`]),
  ];
  for (const [n, [type, id]] of ids.entries()) {
    const res = await server.request('POST', `/v1/aggregates/${type}/${id}`, { event_type: 'created', payload: { score: n } }, LISTS);
    assert.equal(res.status, 201);
  }
  for (const [type, id] of [['alpha', 'a-2'], ['beta', 'b-3']]) {
    assert.equal((await server.request('POST', `/v1/aggregates/${type}/${id}/archive`, {}, LISTS)).status, 200);
  }
  const shards = new Set(ids.map(([type, id]) => shardFor({ shardCount: 4, multiTenant: false }, 'lists', type, id)));
  assert.ok(shards.size > 1, 'list data spans several shards');
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
});

test('reads - get ?version=N equals the state at N, rebuilt from the nearest snapshot', { timeout: 20_000 }, async () => {
  for (const version of range(12)) {
    const res = await get(`/v1/aggregates/doc/r-hist?version=${version}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.version, version);
    assert.deepEqual(res.body.state, states[version - 1], `state at ${version}`);
    assert.equal(res.body.merkle_root, events[version - 1].merkle_root);
    const snapshot = Math.floor(version / 5) * 5;
    if (snapshot > 0) assert.equal(res.body.snapshot_version, snapshot, `snapshot used for ${version}`);
    else assert.equal(res.body.snapshot_version, undefined);
  }
  const beyond = await get('/v1/aggregates/doc/r-hist?version=99');
  assert.equal(beyond.body.version, 12);
  const withEvents = await get('/v1/aggregates/doc/r-hist?version=3&include_events=true');
  assert.deepEqual(withEvents.body.events, events.slice(0, 3));
});

test('reads - select takes dot paths; a missing path is null', { timeout: 20_000 }, async () => {
  await server.request('POST', '/v1/aggregates/doc/r-sel', { event_type: 'created', payload: { name: 'Ada', address: { city: 'London', zip: null }, tags: ['x', 'y'] } });
  const res = await get('/v1/aggregates/doc/r-sel/select?fields=name,address.city,address.zip,tags.1,tags.9,nope,address.nope.deeper');
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { name: 'Ada', 'address.city': 'London', 'address.zip': null, 'tags.1': 'y', 'tags.9': null, nope: null, 'address.nope.deeper': null });
  assertError(await get('/v1/aggregates/doc/r-nobody/select?fields=name'), 404, 'not_found');
});

test('reads - aggregate events page with a:<type>:<id>:<version> cursors; take is capped by page_limit', { timeout: 20_000 }, async () => {
  const seen: number[] = [];
  const cursors: (string | null)[] = [];
  let cursor: string | null = null;
  do {
    const res = await get(`/v1/aggregates/doc/r-hist/events?take=4${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(res.status, 200);
    seen.push(...res.body.items.map((e: { version: number }) => e.version));
    cursor = res.body.next_cursor;
    cursors.push(cursor);
  } while (cursor);
  assert.deepEqual(seen, range(12));
  assert.deepEqual(cursors, ['a:doc:r-hist:4', 'a:doc:r-hist:8', null]);
  const capped = await get('/v1/aggregates/doc/r-hist/events?take=50');
  assert.equal(capped.body.items.length, 5);
  assert.equal(capped.body.next_cursor, 'a:doc:r-hist:5');
  const filtered = await get(`/v1/aggregates/doc/r-hist/events?filter=${encodeURIComponent('payload.step > 9')}`);
  assert.deepEqual(filtered.body.items.map((e: { version: number }) => e.version), [10, 11, 12]);
  assertError(await get('/v1/aggregates/doc/r-hist/events?cursor=a:doc:other:3'), 400, 'invalid_input');
});

async function pageAll(path: string, take: number, headers: Record<string, string> = LISTS): Promise<{ items: any[]; cursors: (string | null)[] }> {
  const items: any[] = [];
  const cursors: (string | null)[] = [];
  let cursor: string | null = null;
  const sep = path.includes('?') ? '&' : '?';
  for (let page = 0; page < 50; page++) {
    const res = await get(`${path}${sep}take=${take}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, headers);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(res.body.items.length <= take);
    items.push(...res.body.items);
    cursor = res.body.next_cursor;
    cursors.push(cursor);
    if (!cursor) return { items, cursors };
  }
  throw new Error('paging did not end');
}

const keyOf = (a: { aggregate_type: string; aggregate_id: string }) => `${a.aggregate_type}/${a.aggregate_id}`;
const ACTIVE = ['alpha/a-1', 'alpha/a-3', 'alpha/a-4', 'beta/b-1', 'beta/b-2', 'beta/b-4', 'gamma/g-1', 'gamma/g-2', 'gamma/g-3'];
const ARCHIVED = ['alpha/a-2', 'beta/b-3'];

test('reads - aggregate lists per type and overall are merged across shards in (type, id) order with cursors', { timeout: 20_000 }, async () => {
  const alpha = await pageAll('/v1/aggregates/alpha', 2);
  assert.deepEqual(alpha.items.map(keyOf), ['alpha/a-1', 'alpha/a-3', 'alpha/a-4']);
  assert.deepEqual(alpha.cursors, ['a:alpha:a-3', null]);
  const all = await pageAll('/v1/aggregates', 3);
  assert.deepEqual(all.items.map(keyOf), ACTIVE);
  assert.deepEqual(all.cursors, ['a:alpha:a-4', 'a:beta:b-4', 'a:gamma:g-3', null]);
  assert.ok(all.items.every((a) => a.archived === false));

  // All active first, then archived; the cursor moves from the active to the archived index.
  const withArchived = await pageAll('/v1/aggregates?include_archived=true', 5);
  assert.deepEqual(withArchived.items.map(keyOf), [...ACTIVE, ...ARCHIVED]);
  assert.deepEqual(withArchived.cursors, ['a:beta:b-2', 'r:alpha:a-2', null]);
  const archivedOnly = await pageAll('/v1/aggregates?archived_only=true', 1);
  assert.deepEqual(archivedOnly.items.map(keyOf), ARCHIVED);
  assert.deepEqual(archivedOnly.cursors, ['r:alpha:a-2', 'r:beta:b-3', null]);
  assertError(await get('/v1/aggregates?archived_only=true&cursor=a:alpha:a-1', LISTS), 400, 'invalid_input');

  const capped = await get('/v1/aggregates?take=50', LISTS);
  assert.equal(capped.body.items.length, 5);
  const byDefault = await get('/v1/aggregates', LISTS);
  assert.equal(byDefault.body.items.length, 5);
  // Tenants are separate: the default tenant holds doc/* only.
  const other = await pageAll('/v1/aggregates', 5, {});
  assert.ok(other.items.every((a) => a.aggregate_type === 'doc'));
});

test('reads - aggregate lists filter and sort', { timeout: 20_000 }, async () => {
  const filtered = await pageAll(`/v1/aggregates?filter=${encodeURIComponent('score > 4 AND aggregate_type != "gamma"')}`, 5);
  assert.deepEqual(filtered.items.map(keyOf), ['beta/b-2', 'beta/b-4']);
  const archivedFilter = await get(`/v1/aggregates?filter=${encodeURIComponent('archived = true')}`, LISTS);
  assert.deepEqual(archivedFilter.body.items.map(keyOf), ARCHIVED);
  const sorted = await get('/v1/aggregates/gamma?sort=aggregate_id:desc', LISTS);
  assert.deepEqual(sorted.body.items.map(keyOf), ['gamma/g-3', 'gamma/g-2', 'gamma/g-1']);
  assert.equal(sorted.body.next_cursor, null);
  const sortedAll = await get('/v1/aggregates?sort=version:desc,aggregate_id:asc&include_archived=true', LISTS);
  assert.deepEqual(sortedAll.body.items.map(keyOf), ['alpha/a-2', 'beta/b-3', 'alpha/a-1', 'alpha/a-3', 'alpha/a-4']);
  assertError(await get('/v1/aggregates?sort=aggregate_id&cursor=a:alpha:a-1', LISTS), 400, 'invalid_input');
  assertError(await get('/v1/aggregates?sort=colour', LISTS), 400, 'invalid_input');
  assertError(await get(`/v1/aggregates?filter=${encodeURIComponent('score >')}`, LISTS), 400, 'invalid_input');
});

test('reads - GET /v1/events pages every event in (type, id, version) order; GET /v1/events/{id} finds one', { timeout: 20_000 }, async () => {
  const listed = await pageAll('/v1/events', 4);
  assert.deepEqual(listed.items.map((e) => `${keyOf(e)}:${e.version}`), ACTIVE.map((k) => `${k}:1`));
  assert.deepEqual(listed.cursors, ['a:beta:b-1:1', 'a:gamma:g-2:1', null]);
  const everything = await pageAll('/v1/events?include_archived=true', 5);
  assert.equal(everything.items.length, 11 + 2);
  const sorted = await get('/v1/events?sort=event_id:desc&take=2&include_archived=true', LISTS);
  assert.deepEqual(sorted.body.items.map(keyOf), ['beta/b-3', 'alpha/a-2']);

  const one = events[6];
  const found = await get(`/v1/events/${one.metadata.event_id}`);
  assert.equal(found.status, 200);
  assert.deepEqual(found.body, one);
  // Event ids are looked up within the tenant.
  assertError(await get(`/v1/events/${one.metadata.event_id}`, LISTS), 404, 'not_found');
  assertError(await get('/v1/events/12345'), 404, 'not_found');
  assertError(await get('/v1/events/not-a-number'), 400, 'validation_failed');
});

test('reads - missing aggregates and routes answer 404 not_found', { timeout: 20_000 }, async () => {
  for (const path of [
    '/v1/aggregates/doc/r-missing',
    '/v1/aggregates/doc/r-missing/events',
    '/v1/aggregates/doc/r-missing/verify',
    '/v1/aggregates/doc/r-missing/snapshots',
    '/v1/aggregates/doc/r-missing/proof?version=1',
    '/v1/no-such-route',
  ]) {
    assertError(await get(path), 404, 'not_found');
  }
  const empty = await get('/v1/aggregates/nothing_here');
  assert.deepEqual(empty.body, { items: [], next_cursor: null });
});
