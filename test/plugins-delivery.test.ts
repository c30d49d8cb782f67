/**
 * Issue 11 items 5 and 7 end to end: what a real HTTP receiver gets for each payload mode (the
 * exact JSON, extension envelope included), and deliveries with proofs that verifyDelivery and the
 * independent Python checker accept, while a tampered delivery is rejected.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { verifyDelivery } from '../src/client/index.js';
import { PAYLOAD_MODES } from '../src/plugins/types.js';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHECKER = resolve(here, '../../test/helpers/rfc6962_check.py');
const PYTHON = (() => {
  const run = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8', timeout: 10_000 });
  return run.status === 0 && run.stdout.trim() ? run.stdout.trim() : undefined;
})();

let server: TestServer;
let recv: http.Server;
const got = new Map<string, any[]>();

before(async () => {
  recv = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      if (req.method === 'POST') {
        const list = got.get(req.url ?? '') ?? [];
        list.push(JSON.parse(text));
        got.set(req.url ?? '', list);
      }
      res.end('ok');
    });
  });
  await new Promise<void>((r) => recv.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(recv.address() as AddressInfo).port}`;
  server = await startServerInProcess();
  assert.ok([200, 201].includes((await server.request('PUT', '/v1/schemas/order', { column_types: { sku: 'text', qty: 'integer' }, events: { placed: { fields: ['sku', 'qty'] }, qty_changed: { fields: ['qty'] } } })).status));
  for (const mode of PAYLOAD_MODES) {
    const res = await server.request('PUT', `/v1/plugins/m-${mode}`, { payload_mode: mode, options: { kind: 'http', endpoint: `${base}/${mode}` } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  assert.equal((await server.request('PUT', '/v1/plugins/proofs', { with_proof: true, options: { kind: 'http', endpoint: `${base}/proofs` } })).status, 200);
  assert.equal((await server.request('POST', '/v1/aggregates/order/o-1', { event_type: 'placed', payload: { sku: 'A-1', qty: 1 }, metadata: { '@trace': { id: 't-1' } }, note: 'first' })).status, 201);
  for (let q = 2; q <= 5; q++) assert.equal((await server.request('POST', '/v1/aggregates/order/o-1/events', { event_type: 'qty_changed', payload: { qty: q }, metadata: { '@trace': { id: `t-${q}` } } })).status, 201);
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && [...PAYLOAD_MODES.map((m) => `/${m}`), '/proofs'].some((p) => (got.get(p)?.length ?? 0) < 5)) await new Promise((r) => setTimeout(r, 25));
});
after(async () => {
  await server.stop();
  recv.close();
  removeDir(server.dataDir);
});

test('delivery - each payload mode delivers exactly its parts, with the ids and the extension envelope', { timeout: 30_000 }, async () => {
  const events = (await server.request('GET', '/v1/aggregates/order/o-1/events?take=10')).body.items as any[];
  const schema = (await server.request('GET', '/v1/schemas/order')).body.schema;
  assert.equal(events.length, 5);
  for (const mode of PAYLOAD_MODES) {
    const delivered: any[] = got.get(`/${mode}`) ?? [];
    assert.equal(delivered.length, 5, `${mode}: five deliveries`);
    for (const [i, body] of delivered.entries()) {
      const event = events[i];
      const state = (await server.request('GET', `/v1/aggregates/order/o-1?version=${event.version}`)).body.state;
      const ids = { event_id: event.metadata.event_id, tenant: 'default', aggregate_type: 'order', aggregate_id: 'o-1', version: event.version, event_type: event.event_type };
      const expected: Record<string, unknown> = { ...ids };
      if (mode === 'all') Object.assign(expected, { event, state, schema });
      if (mode === 'event-only') Object.assign(expected, { event });
      if (mode === 'state-only') Object.assign(expected, { state });
      if (mode === 'schema-only') Object.assign(expected, { schema });
      if (mode === 'event-and-schema') Object.assign(expected, { event, schema });
      if (mode === 'extensions-only') Object.assign(expected, { event: { ...event, payload: null } });
      assert.deepEqual(body, expected, `${mode} v${event.version}`);
      if (mode === 'extensions-only') {
        assert.deepEqual((body as any).event.extensions, { '@trace': { id: `t-${event.version}` } }, 'the extension bag is kept');
        assert.ok(!JSON.stringify(body).includes('"qty"') && !JSON.stringify(body).includes('A-1'), 'no payload or state value');
      }
    }
  }
});

test('delivery - with_proof deliveries verify with verifyDelivery and an independent checker; tampering is caught', { timeout: 30_000 }, async (t) => {
  const delivered = got.get('/proofs') ?? [];
  assert.equal(delivered.length, 5);
  const py = (body: unknown): { valid: boolean } => {
    const run = spawnSync(PYTHON as string, [CHECKER], { input: JSON.stringify(body), encoding: 'utf8', timeout: 10_000 });
    return JSON.parse(run.stdout);
  };
  for (const body of delivered) {
    assert.equal(body.proof.tree_size, body.version);
    assert.equal(body.proof.root, body.event.merkle_root);
    assert.equal(verifyDelivery(body, { trustedRoot: body.event.merkle_root }).valid, true);
    if (PYTHON) assert.equal(py(body).valid, true);
  }
  const last = delivered[4];
  const tampered = [
    { ...last, event: { ...last.event, payload: { qty: 500 } } },
    { ...last, proof: { ...last.proof, path: [last.proof.path[0].replace(/^./, (c: string) => (c === '0' ? '1' : '0')), ...last.proof.path.slice(1)] } },
    { ...last, proof: { ...last.proof, root: '0'.repeat(64) } },
  ];
  for (const body of tampered) {
    assert.equal(verifyDelivery(body).valid, false);
    if (PYTHON) assert.equal(py(body).valid, false);
  }
  if (!PYTHON) t.skip('python3 missing: the independent checker was not run');
});
