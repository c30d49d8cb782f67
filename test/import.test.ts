/**
 * Bulk import (POST /v1/import, `dbx import`): a history exported from one server imports into
 * another with the same roots, states and versions; bad lines refuse their chunk and name the line;
 * re-running a file skips what is stored.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, runDbx, startServerInProcess, tempDataDir, type TestServer } from './helpers/server.js';

const NDJSON = { 'content-type': 'application/x-ndjson' };

let source: TestServer;
let target: TestServer;
before(async () => {
  source = await startServerInProcess();
  target = await startServerInProcess();
});
after(async () => {
  for (const s of [source, target]) {
    if (!s) continue;
    await s.stop();
    removeDir(s.dataDir);
  }
});

type Rec = Record<string, any>;

function ndjson(records: Rec[]): string {
  return records.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

function postImport(server: TestServer, body: string, query = ''): Promise<{ status: number; body: any }> {
  return server.request('POST', `/v1/import${query}`, body, NDJSON);
}

/** Every event of the tenant, in (type, id, version) order: the export format. */
async function exportEvents(server: TestServer, type: string): Promise<Rec[]> {
  const out: Rec[] = [];
  let cursor: string | undefined;
  for (;;) {
    const filter = encodeURIComponent(`aggregate_type = "${type}"`);
    const page = await server.request('GET', `/v1/events?take=1000&include_archived=true&filter=${filter}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    out.push(...page.body.items);
    if (!page.body.next_cursor || page.body.next_cursor === cursor) return out;
    cursor = page.body.next_cursor;
  }
}

async function must(server: TestServer, method: string, path: string, body?: unknown): Promise<any> {
  const res = await server.request(method, path, body);
  assert.ok(res.status < 300, `${method} ${path} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A fresh event line for a new aggregate (no hash: the server computes it). */
function line(type: string, id: string, version: number, eventId: string, payload: Rec = { n: version }): Rec {
  return {
    aggregate_type: type,
    aggregate_id: id,
    event_type: 'thing_changed',
    version,
    payload,
    extensions: {},
    metadata: { event_id: eventId, created_at: '2025-01-02T03:04:05.678Z', issued_by: { group: 'import', user: 'test' } },
  };
}

let nextEventId = 900_000_000_000_000_000n;
const eventId = (): string => (nextEventId++).toString();

test('import - round trip: an exported history imports into another server with equal roots, states and versions', { timeout: 90_000 }, async () => {
  const type = 'round_trip';
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) {
    const id = `agg-${i}`;
    ids.push(id);
    await must(source, 'POST', `/v1/aggregates/${type}/${id}`, { event_type: 'thing_created', payload: { i, tags: ['a'] }, metadata: { '@source': 'test' }, note: 'first' });
    await must(source, 'POST', `/v1/aggregates/${type}/${id}/events`, { event_type: 'thing_changed', payload: { i: i * 10, gone: null } });
    await must(source, 'POST', `/v1/aggregates/${type}/${id}/patch`, { event_type: 'thing_patched', patch: [{ op: 'add', path: '/tags/-', value: 'b' }] });
  }
  await must(source, 'POST', `/v1/aggregates/${type}/agg-1/archive`, { comment: 'done' });
  await must(source, 'POST', `/v1/aggregates/${type}/agg-2/archive`, {});
  await must(source, 'POST', `/v1/aggregates/${type}/agg-2/restore`, { comment: 'back' });
  // Past snapshot_threshold (100): the import takes the same auto snapshots.
  for (let k = 0; k < 3; k++) {
    const events = Array.from({ length: 50 }, (_, j) => ({ aggregate_type: type, aggregate_id: 'agg-0', event_type: 'thing_counted', payload: { count: k * 50 + j } }));
    await must(source, 'POST', '/v1/batch', { events });
  }

  const exported = await exportEvents(source, type);
  assert.equal(exported.length, 6 * 3 + 3 + 150);
  const res = await postImport(target, ndjson(exported));
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body, { lines: exported.length, imported: exported.length, skipped: 0, aggregates_created: 6 });

  for (const id of ids) {
    const a = await must(source, 'GET', `/v1/aggregates/${type}/${id}`);
    const b = await must(target, 'GET', `/v1/aggregates/${type}/${id}`);
    assert.deepEqual(b, a, `aggregate ${id} is the same on both servers`);
    const verify = await must(target, 'GET', `/v1/aggregates/${type}/${id}/verify`);
    assert.equal(verify.valid, true, JSON.stringify(verify));
  }
  assert.deepEqual(await exportEvents(target, type), exported, 'every event comes back byte for byte (ids and times kept)');
  const one = exported[10] as Rec;
  assert.deepEqual(await must(target, 'GET', `/v1/events/${one.metadata.event_id}`), one);
  const archived = await must(target, 'GET', `/v1/aggregates/${type}?archived_only=true`);
  assert.deepEqual(archived.items.map((a: Rec) => a.aggregate_id), ['agg-1']);
  assert.deepEqual(
    (await must(target, 'GET', `/v1/aggregates/${type}/agg-0/snapshots`)).items.map((s: Rec) => s.version),
    (await must(source, 'GET', `/v1/aggregates/${type}/agg-0/snapshots`)).items.map((s: Rec) => s.version),
  );
  const old = await must(target, 'GET', `/v1/aggregates/${type}/agg-0?version=120`);
  assert.deepEqual(old, await must(source, 'GET', `/v1/aggregates/${type}/agg-0?version=120`));

  // Resumable: the same file again writes nothing and skips every line.
  const again = await postImport(target, ndjson(exported));
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.deepEqual(again.body, { lines: exported.length, imported: 0, skipped: exported.length, aggregates_created: 0 });
});

test('import - a tampered line is refused with 400 naming the line, and nothing of its chunk is written', { timeout: 30_000 }, async () => {
  const records = [line('tampered', 't-1', 1, eventId()), line('tampered', 't-2', 1, eventId()), line('tampered', 't-3', 1, eventId())];
  const first = await postImport(source, ndjson(records.slice(0, 1)));
  assert.equal(first.status, 200);
  const signed = (await exportEvents(source, 'tampered'))[0] as Rec;
  // A record exported with its hash, then edited: the hash no longer matches the content.
  const bad = { ...signed, aggregate_id: 't-9', payload: { n: 666 } };
  const body = ndjson([records[1] as Rec, records[2] as Rec, bad]);
  const res = await postImport(target, body);
  assert.equal(res.status, 400, JSON.stringify(res.body));
  assert.equal(res.body.error.code, 'invalid_input');
  assert.match(res.body.error.message, /^line 3: /);
  assert.equal(res.body.error.details.line, 3);
  assert.equal(res.body.error.details.imported, 0);
  for (const id of ['t-2', 't-3', 't-9']) assert.equal((await target.request('GET', `/v1/aggregates/tampered/${id}`)).status, 404, `${id} not written`);

  // A wrong merkle_root is refused the same way; --no-verify (verify=false) recomputes instead.
  const wrongRoot = { ...signed, merkle_root: 'f'.repeat(64) };
  const rootRes = await postImport(target, ndjson([wrongRoot]));
  assert.equal(rootRes.status, 400);
  assert.match(rootRes.body.error.message, /line 1: .*merkle_root/);
  const unverified = await postImport(target, ndjson([wrongRoot]), '?verify=false');
  assert.equal(unverified.status, 200, JSON.stringify(unverified.body));
  assert.equal((await must(target, 'GET', '/v1/aggregates/tampered/t-1')).merkle_root, signed.merkle_root);

  // A line that is not JSON, or not an event record, names its line too.
  const notJson = await postImport(target, `${JSON.stringify(records[1])}\n{oops\n`);
  assert.equal(notJson.status, 400);
  assert.match(notJson.body.error.message, /^line 2: not valid JSON/);
  const notRecord = await postImport(target, `\n${JSON.stringify({ ...records[1], surprise: 1 })}\n`);
  assert.equal(notRecord.status, 400);
  assert.equal(notRecord.body.error.code, 'validation_failed');
  assert.equal(notRecord.body.error.details.line, 2);
});

test('import - a version that does not continue its aggregate is refused with 409 version_conflict', { timeout: 30_000 }, async () => {
  const gap = await postImport(target, ndjson([line('gaps', 'g-1', 1, eventId()), line('gaps', 'g-1', 3, eventId())]));
  assert.equal(gap.status, 409, JSON.stringify(gap.body));
  assert.equal(gap.body.error.code, 'version_conflict');
  assert.equal(gap.body.error.details.line, 2);
  assert.equal(gap.body.error.details.current_version, 1);
  assert.equal((await target.request('GET', '/v1/aggregates/gaps/g-1')).status, 404);
  const late = await postImport(target, ndjson([line('gaps', 'g-2', 2, eventId())]));
  assert.equal(late.status, 409);
  assert.equal(late.body.error.details.current_version, 0);
  // Extending an existing aggregate works when it continues the stored head.
  await must(target, 'POST', '/v1/aggregates/gaps/g-3', { event_type: 'thing_created', payload: { a: 1 } });
  const extend = await postImport(target, ndjson([line('gaps', 'g-3', 2, eventId(), { b: 2 })]));
  assert.equal(extend.status, 200, JSON.stringify(extend.body));
  const agg = await must(target, 'GET', '/v1/aggregates/gaps/g-3');
  assert.deepEqual([agg.version, agg.state], [2, { a: 1, b: 2 }]);
  assert.equal((await must(target, 'GET', '/v1/aggregates/gaps/g-3/verify')).valid, true);
});

test('import - a failed import counts every line of the body in `lines`, wherever the failure was found', { timeout: 30_000 }, async () => {
  // Found at the edge (not JSON) and found by the worker (a version gap): the same meaning.
  const atEdge = await postImport(target, ndjson([line('counted', 'k-1', 1, eventId())]) + '{not json\n' + ndjson([line('counted', 'k-2', 1, eventId()), line('counted', 'k-3', 1, eventId())]));
  assert.equal(atEdge.status, 400, JSON.stringify(atEdge.body));
  assert.deepEqual([atEdge.body.error.details.line, atEdge.body.error.details.lines], [2, 4]);
  const inWorker = await postImport(target, ndjson([line('counted', 'k-4', 1, eventId()), line('counted', 'k-4', 3, eventId()), line('counted', 'k-5', 1, eventId()), line('counted', 'k-6', 1, eventId())]));
  assert.equal(inWorker.status, 409, JSON.stringify(inWorker.body));
  assert.deepEqual([inWorker.body.error.details.line, inWorker.body.error.details.lines], [2, 4]);
});

test('import - a duplicate event_id is refused with 409 already_exists, in the file or in the store', { timeout: 30_000 }, async () => {
  const id = eventId();
  const inFile = await postImport(target, ndjson([line('dups', 'd-1', 1, id), line('dups', 'd-2', 1, id)]));
  assert.equal(inFile.status, 409, JSON.stringify(inFile.body));
  assert.equal(inFile.body.error.code, 'already_exists');
  assert.equal(inFile.body.error.details.line, 2);
  assert.equal((await target.request('GET', '/v1/aggregates/dups/d-1')).status, 404);
  const stored = await must(target, 'POST', '/v1/aggregates/dups/d-0', { event_type: 'thing_created', payload: {} });
  const events = await must(target, 'GET', `/v1/aggregates/dups/d-0/events`);
  assert.equal(stored.version, 1);
  const inStore = await postImport(target, ndjson([line('dups', 'd-3', 1, events.items[0].metadata.event_id)]));
  assert.equal(inStore.status, 409);
  assert.match(inStore.body.error.message, /event_id/);
});

test('import - a version stored with a different hash is refused; the same hash is skipped', { timeout: 30_000 }, async () => {
  const a = line('resume', 'r-1', 1, eventId());
  const b = line('resume', 'r-1', 2, eventId());
  assert.equal((await postImport(target, ndjson([a]))).status, 200);
  const resumed = await postImport(target, ndjson([a, b]));
  assert.deepEqual(resumed.body, { lines: 2, imported: 1, skipped: 1, aggregates_created: 0 });
  const changed = await postImport(target, ndjson([{ ...a, payload: { n: 'other' } }]));
  assert.equal(changed.status, 409, JSON.stringify(changed.body));
  assert.equal(changed.body.error.code, 'already_exists');
  assert.match(changed.body.error.message, /line 1: .*version 1 is already stored with a different hash/);
});

test('import - chunks answered before a failing line stay committed and the answer counts them', { timeout: 30_000 }, async () => {
  const small = await startServerInProcess({ configToml: '[import]\nchunk_events = 2\nchunks_in_flight = 1\n' });
  try {
    const records = [1, 2, 3, 4].map((i) => line('chunked', `c-${i}`, 1, eventId()));
    records.push(line('chunked', 'c-5', 2, eventId()));
    const res = await postImport(small, ndjson(records));
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.error.details.line, 5);
    assert.equal(res.body.error.details.imported, 4);
    for (const i of [1, 2, 3, 4]) assert.equal((await small.request('GET', `/v1/aggregates/chunked/c-${i}`)).status, 200);
  } finally {
    await small.stop();
    removeDir(small.dataDir);
  }
});

