/**
 * Indexed queries (issue 13 item 3): filters on event_type, created_at ranges, event_id and
 * aggregate_type read key ranges, told apart from scans by `explain=true`'s real counters
 * (records read); every indexed answer equals the brute-force answer computed here from the whole
 * store; a filter no index serves stops at `[query] max_scan`; a data dir written before the index
 * existed scans until its next write builds the index.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { readConfig } from '../src/core/index.js';
import { removeDir, spawnServer, startServerInProcess, stopSpawned, type SpawnedServer, type TestServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';
import type { EventRecord } from '../src/core/types.js';

const q = (filter: string): string => encodeURIComponent(filter);
const keyOf = (e: EventRecord): string => `${e.aggregate_type}/${e.aggregate_id}/${e.version}`;
const sortedKeys = (events: EventRecord[]): string[] => events.map(keyOf).sort();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every page of a listing, following next_cursor; asserts no row comes twice. */
async function allPages(server: TestServer, path: string, take: number): Promise<{ items: EventRecord[]; pages: any[] }> {
  const items: EventRecord[] = [];
  const pages: any[] = [];
  let cursor: string | null = null;
  for (let guard = 0; guard < 500; guard++) {
    const sep = path.includes('?') ? '&' : '?';
    const res = await server.request('GET', `${path}${sep}take=${take}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
    items.push(...res.body.items);
    pages.push(res.body);
    cursor = res.body.next_cursor;
    if (cursor === null) {
      assert.equal(new Set(items.map(keyOf)).size, items.length, `${path}: no row twice`);
      return { items, pages };
    }
  }
  throw new Error(`${path}: listing did not end`);
}

/** An id as the original (epoch 2025) would have made it: its time is a year off our epoch's. */
function legacyId(ms: number, seq: number): string {
  return ((BigInt(ms - Date.UTC(2025, 0, 1)) << 22n) | (7n << 12n) | BigInt(seq)).toString();
}

describe('query index - indexed filters read key ranges, scans read the store', () => {
  let server: TestServer;
  let all: EventRecord[] = [];
  let tMid = 0;
  const LEGACY_MS = Date.UTC(2021, 5, 1);

  before(async () => {
    server = await startServerInProcess();
    const orders = Array.from({ length: 120 }, (_, i) => ({ aggregate_type: 'order', aggregate_id: `o-${String(i).padStart(3, '0')}`, event_type: 'order_created', payload: { kind: 'common', n: i } }));
    const users = Array.from({ length: 60 }, (_, i) => ({ aggregate_type: 'user', aggregate_id: `u-${String(i).padStart(2, '0')}`, event_type: 'user_created', payload: { n: 1000 + i } }));
    for (const events of [orders, users]) assert.equal((await server.request('POST', '/v1/batch', { events })).status, 201);
    await sleep(20);
    tMid = Date.now();
    await sleep(20);
    const paid = Array.from({ length: 80 }, (_, i) => ({ aggregate_type: 'order', aggregate_id: `o-${String(i).padStart(3, '0')}`, event_type: 'order_paid', payload: { kind: 'common' } }));
    const shipped = Array.from({ length: 5 }, (_, i) => ({ aggregate_type: 'order', aggregate_id: `o-${String(i).padStart(3, '0')}`, event_type: 'order_shipped', payload: { kind: 'rare' } }));
    assert.equal((await server.request('POST', '/v1/batch', { events: [...paid, ...shipped] })).status, 201);
    // 20 imported events created in 2021 with ids of another epoch: created_at and id time disagree.
    const lines = Array.from({ length: 20 }, (_, i) =>
      JSON.stringify({
        aggregate_type: 'legacy',
        aggregate_id: `l-${i}`,
        event_type: 'legacy_imported',
        version: 1,
        payload: { n: 2000 + i },
        extensions: {},
        metadata: { event_id: legacyId(Date.UTC(2025, 6, 1) + i, i), created_at: new Date(LEGACY_MS + i * 60_000).toISOString(), issued_by: { group: 'import', user: 'test' } },
      }),
    );
    const imported = await fetch(`${server.url}/v1/import`, { method: 'POST', headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/x-ndjson' }, body: `${lines.join('\n')}\n` });
    assert.equal(imported.status, 200, await imported.clone().text());
    all = (await allPages(server, '/v1/events', 1000)).items;
    assert.equal(all.length, 120 + 60 + 80 + 5 + 20);
  });
  after(async () => {
    if (!server) return;
    await server.stop();
    removeDir(server.dataDir);
  });

  const explainOf = async (path: string) => {
    const res = await server.request('GET', `${path}${path.includes('?') ? '&' : '?'}explain=true`);
    assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
    assert.ok(res.body.explain, 'explain is in the answer');
    return res.body as { items: EventRecord[]; next_cursor: string | null; explain: any };
  };

  test('query index - event_type reads only its entries; the same rows by an unindexed field read every event', { timeout: 30_000 }, async () => {
    const indexed = await explainOf(`/v1/events?take=100&filter=${q('event_type = "order_shipped"')}`);
    assert.deepEqual(sortedKeys(indexed.items), sortedKeys(all.filter((e) => e.event_type === 'order_shipped')));
    assert.equal(indexed.explain.plan, 'index_range');
    assert.match(indexed.explain.index, /^event_index/);
    assert.deepEqual(indexed.explain.indexed_fields, ['event_type']);
    assert.equal(indexed.explain.records_read, 5, 'only the 5 matching events are read');
    assert.equal(indexed.explain.rows_rejected, 0);

    const scanned = await explainOf(`/v1/events?take=100&filter=${q('payload.kind = "rare"')}`);
    assert.deepEqual(sortedKeys(scanned.items), sortedKeys(indexed.items), 'same rows');
    assert.equal(scanned.explain.plan, 'full_scan');
    assert.deepEqual(scanned.explain.unindexed_fields, ['payload.kind']);
    assert.equal(scanned.explain.records_read, all.length, 'a scan reads every event of the store');
    assert.equal(scanned.explain.rows_rejected, all.length - 5);
    assert.ok(scanned.explain.notes.some((n: string) => /no index serves this filter/.test(n)), 'explain says no index serves it');

    const two = await explainOf(`/v1/events?take=100&filter=${q('event_type IN ["order_shipped", "user_created"] OR event_type = legacy_imported')}`);
    assert.equal(two.items.length, 5 + 60 + 20);
    assert.equal(two.explain.records_read, 85);
    // A key condition checked on the index entry: 80 entries visited, one event read.
    const one = await explainOf(`/v1/events?filter=${q('event_type = "order_paid" AND aggregate_id = "o-001"')}`);
    assert.deepEqual(one.items.map(keyOf), ['order/o-001/2']);
    assert.equal(one.explain.records_read, 1);
    assert.equal(one.explain.index_entries_read, 80);
  });

  test('query index - a first page the index serves reads ~take records, not the store', { timeout: 30_000 }, async () => {
    const page = await explainOf(`/v1/events?take=10&filter=${q('created_at > "2020-01-01T00:00:00Z"')}`);
    assert.equal(page.items.length, 10);
    assert.equal(page.explain.records_read, 10);
    assert.match(page.next_cursor ?? '', /^t:/);
    const byTime = (a: EventRecord, b: EventRecord) => Date.parse(a.metadata.created_at) - Date.parse(b.metadata.created_at) || (BigInt(a.metadata.event_id) < BigInt(b.metadata.event_id) ? -1 : 1);
    assert.deepEqual(page.items.map(keyOf), [...all].sort(byTime).slice(0, 10).map(keyOf), 'oldest first: the 2021 imports');

    const newest = await explainOf('/v1/events?take=5&sort=created_at:desc');
    assert.deepEqual(newest.items.map(keyOf), [...all].sort(byTime).reverse().slice(0, 5).map(keyOf));
    assert.equal(newest.explain.sort, 'index');
    assert.equal(newest.explain.records_read, 5);
    const topK = await explainOf('/v1/events?take=5&sort=version:desc');
    assert.equal(topK.explain.sort, 'top_k');
    assert.equal(topK.explain.records_read, all.length, 'a sort the index does not give reads the scope');
    // Paging the time order by its cursors gives every event once.
    const paged = await allPages(server, `/v1/events?filter=${q('created_at > 0')}`, 7);
    assert.deepEqual(sortedKeys(paged.items), sortedKeys(all));
  });

  test('query index - created_at ranges are exact, in ISO 8601 or epoch ms, imports included', { timeout: 30_000 }, async () => {
    const after = all.filter((e) => Date.parse(e.metadata.created_at) >= tMid);
    assert.equal(after.length, 85);
    for (const filter of [`created_at >= "${new Date(tMid).toISOString()}"`, `created_at >= ${tMid}`, `metadata.created_at >= ${tMid}`]) {
      const { items } = await allPages(server, `/v1/events?filter=${q(filter)}`, 30);
      assert.deepEqual(sortedKeys(items), sortedKeys(after), filter);
    }
    const legacy = all.filter((e) => e.aggregate_type === 'legacy');
    for (const filter of ['created_at < "2022-01-01"', 'created_at < "2022-01-01T02:00:00+02:00"', `created_at >= ${LEGACY_MS} AND created_at <= ${LEGACY_MS + 19 * 60_000}`]) {
      const page = await explainOf(`/v1/events?take=100&filter=${q(filter)}`);
      assert.deepEqual(sortedKeys(page.items), sortedKeys(legacy), filter);
      assert.equal(page.explain.records_read, 20, `${filter}: reads the range only`);
    }
    const between = await explainOf(`/v1/events?take=100&filter=${q(`created_at > ${LEGACY_MS + 60_000} AND created_at < ${LEGACY_MS + 4 * 60_000}`)}`);
    assert.deepEqual(between.items.map((e) => e.aggregate_id), ['l-2', 'l-3']);
  });

  test('query index - event_id: = and IN look up keys, ranges are exact across ids of another epoch', { timeout: 30_000 }, async () => {
    const some = all[37] as EventRecord;
    const lookup = await explainOf(`/v1/events?filter=${q(`event_id = "${some.metadata.event_id}"`)}`);
    assert.deepEqual(lookup.items.map(keyOf), [keyOf(some)]);
    assert.equal(lookup.explain.plan, 'index_lookup');
    assert.equal(lookup.explain.records_read, 1);
    // Unquoted, beyond 2^53: compared exactly.
    assert.deepEqual((await explainOf(`/v1/events?filter=${q(`event_id = ${some.metadata.event_id}`)}`)).items.map(keyOf), [keyOf(some)]);
    const pair = await explainOf(`/v1/events?filter=${q(`event_id IN ["${some.metadata.event_id}", "${(all[3] as EventRecord).metadata.event_id}"]`)}`);
    assert.equal(pair.items.length, 2);

    const ids = all.map((e) => BigInt(e.metadata.event_id)).sort((a, b) => (a < b ? -1 : 1));
    for (const pivot of [ids[5] as bigint, ids[30] as bigint, ids[150] as bigint]) {
      const expected = all.filter((e) => BigInt(e.metadata.event_id) > pivot);
      const { items, pages } = await allPages(server, `/v1/events?explain=true&filter=${q(`event_id > "${pivot}"`)}`, 1000);
      assert.deepEqual(sortedKeys(items), sortedKeys(expected), `event_id > ${pivot}`);
      assert.equal(pages[0].explain.plan, 'index_range');
      assert.ok(pages[0].explain.notes.some((n: string) => /imported events have ids/.test(n)), 'the skew of the imported ids is said');
    }
    const below = await explainOf(`/v1/events?take=1000&filter=${q(`event_id <= "${ids[19]}"`)}`);
    assert.deepEqual(sortedKeys(below.items), sortedKeys(all.filter((e) => BigInt(e.metadata.event_id) <= (ids[19] as bigint))));
    // GET /v1/events/{id} finds native and imported ids alike.
    for (const event of [some, all.find((e) => e.aggregate_type === 'legacy') as EventRecord]) {
      const res = await server.request('GET', `/v1/events/${event.metadata.event_id}`);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, event);
    }
  });

  test('query index - aggregate_type (and aggregate_id) read one range of events or of the aggregate index', { timeout: 30_000 }, async () => {
    const users = await explainOf(`/v1/events?take=1000&filter=${q('aggregate_type = "user"')}`);
    assert.equal(users.items.length, 60);
    assert.equal(users.explain.plan, 'index_range');
    assert.match(users.explain.index, /^events \(aggregate_type/);
    assert.equal(users.explain.records_read, 60);

    const aggregates = await explainOf(`/v1/aggregates?take=1000&filter=${q('aggregate_type = user')}`);
    assert.equal(aggregates.items.length, 60);
    assert.equal(aggregates.explain.records_read, 60);
    const points = await explainOf(`/v1/aggregates?filter=${q('aggregate_type = "order" AND aggregate_id IN ["o-003", "o-100", "o-999"]')}`);
    assert.deepEqual(points.items.map((a: any) => a.aggregate_id), ['o-003', 'o-100']);
    assert.equal(points.explain.plan, 'index_lookup');
    assert.equal(points.explain.records_read, 2);
    const typed = await explainOf(`/v1/aggregates/order?filter=${q('aggregate_id = "o-007"')}`);
    assert.equal(typed.explain.records_read, 1);
    const scan = await explainOf(`/v1/aggregates?take=1000&filter=${q('n >= 1000')}`);
    assert.equal(scan.items.length, 60 + 20);
    assert.equal(scan.explain.plan, 'full_scan');
    assert.equal(scan.explain.records_read, 200, 'every aggregate is read');
    const history = await explainOf(`/v1/aggregates/order/o-001/events?filter=${q('event_type = "order_paid"')}`);
    assert.deepEqual(history.items.map(keyOf), ['order/o-001/2']);
    assert.equal(history.explain.records_read, 3, "one aggregate's history");
  });
});

describe('query index - [query] max_scan bounds a listing whose filter no index serves', () => {
  let server: TestServer;

  before(async () => {
    server = await startServerInProcess({ configToml: '[query]\nmax_scan = 50\nscan_rows_max = 40\n' });
    const events = Array.from({ length: 200 }, (_, i) => ({ aggregate_type: 'doc', aggregate_id: `d-${String(i).padStart(3, '0')}`, event_type: 'doc_created', payload: { n: i } }));
    assert.equal((await server.request('POST', '/v1/batch', { events })).status, 201);
  });
  after(async () => {
    if (!server) return;
    await server.stop();
    removeDir(server.dataDir);
  });

  test('query index - past max_scan rejected rows the listing is a 400 naming the unindexed field; indexed and unfiltered ones page on', { timeout: 30_000 }, async () => {
    const first = await server.request('GET', `/v1/events?take=10&explain=true&filter=${q('payload.n = -1')}`);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(first.body.items, []);
    assert.match(first.body.next_cursor, /~40$/, 'the cursor carries the rows rejected so far');
    assert.equal(first.body.explain.rows_rejected_listing, 40);
    assert.equal(first.body.explain.max_scan, 50);
    const second = await server.request('GET', `/v1/events?take=10&filter=${q('payload.n = -1')}&cursor=${encodeURIComponent(first.body.next_cursor)}`);
    assertError(second, 400, 'invalid_input');
    assert.match(second.body.error.message, /max_scan/);
    assert.match(second.body.error.message, /'payload\.n'/);
    assert.equal(second.body.error.details.max_scan, 50);
    // The same rule on aggregates.
    let cursor = '';
    let status = 200;
    for (let i = 0; i < 5 && status === 200; i++) {
      const res = await server.request('GET', `/v1/aggregates/doc?filter=${q('n < 0')}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      status = res.status;
      cursor = res.body.next_cursor;
      if (status !== 200) assertError(res, 400, 'invalid_input');
    }
    assert.equal(status, 400);

    // A filter an index serves rejects nothing: 200 matches page through.
    const indexed = await allPages(server, `/v1/events?filter=${q('event_type = "doc_created"')}`, 30);
    assert.equal(indexed.items.length, 200);
    // A filter that rejects fewer than max_scan rows in all finishes.
    const few = await allPages(server, `/v1/events?filter=${q('payload.n >= 160 OR payload.n < 120')}`, 50);
    assert.equal(few.items.length, 160);
    const unfiltered = await allPages(server, '/v1/events', 25);
    assert.equal(unfiltered.items.length, 200);
  });
});

