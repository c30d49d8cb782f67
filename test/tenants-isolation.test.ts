/**
 * Issue 12 item 7: no read or write crosses tenants. Two tenants, `alpha` and `bravo`, on the SAME
 * shard (adjacent key ranges), each holding aggregates with the same types and ids, snapshots,
 * schemas, plugins and ledger tokens, plus things only one of them has. Every registered route is
 * sent (the table must name each one; a new route without a row fails the first test):
 * - by alpha's token and by bravo's token for their own tenant: the answer carries nothing of the
 *   other tenant (its secrets, event ids, aggregate and schema names), and some rows check more
 *   (404 for the other's ids, snapshot states, replay counts, forged cursors and stream positions);
 * - by each for the other tenant (header or path): 403 on every tenant route; tenant-wide lists
 *   (tokens, plugins, tenants) answer only their own;
 * - by the root token for each tenant: only that tenant's data.
 * Afterwards each tenant's data is exactly what its own requests made of it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { issueToken, readConfig } from '../src/core/index.js';
import { startServer, type RunningServer } from '../src/coordinator/index.js';
import { httpRequest, readCliToken, removeDir, tempDataDir, writeConfigToml } from './helpers/server.js';
import { MULTI_TENANT_TOML } from './helpers/tenants.js';

const TENANTS = ['alpha', 'bravo'] as const;
type Tenant = (typeof TENANTS)[number];
const otherOf = (t: Tenant): Tenant => (t === 'alpha' ? 'bravo' : 'alpha');
/** o-1's history length differs per tenant, so a replay that crossed would count wrong. */
const O1_EVENTS: Record<Tenant, number> = { alpha: 3, bravo: 5 };

interface Ctx {
  me: Tenant;
  other: Tenant;
  /** One event id of each tenant, the other's ledger token, the other's stream position. */
  eventIds: Record<Tenant, string>;
  ledgerJti: Record<Tenant, string>;
  position: Record<Tenant, string>;
  root: boolean;
}

interface Answer {
  status: number;
  body: any;
}

interface Row {
  path: (c: Ctx) => string;
  body?: (c: Ctx) => unknown;
  contentType?: string;
  /** The root token skips it (it would rotate every key, remove a tenant, or move one). */
  rootSkips?: boolean;
  /** More than "no marker of the other tenant": what the answer for the caller's own tenant must be. */
  check?: (res: Answer, c: Ctx) => void | Promise<void>;
}

const ev = (c: Ctx) => ({ event_type: 'touched', payload: { owner: c.me } });
const mine = (res: Answer, c: Ctx): void => {
  assert.equal(res.status, 200, JSON.stringify(res.body));
  for (const item of res.body.items) if (item.state?.owner !== undefined) assert.equal(item.state.owner, c.me);
};
const notFound = (res: Answer): void => assert.equal(res.status, 404, JSON.stringify(res.body));
let freshId = 900_000_000_000_000_000n;