test('import - the body must be NDJSON', { timeout: 10_000 }, async () => {
  const res = await target.request('POST', '/v1/import', { events: [] });
  assert.equal(res.status, 400);
  assert.match(res.body.error.message, /application\/x-ndjson/);
  const openapi = await must(target, 'GET', '/openapi.json');
  assert.ok(openapi.paths['/v1/import'].post.requestBody.content['application/x-ndjson'], 'documented in /openapi.json');
});

test('import - dbx import loads a file in direct mode and resumes on a second run', { timeout: 60_000 }, async () => {
  const dataDir = tempDataDir();
  try {
    const exported = await exportEvents(source, 'round_trip');
    const file = join(dataDir, '..', `import-${process.pid}.jsonl`);
    writeFileSync(file, ndjson(exported));
    const first = await runDbx(['import', file, '--data-dir', dataDir, '--request-lines', '50', '--json'], { timeoutMs: 50_000 });
    assert.equal(first.code, 0, first.stderr);
    const summary = JSON.parse(first.stdout);
    assert.equal(summary.imported, exported.length);
    assert.equal(summary.lines, exported.length);
    assert.equal(summary.aggregates_created, 6);
    const second = await runDbx(['import', file, '--data-dir', dataDir], { timeoutMs: 50_000 });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, new RegExp(`imported=0 skipped=${exported.length} `));
    const get = await runDbx(['aggregate', 'get', 'round_trip', 'agg-0', '--data-dir', dataDir], { timeoutMs: 30_000 });
    assert.equal(get.code, 0, get.stderr);
    assert.equal(JSON.parse(get.stdout).merkle_root, (await must(source, 'GET', '/v1/aggregates/round_trip/agg-0')).merkle_root);
    // A bad line names its line in the file (not in the request) and what stayed committed.
    writeFileSync(file, ndjson([...exported.slice(0, 3), { ...line('round_trip', 'agg-new', 5, eventId()) }]));
    const bad = await runDbx(['import', file, '--data-dir', dataDir, '--request-lines', '2'], { timeoutMs: 50_000 });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /error: version_conflict: line 4: .*committed by this run; fix line 4, then run the same command again/);
    removeDir(file);
  } finally {
    removeDir(dataDir);
  }
});
