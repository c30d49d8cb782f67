/**
 * Issue 12 item 4: noisy neighbours. A per-tenant write rate (token bucket: events/s and burst,
 * `dbx tenant limit`) answers 429 `rate_limited` with Retry-After beyond it, writes nothing for a
 * refused request, never touches other tenants, and applies and clears at once. The latency
 * comparison (a flooding tenant vs a quiet one's p99) is `npm run bench -- --tenants-noisy`: on a
 * shared 2-core machine a p99 assertion here would be flaky, so the test asserts what decides it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, runDbx, startServerInProcess, type TestServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

let server: TestServer;

before(async () => {
  server = await startServerInProcess({ configToml: '[tenants]\nmulti_tenant = true\nshard_count = 4\n' });
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
});

const apply = (tenant: string, id: string, n = 1) =>
  server.request('POST', `/v1/aggregates/order/${id}/events`, { event_type: 'touched', payload: { n } }, { 'x-tenant-id': tenant });
const version = async (tenant: string, id: string): Promise<number> => {
  const res = await server.request('GET', `/v1/aggregates/order/${id}`, undefined, { 'x-tenant-id': tenant });
  return res.status === 404 ? 0 : (res.body.version as number);
};

/** `count` writes of `tenant`, `concurrency` at a time; answers the statuses and the elapsed time. */
async function flood(tenant: string, id: string, count: number, concurrency: number): Promise<{ statuses: number[]; retryAfter: string[]; secs: number }> {
  const statuses: number[] = [];
  const retryAfter: string[] = [];
  let next = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        const res = await apply(tenant, id);
        statuses.push(res.status);
        if (res.status === 429) {
          assertError(res, 429, 'rate_limited');
          retryAfter.push(res.headers.get('retry-after') ?? '');
        }
      }
    }),
  );
  return { statuses, retryAfter, secs: (Date.now() - started) / 1000 };
}

test('limits - a flooding tenant gets 429 with Retry-After within its bucket; a quiet one gets none', async () => {
  const res = await runDbx(['tenant', 'limit', 'noisy', '--writes-per-sec', '5', '--burst', '5', '--data-dir', server.dataDir]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout.trim(), "Limited tenant 'noisy' to 5 events/s (burst 5).");
  const [noisy, quiet] = await Promise.all([flood('noisy', 'n-1', 60, 8), flood('quiet', 'q-1', 30, 4)]);
  const accepted = noisy.statuses.filter((s) => s === 201).length;
  const refused = noisy.statuses.filter((s) => s === 429).length;
  assert.equal(accepted + refused, 60, `only 201 or 429: ${noisy.statuses.join(',')}`);
  // The bucket bound: at most the burst plus what refilled while the flood ran.
  assert.ok(accepted <= 5 + Math.ceil(5 * noisy.secs) + 1, `${accepted} accepted in ${noisy.secs} s at 5/s burst 5`);
  assert.ok(refused > 0);
  for (const value of noisy.retryAfter) assert.match(value, /^[1-9]\d*$/, 'Retry-After is whole seconds, at least 1');
  // Refused requests wrote nothing: the aggregate holds exactly the accepted events.
  assert.equal(await version('noisy', 'n-1'), accepted);
  assert.deepEqual([...new Set(quiet.statuses)], [201], 'the quiet tenant is never limited');
  assert.equal(await version('quiet', 'q-1'), 30);
});

