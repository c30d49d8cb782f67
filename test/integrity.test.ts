/**
 * Integrity (DESIGN §3, §4): the event record's shape, its hash and the aggregate's Merkle root are
 * recomputed here with node:crypto and a canonicalizer written for this test (not the server's), so
 * a bug shared by the server's canonical JSON and Merkle code cannot hide itself. Then a stored event
 * is corrupted on disk and verify must name it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { verifyConsistency, verifyInclusion } from '../src/core/index.js';
import { removeDir, startServerInProcess, tempDataDir, type TestServer } from './helpers/server.js';
import { openShards, range, shardHolding } from './helpers/assertions.js';

// ---- an independent RFC 8785 canonicalizer and RFC 6962 tree -------------------------------------

/** RFC 8785 §3.2.3: property names sorted by their UTF-16 code units, compared one by one. */
function utf16Compare(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function jcs(value: unknown): string {
  if (value === null || typeof value === 'boolean') return String(value);
  // §3.2.2.3: ECMAScript Number serialisation, which is String(n) for finite numbers (-0 → "0").
  if (typeof value === 'number') return Object.is(value, -0) ? '0' : String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return '[' + value.map(jcs).join(',') + ']';
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => utf16Compare(a, b));
  return '{' + entries.map(([k, v]) => JSON.stringify(k) + ':' + jcs(v)).join(',') + '}';
}

const sha256 = (...parts: Buffer[]): Buffer => createHash('sha256').update(Buffer.concat(parts)).digest();
const leaf = (canonical: string): string => sha256(Buffer.from([0]), Buffer.from(canonical, 'utf8')).toString('hex');
const node = (l: string, r: string): string => sha256(Buffer.from([1]), Buffer.from(l, 'hex'), Buffer.from(r, 'hex')).toString('hex');

