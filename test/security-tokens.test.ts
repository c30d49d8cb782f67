/**
 * Issue 10 items 1, 3, 4, 8: the token ledger and lifecycle (CLI and HTTP), revocation and refresh
 * seen by a running server within a second, exact write limits (also across a restart and
 * SIGKILL), identity from the token only, key hygiene and signing-key rotation.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { issueToken, readConfig } from '../src/core/index.js';
import { TOKEN_LEDGER_DIR } from '../src/coordinator/index.js';
import { httpRequest, readCliToken, removeDir, runDbx, spawnServer, startServerInProcess, stopSpawned, tempDataDir, type SpawnedServer, type TestServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

let server: TestServer;

before(async () => {
  server = await startServerInProcess();
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
});

const dbx = (args: string[]) => runDbx([...args, '--data-dir', server.dataDir]);

async function generate(args: string[], dataDir = server.dataDir): Promise<{ token: string; jti: string } & Record<string, any>> {
  const res = await runDbx(['token', 'generate', '--group', 'team', '--user', 'ada', ...args, '--json', '--data-dir', dataDir]);
  assert.equal(res.code, 0, res.stderr);
  return JSON.parse(res.stdout);
}

const appendAs = (token: string, id = 'o-1', body: Record<string, unknown> = {}) =>
  httpRequest(server.url, token, 'POST', `/v1/aggregates/order/${id}/events`, { event_type: 'touched', payload: { n: 1 }, ...body });

/** Polls until `check` holds, at most `ms`; answers how long it took. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await check()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`not within ${ms} ms`);
}

test('ledger - every issued token is recorded with its grants and status, never its value', { timeout: 60_000 }, async () => {
  const issued = await generate(['--action', 'aggregate.read', '--tenant', 'default', '--expiration', '600', '--limit', '7']);
  assert.equal(issued.token.split('.').length, 3);
  const list = await dbx(['token', 'list', '--json']);
  assert.equal(list.code, 0, list.stderr);
  const items = JSON.parse(list.stdout) as Record<string, any>[];
  const mine = items.find((r) => r.jti === issued.jti);
  assert.ok(mine, 'the issued token is listed');
  assert.deepEqual(
    { group: mine.group, user: mine.user, actions: mine.actions, tenants: mine.tenants, status: mine.status, limit: mine.limits.write_events, remaining: mine.writes_remaining },
    { group: 'team', user: 'ada', actions: ['aggregate.read'], tenants: ['default'], status: 'active', limit: 7, remaining: 7 },
  );
  assert.ok(Date.parse(mine.expires_at) - Date.parse(mine.issued_at) === 600_000);
  // No token value or signature in any listing, and none in the ledger files either.
  const signature = issued.token.split('.')[2] as string;
  assert.ok(!list.stdout.includes(signature) && !list.stdout.includes(issued.token));
  assert.ok(!/eyJ[\w-]+\.[\w-]+\.[\w-]+/.test(list.stdout), 'no JWT in the listing');
  const text = await dbx(['token', 'list']);
  assert.ok(text.stdout.includes(issued.jti) && !text.stdout.includes(signature));
  // Not lock.mdb: closing any descriptor of it drops this process's POSIX locks on it, and the
  // in-process server's LMDB reader slot would then look stale to the CLI's processes.
  for (const file of readdirSync(join(server.dataDir, TOKEN_LEDGER_DIR)).filter((f) => f !== 'lock.mdb')) {
    const bytes = readFileSync(join(server.dataDir, TOKEN_LEDGER_DIR, file));
    assert.ok(!bytes.includes(Buffer.from(signature)), `${file} holds no signature`);
  }
  // The bootstrap token is in the ledger too.
  const root = items.find((r) => r.subject === 'cli:bootstrap');
  assert.ok(root && root.status === 'active');
});

test('ledger - revoke and refresh from the CLI take effect on the running server within a second', { timeout: 60_000 }, async () => {
  const a = await generate(['--action', '*', '--tenant', 'default']);
  assert.equal((await appendAs(a.token)).status, 201);
  const revoked = await dbx(['token', 'revoke', '--token', a.jti, '--reason', 'laptop lost']);
  assert.equal(revoked.code, 0, revoked.stderr);
  const took = await within(1000, async () => (await appendAs(a.token)).status === 401);
  assert.ok(took <= 1000);
  assertError(await appendAs(a.token), 401, 'unauthorized');
  // Revoking by value works as well; a revoked token cannot be refreshed.
  const b = await generate(['--action', '*', '--tenant', 'default']);
  assert.equal((await appendAs(b.token)).status, 201, 'cached as verified before the refresh');
  const refreshed = await runDbx(['token', 'refresh', '--token', b.token, '--expiration', '120', '--json', '--data-dir', server.dataDir]);
  assert.equal(refreshed.code, 0, refreshed.stderr);
  const fresh = JSON.parse(refreshed.stdout) as { token: string; jti: string; expires_at: string; issued_at: string };
  assert.notEqual(fresh.jti, b.jti);
  assert.equal(Date.parse(fresh.expires_at) - Date.parse(fresh.issued_at), 120_000);
  await within(1000, async () => (await appendAs(b.token)).status === 401);
  assert.equal((await appendAs(fresh.token)).status, 201);
  const again = await dbx(['token', 'refresh', '--token', b.jti]);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /revoked/);
  const listed = JSON.parse((await dbx(['token', 'list', '--json'])).stdout) as Record<string, any>[];
  const old = listed.find((r) => r.jti === b.jti);
  assert.equal(old?.status, 'revoked');
  assert.equal(old?.replaced_by, fresh.jti);
  // Unknown jti: a clear refusal.
  const unknown = await dbx(['token', 'revoke', 'no-such-jti']);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /not found/);
});

test('ledger - /v1/tokens: list, issue, revoke, refresh for token.admin; an admin grants only what it holds', { timeout: 60_000 }, async () => {
  const as = (tok: string, method: string, path: string, body?: unknown, headers?: Record<string, string>) => httpRequest(server.url, tok, method, path, body, headers);
  const issued = await as(server.token, 'POST', '/v1/tokens', { group: 'svc', user: 'billing', actions: ['aggregate.read', 'aggregate.append'], tenants: ['default'], write_limit: 3, expiration_secs: 300 });
  assert.equal(issued.status, 201, JSON.stringify(issued.body));
  assert.equal(issued.body.record.issued_by, 'cli:root', 'the issuer is who called');
  const tok = issued.body.token as string;
  assert.equal((await appendAs(tok)).status, 201);
  const one = await as(server.token, 'GET', `/v1/tokens/${issued.body.record.jti}`);
  assert.equal(one.body.writes_remaining, 2);
  const list = await as(server.token, 'GET', '/v1/tokens');
  assert.ok(list.body.items.some((r: any) => r.jti === issued.body.record.jti));
  assert.ok(!JSON.stringify(list.body).includes(tok.split('.')[2] as string));
  // Refresh over HTTP keeps what was left of the allowance (a refresh never adds writes).
  const refreshed = await as(server.token, 'POST', `/v1/tokens/${issued.body.record.jti}/refresh`, {});
  assert.equal(refreshed.status, 201);
  assert.equal(refreshed.body.record.limits.write_events, 2);
  assertError(await appendAs(tok), 401, 'unauthorized');
  const revoked = await as(server.token, 'POST', `/v1/tokens/${refreshed.body.record.jti}/revoke`, { reason: 'done' });
  assert.equal(revoked.body.status, 'revoked');
  assertError(await appendAs(refreshed.body.token), 401, 'unauthorized');

  // A tenant's administrator: sees only its tenant's tokens, cannot grant another tenant or more actions.
  const admin = (await as(server.token, 'POST', '/v1/tokens', { group: 'acme', user: 'admin', actions: ['token.admin', 'aggregate.read'], tenants: ['acme'] })).body.token as string;
  const h = { 'x-tenant-id': 'acme' };
  assertError(await as(admin, 'POST', '/v1/tokens', { group: 'x', user: 'y', actions: ['aggregate.read'], tenants: ['other'] }, h), 403, 'forbidden');
  assertError(await as(admin, 'POST', '/v1/tokens', { group: 'x', user: 'y', actions: ['aggregate.append'], tenants: ['acme'] }, h), 403, 'forbidden');
  assertError(await as(admin, 'POST', '/v1/tokens', { group: 'x', user: 'y', actions: ['*'], tenants: ['acme'] }, h), 403, 'forbidden');
  assertError(await as(admin, 'POST', '/v1/tokens/rotate-keys', {}, h), 403, 'forbidden');
  const child = await as(admin, 'POST', '/v1/tokens', { group: 'x', user: 'y', actions: ['aggregate.read'], tenants: ['acme'] }, h);
  assert.equal(child.status, 201);
  const seen = (await as(admin, 'GET', '/v1/tokens', undefined, h)).body.items as { tenants: string[]; jti: string }[];
  assert.ok(seen.length >= 2 && seen.every((r) => r.tenants.length === 1 && r.tenants[0] === 'acme'));
  assertError(await as(admin, 'GET', `/v1/tokens/${issued.body.record.jti}`, undefined, h), 404, 'not_found');
  assertError(await as(admin, 'POST', `/v1/tokens/${issued.body.record.jti}/revoke`, {}, h), 404, 'not_found');
  // Bad bodies: 400 in the error model.
  assertError(await as(server.token, 'POST', '/v1/tokens', { group: 'x', user: 'y', actions: [] }), 400, 'validation_failed');
  assertError(await as(server.token, 'POST', '/v1/tokens', { group: 'x', user: 'y', actions: ['drop.tables!'] }), 400, 'validation_failed');
  assertError(await as(server.token, 'POST', '/v1/tokens', { group: 'x', user: 'y', actions: ['*'], extra: 1 }), 400, 'validation_failed');
});

test('ledger - a token administrator manages only tokens it could have issued: no root refresh or revoke, no lifted limits, nothing outliving it', { timeout: 60_000 }, async () => {
  const as = (tok: string, method: string, path: string, body?: unknown) => httpRequest(server.url, tok, method, path, body);
  const issue = async (body: Record<string, unknown>, by = server.token) => {
    const res = await as(by, 'POST', '/v1/tokens', body);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body as { token: string; record: { jti: string } };
  };
  // A default-tenant token administrator (no tenants given: `default` only).
  const td = await issue({ group: 'g', user: 'td', actions: ['token.admin'] });
  // Tokens serving every tenant: a `*` token without tenants, and cli.token itself.
  const root = await issue({ group: 'ops', user: 'admin', actions: ['*'], expiration_secs: 0 });
  const cliJti = ((await as(server.token, 'GET', '/v1/tokens')).body.items as { jti: string; subject: string }[]).find((r) => r.subject === 'cli:bootstrap')?.jti as string;
  assert.ok(cliJti);
  const seen = ((await as(td.token, 'GET', '/v1/tokens')).body.items as { jti: string }[]).map((r) => r.jti);
  assert.ok(!seen.includes(root.record.jti) && !seen.includes(cliJti), 'every-tenant tokens are not listed to a tenant administrator');
  for (const jti of [root.record.jti, cliJti]) {
    assertError(await as(td.token, 'GET', `/v1/tokens/${jti}`), 404, 'not_found');
    assertError(await as(td.token, 'POST', `/v1/tokens/${jti}/refresh`, {}), 404, 'not_found');
    assertError(await as(td.token, 'POST', `/v1/tokens/${jti}/revoke`, {}), 404, 'not_found');
  }
  assert.equal((await as(server.token, 'GET', '/v1/status')).status, 200, 'cli.token still works');
  // A token of its own tenant with more actions than it holds: visible, but not its to refresh or revoke.
  const wide = await issue({ group: 'g', user: 'wide', actions: ['*'], tenants: ['default'] });
  assert.equal((await as(td.token, 'GET', `/v1/tokens/${wide.record.jti}`)).status, 200);
  assertError(await as(td.token, 'POST', `/v1/tokens/${wide.record.jti}/refresh`, {}), 403, 'forbidden');
  assertError(await as(td.token, 'POST', `/v1/tokens/${wide.record.jti}/revoke`, {}), 403, 'forbidden');
  assert.equal((await appendAs(wide.token, 'td-wide')).status, 201, 'the refused refresh left the token working');

  // A write-limited token administrator cannot refresh itself to lift its limit.
  const limited = await issue({ group: 'g', user: 'lim', actions: ['token.admin', 'aggregate.append', 'aggregate.create'], tenants: ['default'], write_limit: 1 });
  assert.equal((await appendAs(limited.token, 'td-lim')).status, 201);
  assertError(await appendAs(limited.token, 'td-lim'), 429, 'write_limit_exhausted');
  assertError(await as(limited.token, 'POST', `/v1/tokens/${limited.record.jti}/refresh`, { write_limit: 1000 }), 403, 'forbidden');
  assertError(await as(limited.token, 'POST', `/v1/tokens/${limited.record.jti}/refresh`, { expiration_secs: 0 }), 403, 'forbidden');
  // Nor does anyone's refresh add writes: write_limit only lowers what is left.
  const raised = await as(server.token, 'POST', `/v1/tokens/${limited.record.jti}/refresh`, { write_limit: 1000 });
  assert.equal(raised.status, 201);
  assert.equal(raised.body.record.writes_remaining, 0);
  assertError(await appendAs(raised.body.token, 'td-lim'), 429, 'write_limit_exhausted');

  // An administrator whose token expires grants nothing that outlives it.
  const brief = await issue({ group: 'g', user: 'brief', actions: ['token.admin', 'aggregate.read'], tenants: ['default'], expiration_secs: 60 });
  assertError(await as(brief.token, 'POST', '/v1/tokens', { group: 'g', user: 'forever', actions: ['aggregate.read'], tenants: ['default'], expiration_secs: 0 }), 403, 'forbidden');
  assertError(await as(brief.token, 'POST', '/v1/tokens', { group: 'g', user: 'kept', actions: ['aggregate.read'], tenants: ['default'], expiration_secs: 30, keep_alive: true }), 403, 'forbidden');
  assertError(await as(brief.token, 'POST', '/v1/tokens', { group: 'g', user: 'later', actions: ['aggregate.read'], tenants: ['default'], expiration_secs: 3600 }), 403, 'forbidden');
  assertError(await as(brief.token, 'POST', `/v1/tokens/${brief.record.jti}/refresh`, { expiration_secs: 3600 }), 403, 'forbidden');
  const within = await as(brief.token, 'POST', '/v1/tokens', { group: 'g', user: 'short', actions: ['aggregate.read'], tenants: ['default'], expiration_secs: 30 });
  assert.equal(within.status, 201, JSON.stringify(within.body));
  // Without a lifetime of its own choosing, the default is cut to what is left of the issuer's.
  const plain = await as(brief.token, 'POST', '/v1/tokens', { group: 'g', user: 'plain', actions: ['aggregate.read'], tenants: ['default'] });
  assert.equal(plain.status, 201, JSON.stringify(plain.body));
  assert.ok(Date.parse(plain.body.record.expires_at) <= Date.parse((brief.record as unknown as { expires_at: string }).expires_at), 'never outlives its issuer');
  // Its own children it may refresh, within its lifetime.
  assert.equal((await as(brief.token, 'POST', `/v1/tokens/${within.body.record.jti}/refresh`, { expiration_secs: 20 })).status, 201);
});

test('write limits - 12 concurrent writes with --limit 5: exactly 5 × 201 and 7 × 429; refusals cost nothing', { timeout: 60_000 }, async () => {
  const { token } = await generate(['--action', '*', '--tenant', 'default', '--limit', '5']);
  const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => appendAs(token, `lim-${i}`)));
  const counts = answers.reduce<Record<number, number>>((acc, a) => ((acc[a.status] = (acc[a.status] ?? 0) + 1), acc), {});
  assert.deepEqual(counts, { 201: 5, 429: 7 });
  for (const a of answers.filter((x) => x.status === 429)) assertError(a, 429, 'write_limit_exhausted');

  // Every kind of write counts; a refused write (409, 400) and an idempotent replay cost nothing.
  const b = await generate(['--action', '*', '--tenant', 'default', '--limit', '6']);
  const as = (method: string, path: string, body?: unknown) => httpRequest(server.url, b.token, method, path, body);
  assert.equal((await as('POST', '/v1/aggregates/order/w-1', { event_type: 'created', payload: {} })).status, 201); // 1
  assertError(await as('POST', '/v1/aggregates/order/w-1', { event_type: 'created', payload: {} }), 409, 'already_exists'); // free
  assert.equal((await as('POST', '/v1/aggregates/order/w-1/patch', { event_type: 'patched', patch: [{ op: 'add', path: '/a', value: 1 }] })).status, 201); // 2
  assertError(await as('POST', '/v1/aggregates/order/w-1/events', { event_type: 'x', payload: {}, expected_version: 99 }), 409, 'version_conflict'); // free
  assert.equal((await as('POST', '/v1/aggregates/order/w-1/events', { event_type: 'x', payload: {}, idempotency_key: 'k1' })).status, 201); // 3
  assert.equal((await as('POST', '/v1/aggregates/order/w-1/events', { event_type: 'x', payload: {}, idempotency_key: 'k1' })).status, 201); // replay: free
  assert.equal((await as('POST', '/v1/aggregates/order/w-1/archive', {})).status, 200); // 4
  assert.equal((await as('POST', '/v1/aggregates/order/w-1/restore', {})).status, 200); // 5
  // A batch of two needs two: one left, so it is refused whole and costs nothing.
  const batch = { events: [1, 2].map((n) => ({ aggregate_type: 'order', aggregate_id: `wb-${n}`, event_type: 'x', payload: {} })) };
  assertError(await as('POST', '/v1/batch', batch), 429, 'write_limit_exhausted');
  assert.equal((await as('POST', '/v1/batch', { events: batch.events.slice(0, 1) })).status, 201); // 6
  assertError(await as('POST', '/v1/aggregates/order/w-1/events', { event_type: 'x', payload: {} }), 429, 'write_limit_exhausted');
  // Reads are never limited.
  assert.equal((await as('GET', '/v1/aggregates/order/w-1')).status, 200);
  const view = (await httpRequest(server.url, server.token, 'GET', `/v1/tokens/${b.jti}`)).body;
  assert.equal(view.writes_remaining, 0);
  assert.equal(view.writes_used, 6);
  // The CLI reads the ledger, which the server brings up to date within a moment.
  await within(2000, async () => JSON.parse((await dbx(['token', 'list', '--json'])).stdout).find((r: any) => r.jti === b.jti).writes_used === 6);
});

test('write limits - across a restart and SIGKILL the count never grants more than N', { timeout: 120_000 }, async () => {
  const dataDir = tempDataDir();
  let child: SpawnedServer | undefined;
  try {
    child = await spawnServer({ dataDir });
    const { token } = await generate(['--action', '*', '--tenant', 'default', '--limit', '20'], dataDir);
    const write = (i: number) => httpRequest((child as SpawnedServer).url, token, 'POST', `/v1/aggregates/order/k-${i}/events`, { event_type: 'x', payload: {} }).catch(() => ({ status: 0 }));
    let accepted = 0;
    for (let i = 0; i < 5; i++) if ((await write(i)).status === 201) accepted++;
    // Writes in flight when the process is killed: their refunds may be lost, never their count.
    const inflight = Array.from({ length: 10 }, (_, i) => write(100 + i));
    await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGKILL');
    await child.exited;
    accepted += (await Promise.all(inflight)).filter((a) => a.status === 201).length;
    child = await spawnServer({ dataDir });
    for (let i = 0; i < 30; i++) if ((await write(200 + i)).status === 201) accepted++;
    assert.ok(accepted <= 20, `${accepted} accepted of 20`);
    // What the store holds agrees: never more events than the allowance.
    const list = await httpRequest(child.url, child.token, 'GET', '/v1/aggregates/order?take=1000');
    assert.ok(list.body.items.length <= 20, `${list.body.items.length} aggregates written`);
    assert.ok(list.body.items.length >= accepted);
  } finally {
    if (child) await stopSpawned(child);
    removeDir(dataDir);
  }
});

test('identity - issued_by always comes from the token; a body that sets it is refused', { timeout: 30_000 }, async () => {
  const { token } = await generate(['--action', '*', '--tenant', 'default']);
  const ok = await appendAs(token, 'id-1');
  assert.deepEqual(ok.body.metadata.issued_by, { group: 'team', user: 'ada' });
  assertError(await appendAs(token, 'id-1', { issued_by: { group: 'root', user: 'admin' } }), 400, 'validation_failed');
  assertError(await appendAs(token, 'id-1', { metadata: { issued_by: { group: 'root', user: 'admin' } } }), 400, 'validation_failed');
  assertError(await httpRequest(server.url, token, 'POST', '/v1/batch', { events: [{ aggregate_type: 'order', aggregate_id: 'id-2', event_type: 'x', payload: {}, issued_by: { group: 'r', user: 'a' } }] }), 400, 'validation_failed');
  const events = await httpRequest(server.url, token, 'GET', '/v1/aggregates/order/id-1/events');
  assert.ok(events.body.items.every((e: any) => e.metadata.issued_by.group === 'team' && e.metadata.issued_by.user === 'ada'));
});

test('key hygiene - config.toml, cli.token and the ledger are 0600, the data dir and ledger dir 0700', { timeout: 30_000 }, async () => {
  const mode = (p: string) => statSync(p).mode & 0o777;
  assert.equal(mode(server.dataDir), 0o700);
  assert.equal(mode(join(server.dataDir, 'config.toml')), 0o600);
  assert.equal(mode(join(server.dataDir, 'cli.token')), 0o600);
  assert.equal(mode(join(server.dataDir, TOKEN_LEDGER_DIR)), 0o700);
  for (const file of readdirSync(join(server.dataDir, TOKEN_LEDGER_DIR))) assert.equal(mode(join(server.dataDir, TOKEN_LEDGER_DIR, file)), 0o600, file);
});

test('key rotation - rotate-keys (server running and stopped) replaces the pair; old tokens are refused', { timeout: 120_000 }, async () => {
  const dataDir = tempDataDir();
  const children: SpawnedServer[] = [];
  try {
    const child = await spawnServer({ dataDir });
    children.push(child);
    const before = readConfig(dataDir).config.auth;
    const user = await generate(['--action', '*', '--tenant', 'default', '--expiration', '0'], dataDir);
    const oldRoot = child.token;
    assert.equal((await httpRequest(child.url, user.token, 'GET', '/v1/aggregates')).status, 200);
    const rotated = await runDbx(['token', 'rotate-keys', '--json', '--data-dir', dataDir]);
    assert.equal(rotated.code, 0, rotated.stderr);
    const after = readConfig(dataDir).config.auth;
    assert.notEqual(after.public_key, before.public_key);
    assert.notEqual(after.private_key, before.private_key);
    assertError(await httpRequest(child.url, user.token, 'GET', '/v1/aggregates'), 401, 'unauthorized');
    assertError(await httpRequest(child.url, oldRoot, 'GET', '/v1/aggregates'), 401, 'unauthorized');
    const newRoot = readCliToken(dataDir);
    assert.notEqual(newRoot, oldRoot);
    assert.equal((await httpRequest(child.url, newRoot, 'GET', '/v1/aggregates')).status, 200);
    // A token signed with the old private key, even one never recorded, is refused.
    const forged = issueToken(before, { group: 'g', user: 'u', actions: ['*'] }).token;
    assertError(await httpRequest(child.url, forged, 'GET', '/v1/aggregates'), 401, 'unauthorized');
    await stopSpawned(child);
    // Stopped server: the CLI rotates on its own; the next start uses the new pair.
    const second = await runDbx(['token', 'rotate-keys', '--data-dir', dataDir]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /rotated signing keys/);
    const restarted = await spawnServer({ dataDir });
    children.push(restarted);
    assertError(await httpRequest(restarted.url, newRoot, 'GET', '/v1/aggregates'), 401, 'unauthorized');
    assert.equal((await httpRequest(restarted.url, restarted.token, 'GET', '/v1/aggregates')).status, 200);
  } finally {
    for (const c of children) await stopSpawned(c);
    removeDir(dataDir);
  }
});
