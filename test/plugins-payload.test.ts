/**
 * Plugin delivery bodies and proofs (issue 11, DESIGN §4 and §8, reference §10.2): the exact body of
 * every payload mode built from a real event, state and schema read over HTTP; delivery proofs equal
 * to the proof route's and to the event's merkle_root; verifyDelivery (the client's checker) and the
 * independent Python checker accept real deliveries and reject tampered ones.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readConfig } from '../src/core/index.js';
import { readLayout } from '../src/coordinator/layout.js';
import { Reader } from '../src/coordinator/reader.js';
import { buildDeliveryBody } from '../src/plugins/payload.js';
import { deliveryProof, inclusionProofFor } from '../src/plugins/proof.js';
import type { DeliveryBody, PayloadMode } from '../src/plugins/types.js';
import { verifyDelivery } from '../src/client/index.js';
import { openShards, range } from './helpers/assertions.js';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The checker stays in the source tree (tsc copies no .py): dist/test → test/helpers. */
const CHECKER = resolve(here, '../../test/helpers/rfc6962_check.py');
/** The interpreter itself, found once: a version-manager shim (pyenv) costs ~1 s a run. */
const PYTHON = (() => {
  const run = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8', timeout: 10_000 });
  return run.status === 0 && run.stdout.trim() ? run.stdout.trim() : undefined;
})();
const HAVE_PYTHON = PYTHON !== undefined;

let server: TestServer;
let stopped = false;
let schemaVersion: number;
let schema: unknown;
const events: any[] = [];
const states: Record<string, unknown>[] = [];

const ORDER_SCHEMA = {
  column_types: { sku: 'text', qty: 'integer' },
  events: { placed: { fields: ['sku', 'qty'] }, qty_changed: { fields: ['qty'] } },
};