const TABLE: Record<string, Row> = {
  'GET /health': { path: () => '/health' },
  'GET /openapi.json': { path: () => '/openapi.json' },
  'GET /metrics': { path: () => '/metrics' },
  'GET /v1/status': { path: () => '/v1/status', check: (r, c) => assert.equal(r.body.tenant ?? c.me, c.me) },
  'POST /v1/aggregates/:type/:id': { path: (c) => `/v1/aggregates/order/${c.me}-new-${c.root ? 'r' : 't'}`, body: ev, check: (r) => assert.equal(r.status, 201) },
  'POST /v1/aggregates/:type/:id/events': { path: () => '/v1/aggregates/order/o-1/events', body: ev, check: (r) => assert.equal(r.status, 201) },
  'POST /v1/events': { path: () => '/v1/events', body: (c) => ({ ...ev(c), aggregate_type: 'order', aggregate_id: 'o-2' }), check: (r) => assert.equal(r.status, 201) },
  'POST /v1/aggregates/:type/:id/patch': { path: () => '/v1/aggregates/order/o-2/patch', body: (c) => ({ event_type: 'p', patch: [{ op: 'replace', path: '/owner', value: c.me }] }), check: (r) => assert.equal(r.status, 201) },
  'POST /v1/aggregates/:type/:id/archive': { path: () => '/v1/aggregates/order/o-2/archive', body: () => ({}), check: (r) => assert.equal(r.status, 200) },
  'POST /v1/aggregates/:type/:id/restore': { path: () => '/v1/aggregates/order/o-2/restore', body: () => ({}), check: (r) => assert.equal(r.status, 200) },
  'POST /v1/batch': {
    path: () => '/v1/batch',
    body: (c) => ({ events: [{ ...ev(c), aggregate_type: 'order', aggregate_id: 'o-1' }, { ...ev(c), aggregate_type: 'order', aggregate_id: `${c.me}-batch` }] }),
    check: (r) => assert.equal(r.status, 201),
  },
  // A check runs in the caller's tenant: its o-1, not the other's (version 1 there is the caller's own).
  'POST /v1/batch/check': {
    path: () => '/v1/batch/check',
    body: (c) => ({ events: [{ ...ev(c), aggregate_type: 'order', aggregate_id: `${c.other}-only`, expected_version: 0 }] }),
    check: (r) => assert.equal(r.status, 200, JSON.stringify(r.body)),
  },
  'POST /v1/aggregates/:type/:id/snapshots': { path: () => '/v1/aggregates/order/o-1/snapshots', body: () => ({}), check: (r) => assert.equal(r.status, 201) },
  'GET /v1/aggregates': { path: () => '/v1/aggregates?take=1000&include_archived=true', check: mine },
  // A cursor forged to name the other tenant's only aggregate: it is a position in the caller's range.
  'GET /v1/aggregates/:type': { path: (c) => `/v1/aggregates/order?take=1000&cursor=${encodeURIComponent(`a:order:${c.other}-only`)}`, check: mine },
  'GET /v1/aggregates/:type/:id': { path: (c) => `/v1/aggregates/order/${c.other}-only`, check: notFound },
  'GET /v1/aggregates/:type/:id/select': { path: () => '/v1/aggregates/order/o-1/select?fields=secret', check: (r, c) => assert.equal(r.body.secret, `${c.me}-secret-7f3a`) },
  'GET /v1/aggregates/:type/:id/events': {
    path: () => `/v1/aggregates/order/o-1/events?take=1000&cursor=${encodeURIComponent('a:order:o-1:1')}`,
    check: (r, c) => {
      assert.equal(r.status, 200);
      assert.ok(r.body.items.every((e: any) => e.version > 1 && e.payload.owner === c.me), 'only my o-1, after the cursor');
    },
  },
  'GET /v1/aggregates/:type/:id/verify': { path: (c) => `/v1/aggregates/order/${c.other}-only/verify`, check: notFound },
  'GET /v1/aggregates/:type/:id/proof': { path: (c) => `/v1/aggregates/order/${c.other}-only/proof?version=1`, check: notFound },
  'GET /v1/aggregates/:type/:id/snapshots': {
    path: () => '/v1/aggregates/order/o-1/snapshots',
    check: (r, c) => {
      assert.equal(r.status, 200);
      assert.ok(r.body.items.length >= 1);
      assert.ok(r.body.items.every((s: any) => s.state.owner === c.me));
    },
  },
  'GET /v1/events': {
    path: (c) => `/v1/events?take=1000&cursor=${encodeURIComponent(`a:order:${c.other}-only:1`)}`,
    check: (r, c) => {
      assert.equal(r.status, 200);
      assert.ok(r.body.items.every((e: any) => e.payload?.owner === undefined || e.payload.owner === c.me || e.event_type === 'p'));
    },
  },
  'GET /v1/events/:event_id': { path: (c) => `/v1/events/${c.eventIds[c.other]}`, check: notFound },
  // The other tenant's stream position names its tenant: refused, never read as the caller's.
  'GET /v1/stream': { path: (c) => `/v1/stream?after=${c.position[c.other]}`, check: (r) => assert.equal(r.status, 400, JSON.stringify(r.body)) },
  'GET /v1/export': { path: () => '/v1/export?type=order&format=json', check: (r) => assert.equal(r.status, 200) },
  'GET /v1/export/types': { path: () => '/v1/export/types', check: (r) => assert.equal(r.status, 200) },
  'GET /v1/aggregates/:type/:id/replay': { path: (c) => `/v1/aggregates/order/${c.other}-only/replay`, check: notFound },
  'POST /v1/import': {
    path: () => '/v1/import',
    contentType: 'application/x-ndjson',
    body: (c) =>
      `${JSON.stringify({
        aggregate_type: 'order',
        aggregate_id: `${c.me}-imported-${c.root ? 'r' : 't'}`,
        event_type: 'touched',
        version: 1,
        payload: { owner: c.me },
        extensions: {},
        metadata: { event_id: String(freshId++), created_at: new Date().toISOString(), issued_by: null },
      })}\n`,
    check: (r) => assert.equal(r.status, 200, JSON.stringify(r.body)),
  },
  'GET /v1/schemas': { path: () => '/v1/schemas', check: (r) => assert.equal(r.status, 200) },
  'POST /v1/schemas': { path: () => '/v1/schemas', body: (c) => ({ aggregate: `widget_${c.root ? 'r' : 't'}`, events: {} }), check: (r) => assert.equal(r.status, 201, JSON.stringify(r.body)) },
  'GET /v1/schemas/:aggregate': { path: (c) => `/v1/schemas/${c.other}_only`, check: notFound },
  'PUT /v1/schemas/:aggregate': { path: () => '/v1/schemas/gadget', body: () => ({ events: {} }), check: (r) => assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body)) },
  'DELETE /v1/schemas/:aggregate': { path: () => '/v1/schemas/gadget', check: (r) => assert.equal(r.status, 200, JSON.stringify(r.body)) },
  'GET /v1/schemas/:aggregate/versions': { path: (c) => `/v1/schemas/${c.other}_only/versions`, check: notFound },
  'GET /v1/schemas/:aggregate/versions/:version': { path: (c) => `/v1/schemas/${c.other}_only/versions/1`, check: notFound },
  'GET /v1/schemas/:aggregate/json-schema': { path: (c) => `/v1/schemas/${c.other}_only/json-schema`, check: notFound },
  'POST /v1/schemas/:aggregate/validate': {
    path: (c) => `/v1/schemas/${c.other}_only/validate`,
    body: () => ({ event_type: 'touched', payload: { n: 1 } }),
    // The other tenant's schema is not in force here: no schema → valid, with no version.
    check: (r) => {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.valid, true);
      assert.equal(r.body.schema_version ?? null, null);
    },
  },
  'GET /v1/tokens': { path: () => '/v1/tokens', check: (r, c) => {
      if (!c.root) assert.ok(r.body.items.every((t: any) => t.tenants.every((x: string) => x === c.me)));
    },
  },
  'POST /v1/tokens': { path: () => '/v1/tokens', body: (c) => ({ group: 'g', user: 'u', actions: ['aggregate.read'], tenants: [c.me] }), check: (r) => assert.equal(r.status, 201, JSON.stringify(r.body)) },
  'GET /v1/tokens/:jti': { path: (c) => `/v1/tokens/${c.ledgerJti[c.other]}`, check: (r, c) => {
      if (!c.root) assert.ok(r.status === 403 || r.status === 404, `${r.status}`);
    },
  },
  'POST /v1/tokens/:jti/revoke': { path: (c) => `/v1/tokens/${c.ledgerJti[c.other]}/revoke`, body: () => ({}), rootSkips: true, check: (r) => assert.ok(r.status === 403 || r.status === 404, `${r.status}`) },
  'POST /v1/tokens/:jti/refresh': { path: (c) => `/v1/tokens/${c.ledgerJti[c.other]}/refresh`, body: () => ({}), rootSkips: true, check: (r) => assert.ok(r.status === 403 || r.status === 404, `${r.status}`) },
  'POST /v1/tokens/rotate-keys': { path: () => '/v1/tokens/rotate-keys', body: () => ({}), rootSkips: true, check: (r) => assert.equal(r.status, 403) },
  'GET /v1/plugins': { path: () => '/v1/plugins', check: (r, c) => {
      if (!c.root) assert.ok(r.body.items.every((p: any) => p.tenants.length > 0 && p.tenants.every((x: string) => x === c.me)));
    },
  },
  'GET /v1/plugins/:name': { path: (c) => `/v1/plugins/sink-${c.other}`, check: (r, c) => {
      if (!c.root) assert.ok(r.status === 403 || r.status === 404, `${r.status}`);
    },
  },
  'PUT /v1/plugins/:name': { path: (c) => `/v1/plugins/extra-${c.me}`, body: (c) => ({ enabled: false, tenants: [c.me], options: { kind: 'log' } }), check: (r) => assert.equal(r.status, 200, JSON.stringify(r.body)) },
  'POST /v1/plugins/:name/enable': { path: (c) => `/v1/plugins/extra-${c.me}/enable`, body: () => ({}), check: (r) => assert.equal(r.status, 200, JSON.stringify(r.body)) },
  'POST /v1/plugins/:name/disable': { path: (c) => `/v1/plugins/extra-${c.me}/disable`, body: () => ({}), check: (r) => assert.equal(r.status, 200, JSON.stringify(r.body)) },
  'DELETE /v1/plugins/:name': { path: (c) => `/v1/plugins/extra-${c.me}`, check: (r) => assert.equal(r.status, 200, JSON.stringify(r.body)) },
  'POST /v1/plugins/:name/test': { path: (c) => `/v1/plugins/sink-${c.me}/test`, body: () => ({}), check: (r) => assert.equal(r.status, 200, JSON.stringify(r.body)) },
  'POST /v1/plugins/:name/replay': {
    path: (c) => `/v1/plugins/sink-${c.me}/replay`,
    body: () => ({ aggregate_type: 'order', aggregate_id: 'o-1' }),
    check: async (r, c) => {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const head = await send(c.root ? 'root' : c.me, 'GET', '/v1/aggregates/order/o-1', undefined, c.me);
      assert.equal(r.body.queued, head.body.version, "exactly my o-1's events were queued");
    },
  },
  'GET /v1/queue': { path: () => '/v1/queue', check: (r, c) => {
      if (!c.root) assert.equal(r.status, 403);
    },
  },
  'POST /v1/queue/retry': { path: () => '/v1/queue/retry', body: () => ({}), check: (r, c) => {
      if (!c.root) assert.equal(r.status, 403);
    },
  },
  'POST /v1/queue/clear': { path: () => '/v1/queue/clear', body: () => ({}), check: (r, c) => {
      if (!c.root) assert.equal(r.status, 403);
    },
  },
  'GET /v1/tenants': { path: () => '/v1/tenants', check: (r, c) => {
      if (!c.root) assert.deepEqual(r.body.items.map((t: any) => t.tenant), [c.me]);
    },
  },
  'GET /v1/tenants/:tenant': { path: (c) => `/v1/tenants/${c.me}`, check: (r, c) => assert.equal(r.body.tenant, c.me) },
  'GET /v1/tenant-meta': { path: () => '/v1/tenant-meta', check: (r, c) => {
      if (!c.root) assert.ok(r.body.items.every((e: any) => e.tenant === c.me));
    },
  },
  'GET /v1/tenant-meta/stats': { path: () => '/v1/tenant-meta/stats', check: (r, c) => {
      if (!c.root) assert.equal(r.status, 403);
    },
  },
  'PUT /v1/tenants/:tenant/shard': { path: (c) => `/v1/tenants/${c.me}/shard`, body: () => ({ shard: '3' }), rootSkips: true, check: (r) => assert.equal(r.status, 403) },
  'DELETE /v1/tenants/:tenant/shard': { path: (c) => `/v1/tenants/${c.me}/shard`, rootSkips: true, check: (r) => assert.equal(r.status, 403) },
  'PUT /v1/tenants/:tenant/quota': { path: (c) => `/v1/tenants/${c.me}/quota`, body: () => ({ max_aggregates: 1000 }), check: (r, c) => assert.equal(r.status, c.root ? 200 : 403) },
  'DELETE /v1/tenants/:tenant/quota': { path: (c) => `/v1/tenants/${c.me}/quota`, check: (r, c) => assert.equal(r.status, c.root ? 200 : 403) },
  'POST /v1/tenants/:tenant/quota/recalc': { path: (c) => `/v1/tenants/${c.me}/quota/recalc`, check: (r, c) => assert.equal(r.status, c.root ? 200 : 403) },
  'PUT /v1/tenants/:tenant/limit': { path: (c) => `/v1/tenants/${c.me}/limit`, body: () => ({ writes_per_sec: 100000 }), check: (r, c) => assert.equal(r.status, c.root ? 200 : 403) },
  'DELETE /v1/tenants/:tenant/limit': { path: (c) => `/v1/tenants/${c.me}/limit`, check: (r, c) => assert.equal(r.status, c.root ? 200 : 403) },
  'GET /v1/tenants/:tenant/export': {
    path: (c) => `/v1/tenants/${c.me}/export`,
    check: (r, c) => {
      assert.equal(r.status, 200);
      const lines = String(r.body).trim().split('\n').map((l) => JSON.parse(l));
      assert.ok(lines.length > 0 && lines.every((e) => e.payload?.owner === undefined || e.payload.owner === c.me || e.event_type === 'p'));
    },
  },
  // Into a tenant with data: refused either way; the point is that it never lands in the other tenant.
  'POST /v1/tenants/:tenant/import': { path: (c) => `/v1/tenants/${c.me}/import`, body: () => '', contentType: 'application/x-ndjson', check: (r) => assert.ok(r.status === 409 || r.status === 200, `${r.status}`) },
  'DELETE /v1/tenants/:tenant': { path: (c) => `/v1/tenants/${c.me}`, rootSkips: true, check: (r) => assert.equal(r.status, 403) },
};

