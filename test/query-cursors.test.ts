/**
 * Stable cursors (issue 13 item 4): every list — aggregates and events, unsorted, indexed and
 * sorted — pages through without repeating or skipping a row that existed when the listing began,
 * while 12 writers append and create on 4 shards in 2 worker environments; sorted lists take
 * cursors, and a cursor only continues the query it came from.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { shardFor } from '../src/core/index.js';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

const q = (filter: string): string => encodeURIComponent(filter);
type Row = { aggregate_type: string; aggregate_id: string; version: number };
const aggKey = (a: Row): string => `${a.aggregate_type}/${a.aggregate_id}`;
const eventKey = (e: Row): string => `${aggKey(e)}/${e.version}`;

describe('query cursors - pages under concurrent writes', () => {
  let server: TestServer;
  const startAggregates = new Set<string>();
  const startEvents = new Set<string>();

  async function page(path: string, cursor: string | null, take: number): Promise<{ items: any[]; next_cursor: string | null }> {
    const sep = path.includes('?') ? '&' : '?';
    const res = await server.request('GET', `${path}${sep}take=${take}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
    return res.body;
  }

  async function listing(path: string, take: number, key: (r: Row) => string): Promise<{ keys: string[]; pages: number }> {
    const keys: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const body = await page(path, cursor, take);
      keys.push(...body.items.map(key));
      cursor = body.next_cursor;
      pages += 1;
    } while (cursor !== null && pages < 2000);
    assert.equal(cursor, null, `${path}: ended`);
    return { keys, pages };
  }

  function exactlyOnce(label: string, keys: string[], expected: Set<string>): void {
    const counts = new Map<string, number>();
    for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1).map(([k]) => k);
    assert.deepEqual(twice, [], `${label}: no row twice`);
    const missing = [...expected].filter((k) => !counts.has(k));
    assert.deepEqual(missing, [], `${label}: every row that existed at the start`);
  }

  before(async () => {
    server = await startServerInProcess({ configToml: '[tenants]\nshard_count = 4\n[storage]\nworkers = 2\n' });
    const opened = Array.from({ length: 200 }, (_, i) => ({ aggregate_type: 'acct', aggregate_id: `a-${String(i).padStart(3, '0')}`, event_type: 'acct_opened', payload: { n: i } }));
    const notes = Array.from({ length: 100 }, (_, i) => ({ aggregate_type: 'note', aggregate_id: `n-${String(i).padStart(3, '0')}`, event_type: 'note_written', payload: { n: i } }));
    const changed = opened.filter((_, i) => i % 2 === 0).map((e) => ({ ...e, event_type: 'acct_changed', payload: { changed: true } }));
    for (const events of [opened, notes, changed]) assert.equal((await server.request('POST', '/v1/batch', { events })).status, 201);
    for (const e of [...opened, ...notes]) startAggregates.add(`${e.aggregate_type}/${e.aggregate_id}`);
    for (const e of opened) startEvents.add(`acct/${e.aggregate_id}/1`);
    for (const e of notes) startEvents.add(`note/${e.aggregate_id}/1`);
    for (const e of changed) startEvents.add(`acct/${e.aggregate_id}/2`);
    const shards = new Set([...startAggregates].map((k) => shardFor({ shardCount: 4, multiTenant: false }, 'default', ...(k.split('/') as [string, string]))));
    assert.equal(shards.size, 4, 'the data spans every shard');
  });
  after(async () => {
    if (!server) return;
    await server.stop();
    removeDir(server.dataDir);
  });

  test('query cursors - 12 writers append and create while every list pages through: each starting row exactly once', { timeout: 120_000 }, async () => {
    let running = true;
    let writes = 0;
    const ids = [...startAggregates];
    const writers = Array.from({ length: 12 }, async (_, w) => {
      for (let n = 0; running; n++) {
        const create = n % 4 === 0;
        const [type, id] = create ? ['acct', `w${w}-${n}`] : ((ids[(n * 7919 + w * 104_729) % ids.length] as string).split('/') as [string, string]);
        const res = await server.request('POST', create ? `/v1/aggregates/${type}/${id}` : `/v1/aggregates/${type}/${id}/events`, {
          event_type: create ? 'acct_opened' : `${type}_touched`,
          payload: { w, n },
        });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        writes += 1;
      }
    });
    const during: Record<string, number> = {};
    try {
      const lists: [string, number, 'aggregate' | 'event', Set<string>][] = [
        ['/v1/aggregates', 13, 'aggregate', startAggregates],
        ['/v1/aggregates?sort=version:desc', 19, 'aggregate', startAggregates],
        ['/v1/aggregates?sort=updated_at:desc,aggregate_id', 23, 'aggregate', startAggregates],
        ['/v1/aggregates/acct?sort=aggregate_id:desc', 17, 'aggregate', new Set([...startAggregates].filter((k) => k.startsWith('acct/')))],
        ['/v1/events', 50, 'event', startEvents],
        ['/v1/events?sort=created_at:desc', 40, 'event', startEvents],
        ['/v1/events?sort=event_id', 45, 'event', startEvents],
        [`/v1/events?filter=${q('event_type = "acct_opened"')}`, 30, 'event', new Set([...startEvents].filter((k) => k.startsWith('acct/') && k.endsWith('/1')))],
        ['/v1/events?sort=version:desc,aggregate_id', 60, 'event', startEvents],
      ];
      for (const [path, take, kind, expected] of lists) {
        const before = writes;
        const { keys, pages } = await listing(path, take, kind === 'aggregate' ? aggKey : eventKey);
        exactlyOnce(path, keys, expected);
        assert.ok(pages > 4, `${path}: ${pages} pages`);
        during[path] = writes - before;
        if (path.includes('aggregate_id:desc')) {
          const acct = keys.filter((k) => startAggregates.has(k));
          assert.deepEqual(acct, [...acct].sort().reverse(), 'sorted across shards, page after page');
        }
      }
    } finally {
      running = false;
      await Promise.all(writers);
    }
    // The writers really wrote while each listing paged.
    for (const [path, n] of Object.entries(during)) assert.ok(n >= 10, `${path}: ${n} writes while it paged`);
  });

  test('query cursors - sorted lists page with cursors that belong to their query', { timeout: 30_000 }, async () => {
    const first = await page('/v1/aggregates?sort=version:desc', null, 5);
    assert.match(first.next_cursor ?? '', /^s:/);
    const second = await page('/v1/aggregates?sort=version:desc', first.next_cursor, 5);
    assert.equal(second.items.length, 5);
    assert.ok(second.items.every((a) => !first.items.some((b) => aggKey(a) === aggKey(b))), 'no overlap');
    const cursor = encodeURIComponent(first.next_cursor as string);
    assertError(await server.request('GET', `/v1/aggregates?sort=version:asc&cursor=${cursor}`), 400, 'invalid_input');
    assertError(await server.request('GET', `/v1/aggregates?sort=version:desc&filter=${q('n > 1')}&cursor=${cursor}`), 400, 'invalid_input');
    assertError(await server.request('GET', `/v1/aggregates?cursor=${cursor}`), 400, 'invalid_input');
    assertError(await server.request('GET', '/v1/aggregates?sort=version:desc&cursor=a:acct:a-001'), 400, 'invalid_input');
    assertError(await server.request('GET', '/v1/aggregates?sort=version:desc&cursor=s:bm90IGpzb24'), 400, 'invalid_input');
    const timed = await page('/v1/events?sort=created_at', null, 3);
    assert.match(timed.next_cursor ?? '', /^t:\d+:\d+:/);
    assertError(await server.request('GET', `/v1/events?sort=created_at:desc&cursor=${encodeURIComponent(timed.next_cursor as string)}`), 400, 'invalid_input');
    assertError(await server.request('GET', `/v1/events?cursor=${encodeURIComponent(timed.next_cursor as string)}`), 400, 'invalid_input');
  });
});
