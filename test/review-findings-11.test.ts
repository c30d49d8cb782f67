/**
 * Security audit of 2026-12-06 (issue 10's must-show list checked against the running server),
 * each failing on the code before its fix:
 * 1. A refresh while the old token has writes in flight grants no more than the limit in total.
 * 2. Only the canonical base64url spelling of a token is accepted (padding, foreign characters and
 *    the standard alphabet are 401).
 * 3. A SIGKILL with nothing in flight costs a limited token no write, and the listing says what is
 *    enforced.
 * 4. Operator-only tenant routes answer 403 to a token that may not call them, whatever the body.
 * 5. Refreshing a revoked token is 404 (inactive), not 401 (which says the caller's own token is bad);
 *    answers carrying a token are `Cache-Control: no-store`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, spawnServer, startServerInProcess, stopSpawned, tempDataDir, type SpawnedServer, type TestServer } from './helpers/server.js';

type Requester = Pick<TestServer, 'request'>;

async function issue(server: Requester, body: Record<string, unknown>): Promise<{ token: string; jti: string }> {
  const res = await server.request('POST', '/v1/tokens', { group: 'g', user: 'u', actions: ['*'], ...body });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { token: res.body.token, jti: res.body.record?.jti ?? res.body.jti };
}

const as = (token: string) => ({ authorization: `Bearer ${token}` });

async function create(server: Requester, token: string, id: string): Promise<number> {
  return (await server.request('POST', `/v1/aggregates/person/${id}`, { event_type: 'person_seen', payload: {} }, as(token))).status;
}

/** Writes with `token` until it is refused 429: answers how many were accepted. */
async function drain(server: Requester, token: string, prefix: string): Promise<number> {
  for (let n = 0; ; n++) {
    const status = await create(server, token, `${prefix}-${n}`);
    if (status === 429) return n;
    assert.equal(status, 201);
  }
}

