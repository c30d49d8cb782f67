/**
 * Findings of a fuzz run and a durability review (2026-12-03, third session), each pinned:
 * a read-model plugin pointed under /proc answers (Node 20's recursive mkdir spins there for
 * good, which wedged the delivery thread and every later plugin check); a schema nested deeper
 * than the validator can walk is a 400, not a 500; directories are created durably.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mkdirDurably } from '../src/core/durable-file.js';
import { COLUMN_NESTING_MAX } from '../src/core/schema/model.js';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

let server: TestServer;
const dirs: string[] = [];

before(async () => {
  server = await startServerInProcess();
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
  dirs.forEach(removeDir);
});

test('review-findings-2 - a csv/json plugin whose dir is under /proc answers 503, and later plugin checks still answer', { timeout: 60_000 }, async () => {
  for (const kind of ['json', 'csv']) {
    const started = performance.now();
    const res = await server.request('PUT', `/v1/plugins/proc-${kind}`, { options: { kind, dir: '/proc/eventdbx-nope' } });
    assertError(res, 503, 'unavailable');
    assert.ok(performance.now() - started < 10_000, 'the check answered promptly');
  }
  const good = mkdtempSync(join(tmpdir(), 'dbx-rm-'));
  dirs.push(good);
  const ok = await server.request('PUT', '/v1/plugins/fine', { options: { kind: 'json', dir: join(good, 'a', 'b') } });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
});

const nested = (levels: number): unknown => {
  let column: unknown = 'text';
  for (let i = 0; i < levels; i++) column = { type: 'object', properties: { a: column } };
  return column;
};

test('review-findings-2 - schema columns nested past what can be checked are a 400 naming the limit, never a 500', { timeout: 30_000 }, async () => {
  const tooDeep = await server.request('PUT', '/v1/schemas/deep', { column_types: { a: nested(600) } });
  assertError(tooDeep, 400, 'validation_failed');
  const overLimit = await server.request('PUT', '/v1/schemas/deep', { column_types: { a: nested(COLUMN_NESTING_MAX + 1) } });
  assertError(overLimit, 400, 'validation_failed');
  assert.match(JSON.stringify(overLimit.body.error.details), new RegExp(`at most ${COLUMN_NESTING_MAX} levels`));
  assert.equal((await server.request('GET', '/v1/schemas/deep')).status, 404, 'nothing was stored');
  const atLimit = await server.request('PUT', '/v1/schemas/deep', { column_types: { a: nested(COLUMN_NESTING_MAX - 1) } });
  assert.equal(atLimit.status, 200, JSON.stringify(atLimit.body).slice(0, 300));
});

test('review-findings-2 - mkdirDurably creates every missing level owner-only, is idempotent, and refuses what cannot exist', () => {
  const root = mkdtempSync(join(tmpdir(), 'dbx-mk-'));
  dirs.push(root);
  const deep = join(root, 'x', 'y', 'z');
  mkdirDurably(deep);
  mkdirDurably(deep);
  for (const d of [join(root, 'x'), join(root, 'x', 'y'), deep]) assert.equal(statSync(d).mode & 0o777, 0o700, d);
  assert.throws(() => mkdirDurably('/proc/eventdbx-nope/a'), /ENOENT/);
});

test('review-findings-2 - a schema regex with nested quantifiers cannot hold the shard worker: the hostile value is refused at once, writes go on', { timeout: 30_000 }, async () => {
  const put = await server.request('PUT', '/v1/schemas/redos', { column_types: { a: { type: 'text', regex: '^(a+)+$' } }, events: { e_a: {} } });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const started = performance.now();
  const hostile = await server.request('POST', '/v1/aggregates/redos/r-1/events', { event_type: 'e_a', payload: { a: `${'a'.repeat(40)}!` } });
  assertError(hostile, 400, 'validation_failed');
  assert.ok(performance.now() - started < 5_000, 'answered without backtracking');
  const fine = await server.request('POST', '/v1/aggregates/redos/r-1/events', { event_type: 'e_a', payload: { a: 'aaaa' } });
  assert.equal(fine.status, 201, JSON.stringify(fine.body));
  const other = await server.request('POST', '/v1/aggregates/person/p-1/events', { event_type: 'created', payload: { n: 1 } });
  assert.equal(other.status, 201, JSON.stringify(other.body));
});

test('review-findings-2 - the delivery watchdog counts from when a thread starts a task: deliveries queued behind slow ones all succeed', { timeout: 60_000 }, async () => {
  const { DeliveryPool } = await import('../src/plugins/pool.js');
  const http = await import('node:http');
  const slow = http.createServer((req, res) => {
    req.resume();
    setTimeout(() => res.end('ok'), 800);
  });
  await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
  const port = (slow.address() as { port: number }).port;
  const pool = new DeliveryPool({ threads: 1, maxQueue: 100, timeoutMs: 1000, dataDir: server.dataDir, concurrentPerThread: 1 });
  const definition = { name: 'slow', enabled: true, tenants: [], options: { kind: 'http', endpoint: `http://127.0.0.1:${port}/`, headers: {}, https: false, timeout_ms: 1000 } } as any;
  try {
    // One at a time, 0.8 s each: the fifth waits 3.2 s in the queue, past 1 s + the grace.
    const outcomes = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        pool.deliver(definition, { job_id: `j${i}`, plugin: 'slow', attempt: 1, body: { event_id: String(i + 1), tenant: 'default', aggregate_type: 't', aggregate_id: 'a', version: 1, event_type: 'e' } }),
      ),
    );
    assert.deepEqual(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'ok')), Array(8).fill('ok'));
  } finally {
    await pool.close();
    slow.close();
  }
});