before(async () => {
  server = await startServerInProcess();
  const put = await server.request('PUT', '/v1/schemas/order', ORDER_SCHEMA);
  assert.ok(put.status === 200 || put.status === 201, JSON.stringify(put.body));
  schemaVersion = put.body.version;
  const created = await server.request('POST', '/v1/aggregates/order/o-1', {
    event_type: 'placed',
    payload: { sku: 'A-1', qty: 1 },
    metadata: { '@trace': { correlation_id: 'rest-1234' }, '@policy': { source: 'rest-api' } },
    note: 'first order',
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  for (const v of range(6, 2)) {
    const res = await server.request('POST', '/v1/aggregates/order/o-1/events', {
      event_type: 'qty_changed',
      payload: { qty: v },
      metadata: { '@trace': { correlation_id: `c-${v}` } },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
  const listed = await server.request('GET', '/v1/aggregates/order/o-1/events?take=10');
  assert.equal(listed.status, 200);
  events.push(...listed.body.items);
  assert.equal(events.length, 7);
  for (const v of range(7)) {
    const view = await server.request('GET', `/v1/aggregates/order/o-1?version=${v}`);
    assert.equal(view.status, 200);
    states.push(view.body.state);
  }
  const got = await server.request('GET', '/v1/schemas/order');
  assert.equal(got.status, 200);
  schema = got.body.schema;
});
after(async () => {
  if (!stopped) await server.stop();
  removeDir(server.dataDir);
});

const event = (v: number) => events[v - 1];
const body = (v: number, mode: PayloadMode, withProof = false): DeliveryBody =>
  buildDeliveryBody({
    tenant: 'default',
    event: event(v),
    state: states[v - 1] as any,
    schema,
    mode,
    ...(withProof ? { proof: inclusionProofFor(events.map((e) => e.hash), v, v) } : {}),
  });

/** The ids every body carries, for event v. */
const ids = (v: number) => ({
  event_id: event(v).metadata.event_id,
  tenant: 'default',
  aggregate_type: 'order',
  aggregate_id: 'o-1',
  version: v,
  event_type: v === 1 ? 'placed' : 'qty_changed',
});

/** Event 3 exactly as the API returned it (checked field by field, not copied). */
const event3 = () => ({
  aggregate_type: 'order',
  aggregate_id: 'o-1',
  event_type: 'qty_changed',
  version: 3,
  payload: { qty: 3 },
  extensions: { '@trace': { correlation_id: 'c-3' } },
  metadata: { event_id: event(3).metadata.event_id, created_at: event(3).metadata.created_at, issued_by: event(3).metadata.issued_by, schema_version: schemaVersion },
  hash: event(3).hash,
  merkle_root: event(3).merkle_root,
});

function pyCheck(delivery: unknown): { valid: boolean; reason?: string } {
  const run = spawnSync(PYTHON as string, [CHECKER], { input: JSON.stringify(delivery), encoding: 'utf8', timeout: 10_000 });
  assert.ok(run.status === 0 || run.status === 1, `checker failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

test('payload - the schema and the events are real: schema-checked, with `@` metadata as extensions', () => {
  assert.equal(typeof schemaVersion, 'number');
  assert.equal((schema as { aggregate: string }).aggregate, 'order');
  assert.deepEqual(event(1).extensions, { '@trace': { correlation_id: 'rest-1234' }, '@policy': { source: 'rest-api' } });
  assert.equal(event(1).metadata.note, 'first order');
  assert.ok(event(3).metadata.issued_by && typeof event(3).metadata.issued_by.user === 'string');
  assert.deepEqual(states[2], { sku: 'A-1', qty: 3 });
});

test('payload - all: ids, event, state after the event, schema', () => {
  assert.deepEqual(body(3, 'all'), { ...ids(3), event: event3(), state: { sku: 'A-1', qty: 3 }, schema });
});

test('payload - all without a schema: schema is null', () => {
  const b = buildDeliveryBody({ tenant: 'default', event: event(3), state: { sku: 'A-1', qty: 3 }, schema: null, mode: 'all' });
  assert.deepEqual(b, { ...ids(3), event: event3(), state: { sku: 'A-1', qty: 3 }, schema: null });
});

test('payload - event-only: ids and event', () => {
  assert.deepEqual(body(3, 'event-only'), { ...ids(3), event: event3() });
});

test('payload - state-only: ids and state', () => {
  assert.deepEqual(body(3, 'state-only'), { ...ids(3), state: { sku: 'A-1', qty: 3 } });
});

test('payload - schema-only: ids and schema', () => {
  assert.deepEqual(body(3, 'schema-only'), { ...ids(3), schema });
});

test('payload - event-and-schema: ids, event and schema, no state', () => {
  assert.deepEqual(body(3, 'event-and-schema'), { ...ids(3), event: event3(), schema });
});

test('payload - extensions-only: the envelope with payload null, extensions/metadata/hashes kept, no state', () => {
  const b = body(1, 'extensions-only');
  assert.deepEqual(b, {
    ...ids(1),
    event: {
      aggregate_type: 'order',
      aggregate_id: 'o-1',
      event_type: 'placed',
      version: 1,
      payload: null,
      extensions: { '@trace': { correlation_id: 'rest-1234' }, '@policy': { source: 'rest-api' } },
      metadata: { event_id: event(1).metadata.event_id, created_at: event(1).metadata.created_at, issued_by: event(1).metadata.issued_by, note: 'first order', schema_version: schemaVersion },
      hash: event(1).hash,
      merkle_root: event(1).merkle_root,
    },
  });
  // The seed's envelope key order, and the input event left untouched.
  assert.deepEqual(Object.keys(b.event as object), ['aggregate_type', 'aggregate_id', 'event_type', 'payload', 'extensions', 'metadata', 'version', 'hash', 'merkle_root']);
  assert.ok(!JSON.stringify(b).includes('A-1'), 'no payload or state value leaks');
  assert.deepEqual(event(1).payload, { sku: 'A-1', qty: 1 });
});

test('payload - a proof is attached as given, and a proof of another event is refused', () => {
  const proof = inclusionProofFor(events.map((e) => e.hash), 4, 4);
  assert.deepEqual(buildDeliveryBody({ tenant: 'default', event: event(4), state: null, schema: null, mode: 'event-only', proof }), { ...ids(4), event: { ...event(4) }, proof });
  assert.throws(
    () => buildDeliveryBody({ tenant: 'default', event: event(3), state: null, schema: null, mode: 'event-only', proof }),
    (err: any) => err.code === 'invalid_input',
  );
  assert.throws(
    () => buildDeliveryBody({ tenant: 'default', event: event(3), state: null, schema: null, mode: 'everything' as PayloadMode }),
    (err: any) => err.code === 'invalid_input',
  );
});

test('proof - for every version v of 7, tree size v: root = event v merkle_root, same as GET …/proof', async () => {
  const hashes = events.map((e) => e.hash);
  for (const v of range(7)) {
    const proof = inclusionProofFor(hashes, v, v);
    assert.equal(proof.leaf_hash, event(v).hash);
    assert.equal(proof.leaf_index, v - 1);
    assert.equal(proof.tree_size, v);
    assert.equal(proof.root, event(v).merkle_root, `root at size ${v}`);
    const route = await server.request('GET', `/v1/aggregates/order/o-1/proof?version=${v}&size=${v}`);
    assert.equal(route.status, 200);
    assert.deepEqual({ leaf_hash: route.body.leaf_hash, root: route.body.root, path: route.body.proof }, { leaf_hash: proof.leaf_hash, root: proof.root, path: proof.path });
  }
  // A proof in a bigger tree folds to that tree's root.
  assert.equal(inclusionProofFor(hashes, 3, 7).root, event(7).merkle_root);
  assert.throws(() => inclusionProofFor(hashes, 8, 7), (err: any) => err.code === 'invalid_input');
  assert.throws(() => inclusionProofFor(hashes, 1, 8), (err: any) => err.code === 'invalid_input');
});

test('verify - verifyDelivery and the Python checker accept real deliveries of every version', (t) => {
  for (const v of range(7)) {
    const b = body(v, 'all', true);
    const verdict = verifyDelivery(b);
    assert.equal(verdict.valid, true, `v${v}: ${verdict.reason}`);
    assert.equal(verdict.checked, 'event');
    assert.equal(verdict.root_trusted, false);
    assert.deepEqual(verifyDelivery(b, { trustedRoot: event(v).merkle_root }), { valid: true, checked: 'event', root_trusted: true });
    if (HAVE_PYTHON) assert.deepEqual(pyCheck(JSON.parse(JSON.stringify(b))), { valid: true }, `python v${v}`);
  }
  // The other modes that carry the event are checked the same way.
  for (const mode of ['event-only', 'event-and-schema'] as const) assert.equal(verifyDelivery(body(5, mode, true), { trustedRoot: event(5).merkle_root }).checked, 'event');
  if (!HAVE_PYTHON) t.skip('python3 not installed: the independent checker was not run');
});

test('verify - extensions-only and state-only deliveries can only check the path, and say so', (t) => {
  const ext = body(5, 'extensions-only', true);
  const verdict = verifyDelivery(ext, { trustedRoot: event(5).merkle_root });
  assert.equal(verdict.valid, true, verdict.reason);
  assert.equal(verdict.checked, 'path-only');
  assert.match(verdict.note ?? '', /extensions-only.*only the path/);
  const state = verifyDelivery(body(5, 'state-only', true));
  assert.equal(state.valid, true, state.reason);
  assert.equal(state.checked, 'path-only');
  // Path-only still binds the proof to the event it names.
  const moved = structuredClone(ext);
  (moved.event as any).hash = event(4).hash;
  assert.equal(verifyDelivery(moved).valid, false);
  if (!HAVE_PYTHON) return t.skip('python3 not installed');
  assert.deepEqual(pyCheck(ext), { valid: true });
  assert.equal(pyCheck(moved).valid, false);
});

const flip = (hex: string) => hex.slice(0, -1) + (hex.endsWith('0') ? '1' : '0');

/** Each forgery of event 6's delivery (its path has 2 hashes). */
const TAMPERS: [string, (b: any) => void, RegExp][] = [
  ['payload changed', (b) => (b.event.payload.qty = 999), /does not hash to event.hash/],
  ['extension changed', (b) => (b.event.extensions['@trace'].correlation_id = 'forged'), /does not hash to event.hash/],
  ['metadata changed', (b) => (b.event.metadata.created_at = '2000-01-01T00:00:00.000Z'), /does not hash to event.hash/],
  ['path hash flipped', (b) => (b.proof.path[0] = flip(b.proof.path[0])), /audit path does not lead/],
  ['second path hash flipped', (b) => (b.proof.path[1] = flip(b.proof.path[1])), /audit path does not lead/],
  ['path hash dropped', (b) => b.proof.path.pop(), /audit path does not lead/],
  ['root changed', (b) => (b.proof.root = flip(b.proof.root)), /audit path does not lead/],
  ['root changed in proof and event', (b) => (b.proof.root = b.event.merkle_root = flip(b.proof.root)), /audit path does not lead/],
  ['version changed in the ids', (b) => (b.version = 5), /leaf_index is not version - 1/],
  ['version changed everywhere', (b) => (b.version = b.event.version = 5) && (b.proof.leaf_index = 4), /does not hash to event.hash/],
  ['tree size changed', (b) => (b.proof.tree_size = 7), /audit path does not lead/],
  ['leaf hash changed', (b) => (b.proof.leaf_hash = b.event.hash = flip(b.event.hash)), /does not hash to event.hash/],
];

test('verify - tampered deliveries (payload, path, root, version, …) are rejected by both checkers', (t) => {
  const genuine = body(6, 'all', true);
  assert.equal(genuine.proof?.path.length, 2);
  for (const [what, tamper, why] of TAMPERS) {
    const forged = structuredClone(genuine);
    tamper(forged);
    const verdict = verifyDelivery(forged);
    assert.equal(verdict.valid, false, `${what}: accepted`);
    assert.match(verdict.reason ?? '', why, what);
    if (HAVE_PYTHON) {
      const py = pyCheck(forged);
      assert.equal(py.valid, false, `${what}: python accepted`);
      assert.match(py.reason ?? '', why, `${what}: python's reason`);
    }
  }
  const wrongRoot = verifyDelivery(genuine, { trustedRoot: event(5).merkle_root });
  assert.deepEqual(wrongRoot, { valid: false, reason: 'proof.root is not the trusted root' });
  assert.equal(verifyDelivery({ ...genuine, proof: undefined }).valid, false);
  assert.equal(verifyDelivery('not a body').valid, false);
  // Path tampering is caught when the event is withheld too.
  const ext = body(6, 'extensions-only', true);
  (ext.proof as any).path[0] = flip((ext.proof as any).path[0]);
  assert.equal(verifyDelivery(ext).valid, false);
  if (!HAVE_PYTHON) return t.skip('python3 not installed: the independent checker was not run');
  assert.equal(pyCheck(ext).valid, false);
});

test('proof - deliveryProof(reader, …) reads the same proof from the store (runs last: stops the server)', async () => {
  await server.stop();
  stopped = true;
  const stores = openShards(server.dataDir);
  const layout = readLayout(server.dataDir);
  assert.ok(layout);
  const reader = new Reader(stores, { shardCount: layout.shard_count, multiTenant: readConfig(server.dataDir).config.tenants.multi_tenant });
  try {
    const hashes = events.map((e) => e.hash);
    for (const v of range(7)) assert.deepEqual(deliveryProof(reader, 'default', 'order', 'o-1', v), inclusionProofFor(hashes, v, v), `v${v}`);
    assert.throws(() => deliveryProof(reader, 'default', 'order', 'o-1', 8), (err: any) => err.code === 'invalid_input');
    assert.throws(() => deliveryProof(reader, 'default', 'order', 'missing', 1), (err: any) => err.code === 'not_found');
  } finally {
    for (const env of new Set(stores.map((s) => s.worker))) await env.close();
  }
});