test('finding 1 (review 11) - a refresh during writes in flight: the old and the new token together get at most the limit', { timeout: 60_000 }, async () => {
  const server = await startServerInProcess();
  try {
    for (let round = 0; round < 3; round++) {
      const old = await issue(server, { write_limit: 10 });
      let answered = 0;
      const writes = Array.from({ length: 30 }, (_, i) => create(server, old.token, `r${round}-old-${i}`).catch(() => 0).finally(() => answered++));
      // Refreshed once some writes are answered, with the others still in flight.
      for (let waited = 0; answered < 2 && waited < 5000; waited += 1) await new Promise((r) => setTimeout(r, 1));
      const refreshed = await server.request('POST', `/v1/tokens/${old.jti}/refresh`, {});
      assert.equal(refreshed.status, 201, JSON.stringify(refreshed.body));
      assert.equal(refreshed.headers.get('cache-control'), 'no-store');
      const byOld = (await Promise.all(writes)).filter((s) => s === 201).length;
      const byNew = await drain(server, refreshed.body.token, `r${round}-new`);
      assert.ok(byOld + byNew <= 10, `round ${round}: ${byOld} by the old token + ${byNew} by the new one, limit 10`);
    }
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});

test('finding 2 (review 11) - a token is accepted only in its canonical base64url spelling', { timeout: 30_000 }, async () => {
  const server = await startServerInProcess();
  try {
    const { token } = await issue(server, {});
    assert.equal(await create(server, token, 'canon-0'), 201);
    const [h, c, s] = token.split('.') as [string, string, string];
    const variants = [`${token}=`, `${token}==`, `${h}.${c}.${s.slice(0, 10)}!${s.slice(10)}`, `${h}.${c}.${s.replace(/-/g, '+').replace(/_/g, '/')}`, `${h}=.${c}.${s}`];
    // The last character of an 86-character signature carries 4 unused bits: another value there decodes alike.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(s.at(-1) as string);
    variants.push(`${h}.${c}.${s.slice(0, -1)}${alphabet[(last & ~3) | ((last + 1) & 3)]}`);
    for (const [i, variant] of variants.entries()) {
      if (variant === token) continue;
      assert.equal(await create(server, variant, `canon-${i + 1}`), 401, `variant ${i} is refused`);
    }
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});

test('finding 3 (review 11) - a SIGKILL with nothing in flight costs a limited token no write; the listing says what is left', { timeout: 60_000 }, async () => {
  const dataDir = tempDataDir();
  let server: SpawnedServer | undefined;
  try {
    server = await spawnServer({ dataDir });
    const { token, jti } = await issue(server, { write_limit: 100 });
    const current = server;
    const statuses = await Promise.all(Array.from({ length: 16 }, (_, i) => create(current, token, `k-${i}`)));
    assert.deepEqual(statuses.filter((s) => s === 201).length, 16);
    await new Promise((r) => setTimeout(r, 1000)); // idle: nothing in flight
    server.kill('SIGKILL');
    await server.exited;
    server = await spawnServer({ dataDir });
    const listed = (await server.request('GET', `/v1/tokens/${jti}`)).body;
    assert.equal(listed.writes_remaining, 84, JSON.stringify(listed));
    assert.equal(await drain(server, token, 'after'), 84, 'every write the listing promised is granted');
  } finally {
    if (server) await stopSpawned(server).catch(() => undefined);
    removeDir(dataDir);
  }
});

test('finding 4 (review 11) - operator-only tenant routes answer 403 to a single-tenant token, whatever the body', { timeout: 30_000 }, async () => {
  const server = await startServerInProcess();
  try {
    const { token } = await issue(server, { tenants: ['other'] });
    for (const [method, path] of [
      ['PUT', '/v1/tenants/default/shard'],
      ['PUT', '/v1/tenants/default/quota'],
      ['PUT', '/v1/tenants/default/limit'],
    ] as const) {
      for (const body of [{}, { nonsense: true }]) {
        const res = await server.request(method, path, body, as(token));
        assert.equal(res.status, 403, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'forbidden');
      }
    }
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});

test('finding 5 (review 11) - refreshing a revoked token is 404 inactive; a token answer is not cached', { timeout: 30_000 }, async () => {
  const server = await startServerInProcess();
  try {
    const issued = await server.request('POST', '/v1/tokens', { group: 'g', user: 'u', actions: ['*'] });
    assert.equal(issued.headers.get('cache-control'), 'no-store');
    const jti = issued.body.record?.jti ?? issued.body.jti;
    assert.equal((await server.request('POST', `/v1/tokens/${jti}/revoke`, {})).status, 200);
    const refreshed = await server.request('POST', `/v1/tokens/${jti}/refresh`, {});
    assert.equal(refreshed.status, 404, JSON.stringify(refreshed.body));
    assert.match(refreshed.body.error.message, /revoked/);
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});

test('finding 7 (review 11) - refusals are in our words: no validation library message reaches an answer', { timeout: 30_000 }, async () => {
  const server = await startServerInProcess();
  try {
    assert.equal(await create(server, server.token, 'w-1'), 201);
    const zodWords = /Too big|Too small|Invalid input|Invalid option|Invalid string|Unrecognized key|expected \S+, received/;
    for (const [method, path, body] of [
      ['GET', '/v1/aggregates?take=1&take=2', undefined],
      ['GET', '/v1/aggregates/person/w-1?version=99999999999999999999', undefined],
      ['POST', '/v1/batch', []],
      ['PUT', '/v1/plugins/p1', { kind: 'log' }],
      ['POST', '/v1/aggregates/person/w-1/events', { event_type: 7, payload: 'x' }],
      ['POST', '/v1/tokens', { group: 'g', user: 'u', actions: ['*'], write_limit: -1 }],
    ] as const) {
      const res = await server.request(method, path, body);
      assert.ok(res.status >= 400 && res.status < 500, `${method} ${path}: ${res.status}`);
      assert.doesNotMatch(JSON.stringify(res.body), zodWords, `${method} ${path}: ${JSON.stringify(res.body)}`);
      assert.ok(res.body.error.message.length > 0);
    }
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});
