/**
 * Issue 13 item 1: the global ordered stream, GET /v1/stream, against real servers: pages in commit
 * order with next_position, positions validated (malformed, another tenant's, another layout's),
 * the token's resources and the schemas' hiding honoured, live SSE under 32 writers (every
 * acknowledged event exactly once, versions in order, a disconnect-and-resume that misses and
 * repeats nothing), a slow consumer cut with `event: error`, a revoked token cut at its next
 * heartbeat, and positions that survive a restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePosition } from '../src/coordinator/stream-position.js';
import { httpRequest, removeDir, startServerInProcess, tempDataDir, writeConfigToml, type TestServer } from './helpers/server.js';
import { within } from './helpers/deadline.js';
import { openSse, type SseFrame, type SseReader } from './helpers/sse.js';

const FAST = '[stream]\nheartbeat_ms = 300\npoll_ms = 200\n';

function apply(s: TestServer, type: string, id: string, eventType: string, payload: Record<string, unknown> = {}) {
  return s.request('POST', `/v1/aggregates/${type}/${id}/events`, { event_type: eventType, payload });
}

async function applyOk(s: TestServer, type: string, id: string, eventType: string, payload: Record<string, unknown> = {}): Promise<any> {
  const res = await apply(s, type, id, eventType, payload);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

function sse(s: TestServer, query = '', headers: Record<string, string> = {}, token = s.token): SseReader {
  return openSse(s.url, `/v1/stream${query}`, { authorization: `Bearer ${token}`, ...headers });
}

const heartbeats = (frames: SseFrame[]) => frames.filter((f) => f.event === 'heartbeat');
const eventsOf = (frames: SseFrame[]) => frames.filter((f) => f.event === 'message').map((f) => ({ id: f.id as string, event: JSON.parse(f.data) }));

test('stream - pages in commit order, items as GET /v1/events/{id}, next_position continues and waits at the head', { timeout: 60_000 }, async () => {
  const s = await startServerInProcess({ configToml: FAST });
  try {
    const written: any[] = [];
    for (let i = 0; i < 9; i++) written.push(await applyOk(s, 'order', `o-${i % 3}`, i % 2 ? 'order_paid' : 'order_placed', { i }));
    // Pages of 4: every event once, in the order written (sequential writes: commit order).
    const seen: any[] = [];
    let after: string | undefined;
    for (let round = 0; round < 5; round++) {
      const res = await s.request('GET', `/v1/stream?take=4${after ? `&after=${after}` : ''}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.ok(Array.isArray(res.body.items) && typeof res.body.next_position === 'string');
      seen.push(...res.body.items);
      if (res.body.items.length === 0) {
        assert.equal(res.body.next_position, after, 'at the head the position stays put');
        break;
      }
      after = res.body.next_position;
    }
    assert.deepEqual(
      seen.map((e) => e.metadata.event_id),
      written.map((e) => e.metadata.event_id),
    );
    // Each item is the event record exactly as GET /v1/events/{id} answers it.
    for (const item of seen) assert.deepEqual(item, (await s.request('GET', `/v1/events/${item.metadata.event_id}`)).body);
    // `end` is the head: nothing after it until something commits; then exactly that.
    const head = await s.request('GET', '/v1/stream?after=end');
    assert.deepEqual(head.body.items, []);
    assert.equal(head.body.next_position, after);
    const next = await applyOk(s, 'order', 'o-9', 'order_placed');
    const tail = await s.request('GET', `/v1/stream?after=${head.body.next_position}`);
    assert.deepEqual(tail.body.items.map((e: any) => e.metadata.event_id), [next.metadata.event_id]);
    // take=0 reads nothing; `start` is the beginning.
    const none = await s.request('GET', '/v1/stream?take=0&after=start');
    assert.deepEqual(none.body.items, []);
    assert.equal((await s.request('GET', '/v1/stream?after=start&take=1')).body.items[0].metadata.event_id, written[0].metadata.event_id);
    // A filter: only matching events; the position still moves past the others.
    const paid = await s.request('GET', `/v1/stream?take=100&filter=${encodeURIComponent('event_type = "order_paid"')}`);
    assert.deepEqual(paid.body.items.map((e: any) => e.metadata.event_id), written.filter((_, i) => i % 2).map((e) => e.metadata.event_id));
    assert.equal(paid.body.next_position, tail.body.next_position);
  } finally {
    await s.stop();
    removeDir(s.dataDir);
  }
});

test('stream - bad positions are 400 invalid_input with a clear message and change nothing', { timeout: 60_000 }, async () => {
  const s = await startServerInProcess({ configToml: FAST });
  try {
    await applyOk(s, 'order', 'o-1', 'order_placed');
    const good = (await s.request('GET', '/v1/stream')).body.next_position as string;
    const cases: [string, RegExp][] = [
      ['not-a-position!', /not a stream position/],
      ['AAAAAAAAAAAA', /unknown format version/],
      [encodePosition('other', { kind: 'shards', seqs: [0, 0, 0, 0] }), /another tenant/],
      [encodePosition('default', { kind: 'shards', seqs: [0, 0] }), /names 2 shard\(s\); this server has 4/],
      [encodePosition('default', { kind: 'tenant', seqs: [3] }), /multi-tenant server/],
      [good.slice(0, -2), /truncated|not a stream position|another tenant|names/],
    ];
    for (const [after, message] of cases) {
      const res = await s.request('GET', `/v1/stream?after=${encodeURIComponent(after)}`);
      assert.equal(res.status, 400, after);
      assert.equal(res.body.error.code, 'invalid_input', after);
      assert.match(res.body.error.message, message, after);
      // The same check guards Last-Event-ID on the live route.
      const live = await s.request('GET', '/v1/stream', undefined, { accept: 'text/event-stream', 'last-event-id': after });
      assert.equal(live.status, 400, `live ${after}`);
      assert.equal(live.body.error.code, 'invalid_input');
    }
    const liveTake = await s.request('GET', '/v1/stream?take=5', undefined, { accept: 'text/event-stream' });
    assert.equal(liveTake.status, 400);
    assert.match(liveTake.body.error.message, /take applies to a page read/);
    const unknown = await s.request('GET', '/v1/stream?cursor=x');
    assert.equal(unknown.status, 400);
    // A position beyond the head answers empty and keeps the position.
    const beyond = encodePosition('default', { kind: 'shards', seqs: [50, 50, 50, 50] });
    const res = await s.request('GET', `/v1/stream?after=${beyond}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { items: [], next_position: beyond });
  } finally {
    await s.stop();
    removeDir(s.dataDir);
  }
});

test('stream - the token\'s resources, hidden types and hidden fields rule the stream as they rule GET /v1/events', { timeout: 60_000 }, async () => {
  const s = await startServerInProcess({ configToml: FAST });
  try {
    const put = await s.request('PUT', '/v1/schemas/ghost', { hidden: true, events: { made: {} } });
    assert.ok(put.status < 300, JSON.stringify(put.body));
    const put2 = await s.request('PUT', '/v1/schemas/account', { hidden_fields: ['secret'], events: { opened: {} } });
    assert.ok(put2.status < 300, JSON.stringify(put2.body));
    await applyOk(s, 'ghost', 'g-1', 'made', { x: 1 });
    await applyOk(s, 'account', 'a-1', 'opened', { secret: 's3cret', name: 'Ada' });
    await applyOk(s, 'order', 'o-1', 'order_placed', { n: 1 });
    await applyOk(s, 'person', 'p-1', 'person_named', { n: 2 });
    const all = (await s.request('GET', '/v1/stream?take=100')).body;
    assert.deepEqual(all.items.map((e: any) => e.aggregate_type), ['account', 'order', 'person'], 'a hidden type is not streamed');
    assert.deepEqual(all.items[0].payload, { name: 'Ada' }, 'hidden fields are stripped');
    const probe = await s.request('GET', `/v1/stream?filter=${encodeURIComponent('payload.secret = "s3cret"')}`);
    assert.equal(probe.status, 400, 'a filter on a hidden field is refused');
    // A token limited to `order` sees only orders, in pages and live.
    const issued = await s.request('POST', '/v1/tokens', { group: 'g', user: 'reader', actions: ['events.read'], resources: ['order'] });
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const limited = issued.body.token as string;
    const page = await httpRequest(s.url, limited, 'GET', '/v1/stream?take=100');
    assert.equal(page.status, 200);
    assert.deepEqual(page.body.items.map((e: any) => `${e.aggregate_type}/${e.aggregate_id}`), ['order/o-1']);
    assert.equal(page.body.next_position, all.next_position, 'skipped entries still move the position');
    const noAction = await s.request('POST', '/v1/tokens', { group: 'g', user: 'writer', actions: ['aggregate.read'] });
    const refused = await httpRequest(s.url, noAction.body.token, 'GET', '/v1/stream');
    assert.equal(refused.status, 403);
    const live = sse(s, '?after=start', {}, limited);
    await live.until((f) => eventsOf(f).length >= 1 && heartbeats(f).length >= 2, 10_000, 'the limited live reader');
    await applyOk(s, 'person', 'p-2', 'person_named');
    await applyOk(s, 'order', 'o-2', 'order_placed');
    await live.until((f) => eventsOf(f).length >= 2, 10_000, 'the second order');
    assert.deepEqual(eventsOf(live.frames).map((e) => e.event.aggregate_id), ['o-1', 'o-2']);
    // Revoking the token cuts the live stream at its next heartbeat, with the reason.
    const revoke = await s.request('POST', `/v1/tokens/${issued.body.record.jti}/revoke`, {});
    assert.equal(revoke.status, 200, JSON.stringify(revoke.body));
    // What commits after the revocation never reaches it, heartbeat or not.
    await applyOk(s, 'order', 'o-3', 'order_placed');
    await live.closed;
    assert.ok(!eventsOf(live.frames).some((e) => e.event.aggregate_id === 'o-3'), 'no event after the revocation');
    const last = live.frames[live.frames.length - 1] as SseFrame;
    assert.equal(last.event, 'error');
    assert.equal(JSON.parse(last.data).error.code, 'unauthorized');
  } finally {
    await s.stop();
    removeDir(s.dataDir);
  }
});

test('stream - live: 32 writers, every acknowledged event exactly once in version order; a reader that disconnects and resumes misses nothing', { timeout: 120_000 }, async () => {
  const s = await startServerInProcess({ configToml: FAST });
  try {
    const a = sse(s, '?after=end');
    const b = sse(s, '?after=end');
    assert.match(await a.head(), /^HTTP\/1\.1 200/);
    assert.match(await a.head(), /content-type: text\/event-stream/i);
    await a.until((f) => heartbeats(f).length >= 1, 5000, 'A connected');
    await b.until((f) => heartbeats(f).length >= 1, 5000, 'B connected');
    const acked: any[] = [];
    const WRITERS = 32;
    const EACH = 10;
    let bSecond: SseReader | undefined;
    const bFirst: { id: string; event: any }[] = [];
    const writers = Array.from({ length: WRITERS }, async (_, w) => {
      for (let k = 0; k < EACH; k++) {
        if (k % 5 === 4) {
          // A batch across aggregates (and shards): all or nothing, both events streamed.
          const res = await s.request('POST', '/v1/batch', {
            events: [
              { aggregate_type: 'order', aggregate_id: `w-${w}`, event_type: 'order_batched', payload: { k } },
              { aggregate_type: 'order', aggregate_id: `shared-${w % 4}`, event_type: 'order_batched', payload: { w, k } },
            ],
          });
          assert.equal(res.status, 201, JSON.stringify(res.body));
          acked.push(...res.body.events);
        } else {
          acked.push(await applyOk(s, 'order', k % 2 ? `shared-${w % 4}` : `w-${w}`, 'order_touched', { w, k }));
        }
        // Reader B drops its connection part-way and comes back with Last-Event-ID.
        if (w === 0 && k === 7 && !bSecond) {
          bFirst.push(...eventsOf(b.frames));
          b.close();
          const lastId = [...b.frames].reverse().find((f) => f.id !== undefined)?.id as string;
          bSecond = sse(s, '?after=end', { 'last-event-id': lastId });
        }
      }
    });
    await Promise.all(writers);
    const total = acked.length;
    assert.equal(total, WRITERS * (EACH + 2));
    await a.until((f) => eventsOf(f).length >= total, 30_000, `A to see all ${total} events`);
    assert.ok(bSecond);
    await bSecond.until((f) => eventsOf(f).length + bFirst.length >= total, 30_000, `B to see all ${total} events`);
    await new Promise((r) => setTimeout(r, 400)); // anything extra (a repeat) would arrive now
    const ackedIds = acked.map((e) => e.metadata.event_id).sort();
    for (const [name, got] of [
      ['A', eventsOf(a.frames)],
      ['B', [...bFirst, ...eventsOf(bSecond.frames)]],
    ] as const) {
      const ids = got.map((g) => g.event.metadata.event_id);
      assert.equal(ids.length, total, `${name}: exactly once (no repeats)`);
      assert.deepEqual([...ids].sort(), ackedIds, `${name}: every acknowledged event`);
      const versions = new Map<string, number>();
      for (const { event } of got) {
        const key = event.aggregate_id;
        assert.equal(event.version, (versions.get(key) ?? 0) + 1, `${name}: ${key} in version order`);
        versions.set(key, event.version);
      }
      // Each id is the position after its event: a page from it holds exactly the events after it.
      const mid = Math.floor(total / 2);
      const fromMiddle = await s.request('GET', `/v1/stream?after=${(got[mid] as { id: string }).id}&take=1000`);
      assert.deepEqual(fromMiddle.body.items.map((e: any) => e.metadata.event_id).sort(), ids.slice(mid + 1).sort(), `${name}: resuming from an id repeats and misses nothing`);
    }
    assert.ok(bFirst.length > 0 && bFirst.length < total, 'B really disconnected part-way');
    a.close();
    bSecond.close();
  } finally {
    await s.stop();
    removeDir(s.dataDir);
  }
});

test('stream - a slow consumer is cut with event: error (slow_consumer) and resumes exactly where it stopped', { timeout: 120_000 }, async () => {
  // Heartbeats far apart: the cut must come from the queue bound, not from the stalled-socket rule.
  const s = await startServerInProcess({ configToml: '[stream]\nheartbeat_ms = 30000\nmax_buffered_events = 8\n' });
  try {
    const slow = sse(s, '?after=end');
    await slow.until((f) => heartbeats(f).length >= 1, 5000, 'connected');
    slow.pause();
    // ~12 MB of events: more than the socket buffers on both sides hold (~7 MB here), so the queue fills.
    const blob = 'x'.repeat(200 * 1024);
    const N = 60;
    const written: string[] = [];
    for (let i = 0; i < N; i += 8) {
      const batch = await Promise.all(Array.from({ length: Math.min(8, N - i) }, (_, k) => applyOk(s, 'blob', `b-${(i + k) % 4}`, 'blob_written', { blob, n: i + k })));
      written.push(...batch.map((e) => e.metadata.event_id));
    }
    await new Promise((r) => setTimeout(r, 500));
    slow.resume();
    await within(slow.closed, 20_000, 'cutting the slow consumer');
    const last = slow.frames[slow.frames.length - 1] as SseFrame;
    assert.equal(last.event, 'error');
    const error = JSON.parse(last.data).error;
    assert.equal(error.code, 'slow_consumer');
    assert.match(error.message, /more than 8 events .* max_buffered_events/);
    const got = eventsOf(slow.frames);
    assert.ok(got.length < N, `cut before the end (${got.length} of ${N})`);
    // Resume from the last id it got: the rest, nothing twice.
    const lastId = [...slow.frames].reverse().find((f) => f.id !== undefined)?.id as string;
    const again = sse(s, '', { 'last-event-id': lastId });
    await again.until((f) => eventsOf(f).length >= N - got.length, 30_000, 'the rest after the cut');
    const ids = [...got, ...eventsOf(again.frames)].map((g) => g.event.metadata.event_id);
    assert.equal(ids.length, N, 'nothing twice');
    assert.deepEqual([...ids].sort(), [...written].sort(), 'nothing missed');
    again.close();
  } finally {
    await s.stop();
    removeDir(s.dataDir);
  }
});

test('stream - a position from before a restart resumes exactly (pages and live), in async durability too', { timeout: 120_000 }, async () => {
  for (const durability of ['sync', 'async'] as const) {
    const dataDir = tempDataDir();
    writeConfigToml(dataDir, `${FAST}[storage]\ndurability = "${durability}"\n`);
    let s = await startServerInProcess({ dataDir });
    try {
      for (let i = 0; i < 5; i++) await applyOk(s, 'order', `o-${i % 2}`, 'order_placed', { i });
      const before = (await s.request('GET', '/v1/stream?take=100')).body;
      assert.equal(before.items.length, 5);
      await s.stop();
      s = await startServerInProcess({ dataDir });
      const after: any[] = [];
      for (let i = 0; i < 3; i++) after.push(await applyOk(s, 'order', `o-${i % 2}`, 'order_placed', { i: 5 + i }));
      const page = await s.request('GET', `/v1/stream?take=100&after=${before.next_position}`);
      assert.equal(page.status, 200, JSON.stringify(page.body));
      assert.deepEqual(page.body.items.map((e: any) => e.metadata.event_id), after.map((e) => e.metadata.event_id), durability);
      assert.deepEqual(page.body.items.map((e: any) => e.version), [4, 3, 5], 'versions continue across the restart');
      const live = sse(s, '', { 'last-event-id': before.next_position });
      await live.until((f) => eventsOf(f).length >= 3, 10_000, 'the events since the old position');
      const more = await applyOk(s, 'order', 'o-1', 'order_placed');
      await live.until((f) => eventsOf(f).length >= 4, 10_000, 'the live event');
      assert.deepEqual(eventsOf(live.frames).map((e) => e.event.metadata.event_id), [...after, more].map((e) => e.metadata.event_id), durability);
      live.close();
    } finally {
      await s.stop();
      removeDir(dataDir);
    }
  }
});

test('stream - multi-tenant: one seq per tenant, tenants never mix, a token of another tenant is refused', { timeout: 60_000 }, async () => {
  const s = await startServerInProcess({ configToml: `${FAST}[tenants]\nmulti_tenant = true\nshard_count = 4\n` });
  try {
    const as = { 'x-tenant-id': 'acme' };
    const bs = { 'x-tenant-id': 'bravo' };
    const live = sse(s, '?after=start', as);
    await live.until((f) => heartbeats(f).length >= 1, 5000, 'connected');
    for (let i = 0; i < 3; i++) {
      assert.equal((await s.request('POST', `/v1/aggregates/order/a-${i}/events`, { event_type: 'order_placed', payload: {} }, as)).status, 201);
      assert.equal((await s.request('POST', `/v1/aggregates/order/b-${i}/events`, { event_type: 'order_placed', payload: {} }, bs)).status, 201);
    }
    const a = (await s.request('GET', '/v1/stream?take=10', undefined, as)).body;
    const b = (await s.request('GET', '/v1/stream?take=10', undefined, bs)).body;
    assert.deepEqual(a.items.map((e: any) => e.aggregate_id), ['a-0', 'a-1', 'a-2']);
    assert.deepEqual(b.items.map((e: any) => e.aggregate_id), ['b-0', 'b-1', 'b-2']);
    assert.equal(a.next_position, encodePosition('acme', { kind: 'tenant', seqs: [3] }), 'one entry: the tenant\'s own seq');
    const crossed = await s.request('GET', `/v1/stream?after=${a.next_position}`, undefined, bs);
    assert.equal(crossed.status, 400);
    assert.match(crossed.body.error.message, /another tenant/);
    const single = await s.request('GET', `/v1/stream?after=${encodePosition('acme', { kind: 'shards', seqs: [0, 0, 0, 0] })}`, undefined, as);
    assert.equal(single.status, 400);
    assert.match(single.body.error.message, /single-tenant server/);
    await live.until((f) => eventsOf(f).length >= 3, 10_000, 'acme events live');
    assert.deepEqual(eventsOf(live.frames).map((e) => e.event.aggregate_id), ['a-0', 'a-1', 'a-2']);
    live.close();
  } finally {
    await s.stop();
    removeDir(s.dataDir);
  }
});