let server: RunningServer;
let dataDir: string;
const tokens: Record<Tenant | 'root', string> = { alpha: '', bravo: '', root: '' };
const ctxBase = { eventIds: { alpha: '', bravo: '' }, ledgerJti: { alpha: '', bravo: '' }, position: { alpha: '', bravo: '' } } as Pick<Ctx, 'eventIds' | 'ledgerJti' | 'position'>;

function send(who: Tenant | 'root', method: string, path: string, body: unknown, tenant: string, contentType?: string): Promise<Answer> {
  return httpRequest(server.url, tokens[who], method, path, body, { 'x-tenant-id': tenant, ...(contentType ? { 'content-type': contentType } : {}) });
}

/** What leaks would look like: the other tenant's secret, field and schema names, ids, event id. */
function markers(t: Tenant): string[] {
  return [`${t}-secret-7f3a`, `${t}_only`, `${t}-only`, `${t}_secret_field`, `${t}-batch`, `${t}-new`, `${t}-imported`, ctxBase.eventIds[t]];
}

/** An answer may echo what the request itself named (a 404 for the id asked for): that is no leak. */
function assertNoLeak(res: Answer, from: Tenant, what: string, request: string): void {
  const text = typeof res.body === 'string' ? res.body : JSON.stringify(res.body ?? '');
  for (const m of markers(from)) {
    if (request.includes(m)) continue;
    assert.ok(!text.includes(m), `${what}: the answer names ${from}'s ${m}`);
  }
}

