/**
 * Shared by the tenant move, crash, export and isolation suites: a multi-tenant config, writers
 * that record every acknowledged event, the check that a tenant holds exactly those events, and a
 * TCP plugin receiver that records what was delivered.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { TestServer } from './server.js';

export const MULTI_TENANT_TOML = (shards = 4, workers = 2): string => `[tenants]\nmulti_tenant = true\nshard_count = ${shards}\n\n[storage]\nworkers = ${workers}\n`;

export interface Ack {
  id: string;
  version: number;
  event_id: string;
  hash: string;
}

export const tenantHeaders = (tenant: string): Record<string, string> => ({ 'x-tenant-id': tenant });

/** The tenant's shard index as the server reports it (GET /v1/tenants/{t}). */
export async function shardOf(server: Pick<TestServer, 'request'>, tenant: string): Promise<{ shard: number; move: unknown }> {
  const res = await server.request('GET', `/v1/tenants/${tenant}`, undefined, tenantHeaders(tenant));
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return { shard: Number(String(res.body.shard).replace('shard-', '')), move: res.body.move };
}

/** Like `seed`, one batch per aggregate (fewer requests). */
export async function seedBatches(server: Pick<TestServer, 'request'>, tenant: string, ids: string[], events: number, width = 8): Promise<Ack[]> {
  const acks: Ack[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < ids.length) {
        const id = ids[next++] as string;
        const batch = Array.from({ length: events }, (_, n) => ({ aggregate_type: 'order', aggregate_id: id, event_type: 'ticked', payload: { n, tenant } }));
        const res = await server.request('POST', '/v1/batch', { events: batch }, tenantHeaders(tenant));
        assert.equal(res.status, 201, JSON.stringify(res.body));
        for (const e of res.body.events) acks.push({ id, version: e.version, event_id: e.metadata.event_id, hash: e.hash });
      }
    }),
  );
  return acks;
}

/** Appends `events` events to each of `ids` (type `order`), `width` requests at a time. */
export async function seed(server: Pick<TestServer, 'request'>, tenant: string, ids: string[], events: number, width = 16): Promise<Ack[]> {
  const acks: Ack[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < ids.length) {
        const id = ids[next++] as string;
        for (let n = 0; n < events; n++) {
          const res = await server.request('POST', `/v1/aggregates/order/${id}/events`, { event_type: 'ticked', payload: { n, tenant } }, tenantHeaders(tenant));
          assert.equal(res.status, 201, JSON.stringify(res.body));
          acks.push({ id, version: res.body.version, event_id: res.body.metadata.event_id, hash: res.body.hash });
        }
      }
    }),
  );
  return acks;
}

export interface WriterStats {
  sent: number;
  unavailable: number;
  /** 503 answers that carried Retry-After. */
  retryAfter: number;
  /** Longest time one write took to be acknowledged, retries included (ms). */
  slowestMs: number;
}

/**
 * One writer: appends to its own aggregates until stopped. A 503 is retried with the same
 * idempotency key (it may or may not have been applied; the key makes a second apply a replay), so
 * every write ends acknowledged exactly once or the writer fails the test.
 */
export async function writer(server: Pick<TestServer, 'request'>, tenant: string, index: number, stop: { now: boolean }, acks: Ack[], stats: WriterStats, connectionErrorsEnd = false): Promise<void> {
  for (let n = 0; !stop.now; n++) {
    const id = `w${index}-${n % 3}`;
    const key = `${tenant}-${index}-${n}`;
    const started = performance.now();
    for (let attempt = 0; ; attempt++) {
      stats.sent++;
      let res;
      try {
        res = await server.request('POST', `/v1/aggregates/order/${id}/events`, { event_type: 'ticked', payload: { n, index }, idempotency_key: key }, tenantHeaders(tenant));
      } catch (err) {
        if (connectionErrorsEnd) return; // the server was killed: nothing more is acknowledged
        throw err;
      }
      if (res.status === 201) {
        // A replay (the 503 had been applied after all) answers the original event: one ack either way.
        acks.push({ id, version: res.body.version, event_id: res.body.metadata.event_id, hash: res.body.hash });
        break;
      }
      if (res.status === 503) {
        stats.unavailable++;
        if (res.headers.get('retry-after')) stats.retryAfter++;
        assert.ok(attempt < 200, `write ${key} stayed unavailable: ${JSON.stringify(res.body)}`);
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      assert.fail(`write ${key} answered ${res.status} ${JSON.stringify(res.body)}`);
    }
    stats.slowestMs = Math.max(stats.slowestMs, performance.now() - started);
  }
}

/** Every event of every aggregate of `tenant` (type `order`), by id, following cursors. */
export async function eventsOf(server: Pick<TestServer, 'request'>, tenant: string, id: string): Promise<{ version: number; event_id: string; hash: string; merkle_root: string }[]> {
  const out: { version: number; event_id: string; hash: string; merkle_root: string }[] = [];
  let cursor: string | undefined;
  for (;;) {
    const q = `?take=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const res = await server.request('GET', `/v1/aggregates/order/${id}/events${q}`, undefined, tenantHeaders(tenant));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    for (const e of res.body.items) out.push({ version: e.version, event_id: e.metadata.event_id, hash: e.hash, merkle_root: e.merkle_root });
    if (!res.body.next_cursor) break;
    cursor = res.body.next_cursor;
  }
  return out;
}

/**
 * Every acknowledged event is in its aggregate's history exactly once, at its version with its
 * hash; every history is contiguous from 1 and verifies. Answers the number of events checked.
 */
export async function assertHolds(server: Pick<TestServer, 'request'>, tenant: string, acks: Ack[]): Promise<number> {
  const byAggregate = new Map<string, Ack[]>();
  for (const a of acks) byAggregate.set(a.id, [...(byAggregate.get(a.id) ?? []), a]);
  let total = 0;
  for (const [id, list] of byAggregate) {
    const events = await eventsOf(server, tenant, id);
    events.forEach((e, i) => assert.equal(e.version, i + 1, `${tenant} order/${id}: versions contiguous`));
    const seen = new Map<string, number>();
    for (const e of events) seen.set(e.event_id, (seen.get(e.event_id) ?? 0) + 1);
    for (const a of list) {
      assert.equal(seen.get(a.event_id), 1, `${tenant} order/${id}: acknowledged event ${a.event_id} (v${a.version}) present exactly once`);
      const at = events[a.version - 1];
      assert.equal(at?.event_id, a.event_id, `${tenant} order/${id}: event ${a.event_id} at version ${a.version}`);
      assert.equal(at?.hash, a.hash);
    }
    const verify = await server.request('GET', `/v1/aggregates/order/${id}/verify`, undefined, tenantHeaders(tenant));
    assert.equal(verify.status, 200);
    assert.equal(verify.body.valid, true, `${tenant} order/${id} verifies: ${JSON.stringify(verify.body)}`);
    assert.equal(verify.body.version, events.length);
    total += events.length;
  }
  return total;
}

/** A TCP plugin receiver: acknowledges every line with `ok` and counts deliveries per event id. */
export interface Receiver {
  server: Server;
  sockets: Set<Socket>;
  delivered: Map<string, number>;
  port: number;
  close(): Promise<void>;
}

export async function tcpReceiver(): Promise<Receiver> {
  const sockets = new Set<Socket>();
  const delivered = new Map<string, number>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const body = JSON.parse(line) as { event_id: string };
        delivered.set(body.event_id, (delivered.get(body.event_id) ?? 0) + 1);
        socket.write('ok\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    server,
    sockets,
    delivered,
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Polls until `check` holds (or fails after `timeoutMs`). */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