describe('query index - a data dir written before event_index existed', () => {
  let server: SpawnedServer | undefined;
  let dataDir = '';

  after(async () => {
    if (server) await stopSpawned(server).catch(() => undefined);
    if (dataDir) removeDir(dataDir);
  });

  test('query index - scans (and says so) until the next write indexes each shard whole', { timeout: 90_000 }, async () => {
    server = await spawnServer();
    dataDir = server.dataDir;
    const events = Array.from({ length: 40 }, (_, i) => ({ aggregate_type: 'old', aggregate_id: `x-${i}`, event_type: i % 4 === 0 ? 'old_special' : 'old_created', payload: { i } }));
    assert.equal((await server.request('POST', '/v1/batch', { events })).status, 201);
    await stopSpawned(server);
    // Drop the index and its marker, as a store from before this version has neither.
    const mapSizeMib = readConfig(dataDir).config.storage.map_size_mib;
    const store = new URL('../src/shard-worker/store.js', import.meta.url).href;
    const script = `import { WorkerEnv } from ${JSON.stringify(store)};
      import { readdirSync } from 'node:fs';
      for (const name of readdirSync(${JSON.stringify(join(dataDir, 'shards'))}).filter((n) => n.startsWith('worker-'))) {
        const env = new WorkerEnv(${JSON.stringify(join(dataDir, 'shards'))} + '/' + name, { mapSizeMib: ${mapSizeMib} });
        env.env.transactionSync(() => { env.eventIndex.clearSync(); env.queryMeta.clearSync(); });
      }
      process.exit(0);`;
    const dropped = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(dropped.status, 0, dropped.stderr);

    server = await spawnServer({ dataDir });
    const path = `/v1/events?take=100&explain=true&filter=${q('event_type = "old_special"')}`;
    const before = await server.request('GET', path);
    assert.equal(before.status, 200);
    assert.equal(before.body.items.length, 10, 'still the right answer');
    assert.equal(before.body.explain.plan, 'full_scan');
    assert.equal(before.body.explain.records_read, 40, 'a scan');
    assert.ok(before.body.explain.notes.some((n: string) => /not built/.test(n)));
    // One write to every shard builds its index (in that write's transaction).
    const touch = Array.from({ length: 40 }, (_, i) => ({ aggregate_type: 'old', aggregate_id: `x-${i}`, event_type: 'old_touched', payload: {} }));
    assert.equal((await server.request('POST', '/v1/batch', { events: touch })).status, 201);
    const afterWrite = await server.request('GET', path);
    assert.equal(afterWrite.body.items.length, 10);
    assert.match(afterWrite.body.explain.index, /^event_index/);
    assert.equal(afterWrite.body.explain.records_read, 10, 'the index serves it now, old events included');
  });
});