const requestText = (path: string, body: unknown): string => decodeURIComponent(path) + (body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body));

/** A tenant's data as seen by the root token: every aggregate's version and root, and its schemas. */
async function fingerprint(t: Tenant): Promise<string> {
  const parts: unknown[] = [];
  for (const type of ['order', 'person']) {
    const res = await send('root', 'GET', `/v1/aggregates/${type}?take=1000&include_archived=true`, undefined, t);
    parts.push(res.body.items.map((a: any) => [a.aggregate_id, a.version, a.merkle_root]));
  }
  const schemas = await send('root', 'GET', '/v1/schemas?take=1000', undefined, t);
  parts.push(schemas.body.items.map((s: any) => [s.schema.aggregate, s.version]));
  return JSON.stringify(parts);
}

before(async () => {
  dataDir = tempDataDir();
  writeConfigToml(dataDir, MULTI_TENANT_TOML(4, 2));
  server = await startServer({ dataDir, listenPort: 0, host: '127.0.0.1', logLevel: 'silent' });
  tokens.root = readCliToken(dataDir);
  const auth = readConfig(dataDir).config.auth;
  for (const t of TENANTS) tokens[t] = issueToken(auth, { group: 'team', user: t, actions: ['*'], tenants: [t] }).token;
  // Both tenants on one shard: their key ranges touch.
  for (const t of TENANTS) assert.equal((await send('root', 'PUT', `/v1/tenants/${t}/shard`, { shard: '1' }, t)).status, 200);
  for (const t of TENANTS) {
    const secret = `${t}-secret-7f3a`;
    for (let n = 0; n < O1_EVENTS[t]; n++) {
      const res = await send('root', 'POST', '/v1/aggregates/order/o-1/events', { event_type: 'ticked', payload: { owner: t, secret, n } }, t);
      assert.equal(res.status, 201);
      ctxBase.eventIds[t] = res.body.metadata.event_id;
    }
    for (const id of ['o-2', 'o-3', `${t}-only`]) assert.equal((await send('root', 'POST', `/v1/aggregates/order/${id}/events`, { event_type: 'ticked', payload: { owner: t, secret } }, t)).status, 201);
    assert.equal((await send('root', 'POST', '/v1/aggregates/order/o-3/archive', {}, t)).status, 200);
    assert.equal((await send('root', 'POST', '/v1/aggregates/person/p-1', { event_type: 'created', payload: { owner: t, secret } }, t)).status, 201);
    assert.equal((await send('root', 'POST', '/v1/aggregates/order/o-1/snapshots', {}, t)).status, 201);
    const schema = await send('root', 'POST', '/v1/schemas', { aggregate: `${t}_only`, events: { touched: { fields: [`${t}_secret_field`] } } }, t);
    assert.equal(schema.status, 201, JSON.stringify(schema.body));
    const plugin = await send('root', 'PUT', `/v1/plugins/sink-${t}`, { enabled: true, tenants: [t], options: { kind: 'log', file: `sink-${t}.log` } }, t);
    assert.equal(plugin.status, 200, JSON.stringify(plugin.body));
    const ledger = await send('root', 'POST', '/v1/tokens', { group: 'g', user: `${t}-holder`, actions: ['aggregate.read'], tenants: [t] }, t);
    assert.equal(ledger.status, 201);
    ctxBase.ledgerJti[t] = ledger.body.record.jti;
    const stream = await send('root', 'GET', '/v1/stream?after=start&take=2', undefined, t);
    assert.equal(stream.status, 200, JSON.stringify(stream.body));
    ctxBase.position[t] = stream.body.next_position;
  }
});