/** RFC 6962 §2.1 MTH: split at the largest power of two strictly below n. */
function mth(leaves: string[]): string {
  if (leaves.length === 0) return createHash('sha256').digest('hex');
  if (leaves.length === 1) return leaves[0] as string;
  let k = 1;
  while (k << 1 < leaves.length) k <<= 1;
  return node(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

// ---------------------------------------------------------------------------------------------------

let dataDir: string;
let server: TestServer;
before(async () => {
  dataDir = tempDataDir();
  server = await startServerInProcess({ dataDir });
});
after(async () => {
  await server.stop();
  removeDir(dataDir);
});

// Payloads that exercise canonical form: key order, unicode (incl. astral plane), numbers, nesting.
const payloads: Record<string, unknown>[] = [
  { name: 'Ada', b: 1, a: 2 },
  { 'é': 'accent', e: 'plain', '\u{1F600}': 'astral', '\uFFFD': 'bmp-high' },
  { n: 1e15, m: 0.1, k: -5, big: 123456789012345, small: 1e-7 },
  { nested: { z: [3, { y: true, x: null }], a: 'q"uote\\ and \n newline' } },
  { name: null },
  { list: [], obj: {} },
  { last: 'seven' },
];

async function seed(id: string): Promise<any[]> {
  const events: any[] = [];
  for (const [i, payload] of payloads.entries()) {
    const extra = i === 1 ? { metadata: { '@trace': { span: 'abc' } }, note: 'with a note' } : {};
    const res = await server.request('POST', `/v1/aggregates/ledger/${id}/events`, { event_type: 'entry_made', payload, ...extra });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    events.push(res.body);
  }
  return events;
}

test('integrity - event records have the DESIGN §3 shape and strictly increasing Snowflake ids', { timeout: 20_000 }, async () => {
  const events = await seed('i-shape');
  let previous = 0n;
  for (const [i, e] of events.entries()) {
    assert.deepEqual(Object.keys(e).sort(), ['aggregate_id', 'aggregate_type', 'event_type', 'extensions', 'hash', 'merkle_root', 'metadata', 'payload', 'version']);
    assert.equal(e.version, i + 1);
    assert.deepEqual(e.payload, payloads[i]);
    assert.match(e.metadata.event_id, /^[1-9]\d*$/);
    const id = BigInt(e.metadata.event_id);
    assert.ok(id > previous, 'event ids strictly increase');
    previous = id;
    assert.ok(!Number.isNaN(Date.parse(e.metadata.created_at)));
    assert.deepEqual(e.metadata.issued_by, { group: 'cli', user: 'root' });
    assert.match(e.hash, /^[0-9a-f]{64}$/);
  }
  assert.deepEqual(events[1].extensions, { '@trace': { span: 'abc' } });
  assert.equal(events[1].metadata.note, 'with a note');
  assert.equal('note' in events[0].metadata, false);
  // The stored copy is the one returned.
  const listed = await server.request('GET', '/v1/aggregates/ledger/i-shape/events');
  assert.deepEqual(listed.body.items, events);
});

test('integrity - hash is SHA-256(0x00 || JCS(record minus hash, merkle_root)); merkle_root is the RFC 6962 root', { timeout: 20_000 }, async () => {
  const events = await seed('i-hash');
  const leaves: string[] = [];
  for (const e of events) {
    const { hash, merkle_root, ...body } = e;
    assert.equal(hash, leaf(jcs(body)), `hash of version ${e.version}`);
    leaves.push(hash);
    assert.equal(merkle_root, mth(leaves), `root after version ${e.version}`);
  }
  const head = await server.request('GET', '/v1/aggregates/ledger/i-hash');
  assert.equal(head.body.merkle_root, mth(leaves));
  const verify = await server.request('GET', '/v1/aggregates/ledger/i-hash/verify');
  assert.equal(verify.status, 200);
  assert.deepEqual(verify.body, { aggregate_type: 'ledger', aggregate_id: 'i-hash', version: 7, merkle_root: mth(leaves), valid: true });
});

test('integrity - inclusion and consistency proofs check out with the standalone verifiers', { timeout: 20_000 }, async () => {
  const events = await seed('i-proof');
  const leaves = events.map((e) => e.hash as string);
  for (const size of range(7)) {
    for (const version of range(size)) {
      const res = await server.request('GET', `/v1/aggregates/ledger/i-proof/proof?version=${version}&size=${size}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.leaf_hash, leaves[version - 1]);
      assert.equal(res.body.root, mth(leaves.slice(0, size)));
      assert.ok(verifyInclusion(res.body.leaf_hash, version - 1, size, res.body.proof, res.body.root), `inclusion v${version} in ${size}`);
      if (res.body.proof.length > 0) {
        const forged = [...res.body.proof];
        forged[0] = 'ff'.repeat(32);
        assert.equal(verifyInclusion(res.body.leaf_hash, version - 1, size, forged, res.body.root), false);
      }
    }
    for (const from of range(size)) {
      const res = await server.request('GET', `/v1/aggregates/ledger/i-proof/proof?from_size=${from}&to_size=${size}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.from_root, mth(leaves.slice(0, from)));
      assert.equal(res.body.to_root, mth(leaves.slice(0, size)));
      assert.ok(verifyConsistency(from, size, res.body.from_root, res.body.to_root, res.body.proof), `consistency ${from} → ${size}`);
      if (from < size) assert.equal(verifyConsistency(from, size, 'ab'.repeat(32), res.body.to_root, res.body.proof), false);
    }
  }
  // Without size the proof is against the current tree.
  const current = await server.request('GET', '/v1/aggregates/ledger/i-proof/proof?version=3');
  assert.equal(current.body.tree_size, 7);
  assert.equal(current.body.root, mth(leaves));
});

test('integrity - a payload altered on disk makes verify report first_invalid_version 3', { timeout: 30_000 }, async () => {
  await seed('i-corrupt');
  assert.equal((await server.request('GET', '/v1/aggregates/ledger/i-corrupt/verify')).body.valid, true);
  await server.stop();

  const stores = openShards(dataDir);
  assert.equal(stores.length, 4);
  const store = shardHolding(stores, 'default', 'ledger', 'i-corrupt');
  const key: [string, string, string, number] = ['default', 'ledger', 'i-corrupt', 3];
  const record = JSON.parse(store.getEventJson(key) as string);
  record.payload.n = 2e15;
  store.env.transactionSync(() => store.events.put(key, JSON.stringify(record)));
  await store.env.flushed;

  server = await startServerInProcess({ dataDir });
  const verify = await server.request('GET', '/v1/aggregates/ledger/i-corrupt/verify');
  assert.equal(verify.status, 200);
  assert.equal(verify.body.valid, false);
  assert.equal(verify.body.first_invalid_version, 3);
  // The other aggregates are untouched.
  assert.equal((await server.request('GET', '/v1/aggregates/ledger/i-hash/verify')).body.valid, true);
});