test('limits - a batch costs its events; a change and a clear apply at once', async () => {
  // A fresh bucket of 10 (one second's worth, the default burst), through the API.
  let res = await server.request('PUT', '/v1/tenants/batchy/limit', { writes_per_sec: 10 });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.burst, 10);
  const batch = (n: number) =>
    server.request('POST', '/v1/batch', { events: Array.from({ length: n }, () => ({ aggregate_type: 'order', aggregate_id: 'b-1', event_type: 'touched', payload: {} })) }, { 'x-tenant-id': 'batchy' });
  // Bigger than the burst: it passes once on a full bucket (then the tenant owes the refill) …
  assert.equal((await batch(25)).status, 201);
  // … and the next is refused until the debt is repaid.
  const refused = await batch(1);
  assertError(refused, 429, 'rate_limited');
  assert.ok(Number(refused.headers.get('retry-after')) >= 1);
  assert.equal(refused.body.error.details.tenant, 'batchy');
  assert.equal(await version('batchy', 'b-1'), 25);
  // Raising the limit takes effect on the next request (the bucket keeps its debt, capped at the new burst).
  res = await server.request('PUT', '/v1/tenants/batchy/limit', { writes_per_sec: 100_000, burst: 100_000 });
  assert.equal(res.status, 200);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await batch(5)).status, 201);
  const cleared = await runDbx(['tenant', 'limit', 'noisy', '--clear', '--data-dir', server.dataDir]);
  assert.equal(cleared.stdout.trim(), "Cleared write limit for tenant 'noisy'.");
  const after = await flood('noisy', 'n-2', 30, 8);
  assert.deepEqual([...new Set(after.statuses)], [201]);
  assertError(await server.request('PUT', '/v1/tenants/noisy/limit', { writes_per_sec: 0 }), 400, 'validation_failed');
  assertError(await server.request('PUT', '/v1/tenants/noisy/limit', { writes_per_sec: 5, extra: 1 }), 400, 'validation_failed');
});

test('limits - a bulk import is paced to its tenant\'s write rate (not refused mid-body); an empty bucket refuses it before the body; other tenants import unpaced', { timeout: 60_000 }, async () => {
  const paced = await startServerInProcess({ configToml: '[tenants]\nmulti_tenant = true\n[import]\nchunk_events = 50\nchunks_in_flight = 1\n' });
  try {
    // A burst below the chunk: each chunk of 50 passes on a bucket of 10 and leaves a debt of 40.
    assert.equal((await paced.request('PUT', '/v1/tenants/noisy/limit', { writes_per_sec: 100, burst: 10 })).status, 200);
    let eventId = 910_000_000_000_000_000n;
    const lines = (prefix: string, n: number) =>
      Array.from({ length: n }, (_, k) =>
        JSON.stringify({
          aggregate_type: 'order',
          aggregate_id: `${prefix}-${k}`,
          event_type: 'imported',
          version: 1,
          payload: { k },
          extensions: {},
          metadata: { event_id: (eventId++).toString(), created_at: '2025-01-02T03:04:05.678Z', issued_by: null },
        }),
      ).join('\n') + '\n';
    const ndjson = (tenant: string) => ({ 'content-type': 'application/x-ndjson', 'x-tenant-id': tenant });
    // 400 events at 100/s: the first chunk passes at once, each of the 7 others waits ~0.5 s.
    let started = Date.now();
    const res = await paced.request('POST', '/v1/import', lines('n', 400), ndjson('noisy'));
    const secs = (Date.now() - started) / 1000;
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.imported, 400);
    assert.ok(secs >= 2.5, `400 events at 100/s (burst 10, chunks of 50) imported in ${secs} s`);
    // The import drew on the bucket (its last chunk left a debt of 40 events, 0.4 s): a write right
    // after is refused, and so is an import's start.
    assertError(await paced.request('POST', '/v1/aggregates/order/after/events', { event_type: 'touched', payload: {} }, { 'x-tenant-id': 'noisy' }), 429, 'rate_limited');
    const refused = await paced.request('POST', '/v1/import', lines('m', 10), ndjson('noisy'));
    assertError(refused, 429, 'rate_limited');
    assert.equal((await paced.request('GET', '/v1/aggregates/order/m-0', undefined, { 'x-tenant-id': 'noisy' })).status, 404, 'nothing of it written');
    // A tenant without a limit imports at full speed.
    started = Date.now();
    const quiet = await paced.request('POST', '/v1/import', lines('q', 400), ndjson('quiet'));
    assert.equal(quiet.status, 200, JSON.stringify(quiet.body));
    assert.ok((Date.now() - started) / 1000 < secs, 'the unlimited tenant is not paced');
  } finally {
    await paced.stop();
    removeDir(paced.dataDir);
  }
});