after(async () => {
  await server.stop();
  removeDir(dataDir);
});

test('isolation - the table names every registered route', () => {
  const registered = server.routes.map((r) => `${r.method} ${r.url}`).sort();
  assert.deepEqual(Object.keys(TABLE).sort(), registered, 'add a row to TABLE for every new route');
});

/** Whether a request naming the other tenant (header or path) must be refused with 403. */
function crossRefused(key: string): boolean {
  const spec = server.routes.find((r) => `${r.method} ${r.url}` === key);
  assert.ok(spec);
  if (spec.url.includes(':tenant') || spec.url === '/v1/status') return true;
  return spec.action !== null && spec.tenantScope !== 'none';
}

for (const me of TENANTS) {
  test(`isolation - ${me}'s token: its own tenant answers only ${me}'s data; naming ${otherOf(me)} is refused`, { timeout: 60_000 }, async () => {
    const other = otherOf(me);
    const before = await fingerprint(other);
    const c: Ctx = { ...ctxBase, me, other, root: false };
    for (const [key, row] of Object.entries(TABLE)) {
      const method = key.split(' ')[0] as string;
      const path = row.path(c);
      const body = row.body?.(c);
      const own = await send(me, method, path, body, me, row.contentType);
      assert.ok(own.status < 500, `${key} for ${me}: ${own.status} ${JSON.stringify(own.body)}`);
      assertNoLeak(own, other, `${key} by ${me}`, requestText(path, body));
      await row.check?.(own, c);
      // The same request aimed at the other tenant: by header, and by path where the route names one.
      const aimed: Ctx = { ...c, me: other, other: me };
      const crossPath = row.path(aimed);
      const crossBody = row.body?.(aimed);
      const cross = await send(me, method, crossPath, crossBody, other, row.contentType);
      if (crossRefused(key)) assert.equal(cross.status, 403, `${key} by ${me} for ${other}: ${cross.status} ${JSON.stringify(cross.body)}`);
      assertNoLeak(cross, other, `${key} by ${me} aimed at ${other}`, requestText(crossPath, crossBody));
    }
    assert.equal(await fingerprint(other), before, `${other}'s data is untouched by ${me}'s requests`);
  });
}

test("isolation - the root token reads each tenant's data only under that tenant", { timeout: 60_000 }, async () => {
  for (const me of TENANTS) {
    const other = otherOf(me);
    const before = await fingerprint(other);
    const c: Ctx = { ...ctxBase, me, other, root: true };
    for (const [key, row] of Object.entries(TABLE)) {
      if (row.rootSkips) continue;
      const method = key.split(' ')[0] as string;
      const path = row.path(c);
      const body = row.body?.(c);
      const res = await send('root', method, path, body, me, row.contentType);
      assert.ok(res.status < 500, `${key} as root for ${me}: ${res.status} ${JSON.stringify(res.body)}`);
      // Server-wide lists (tokens, plugins, queue, tenants, metrics) are the root's to see whole.
      const serverWide = /^(GET|POST) \/v1\/(tokens|plugins|queue|tenants|tenant-meta)(\/|$)|^GET \/metrics$/.test(key) && !key.includes(':tenant');
      if (!serverWide) assertNoLeak(res, other, `${key} as root for ${me}`, requestText(path, body));
      await row.check?.(res, c);
    }
    assert.equal(await fingerprint(other), before, `${other}'s data is untouched by root's requests for ${me}`);
  }
});
