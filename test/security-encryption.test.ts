/**
 * Encryption at rest (issue 10 item 5): payloads, `@` metadata, notes, states, snapshots, batch
 * intents and the CLI's stage are sealed with AES-256-GCM under a DEK that a first start generates;
 * ids, versions, hashes and roots stay readable. Written through a real server (the `dbx` binary, so
 * its log is seen too), then every byte under the data dir is searched for a marker.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { consistencyProof, dataKeyId, shardFor, generateDataKey, inclusionProof, readConfig, rootOf, sealedKeyId, verifyConsistency, verifyInclusion } from '../src/core/index.js';
import { readLayout, workerEnvPath, workerOfShard } from '../src/coordinator/layout.js';
import { WorkerEnv, type ShardStore } from '../src/shard-worker/index.js';
import { assertError, openShards, shardHolding } from './helpers/assertions.js';
import { removeDir, runDbx, spawnServer, startServerInProcess, stopSpawned, tempDataDir, writeConfigToml, type TestServer } from './helpers/server.js';

const MARKER = `Zq7mark${randomBytes(6).toString('hex')}`;
const TYPE = 'secret';
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) removeDir(dir);
});

function dir(prefix: string): string {
  const d = tempDataDir(prefix);
  dirs.push(d);
  return d;
}

/** Every regular file under `root`, recursively. */
function filesUnder(root: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    const stat = statSync(path);
    if (stat.isDirectory()) out.push(...filesUnder(path));
    else if (stat.isFile()) out.push(path);
  }
  return out;
}

function filesHolding(root: string, text: string): string[] {
  const needle = Buffer.from(text, 'utf8');
  return filesUnder(root).filter((path) => readFileSync(path).includes(needle));
}

function dbxIn(dataDir: string, args: string[], env: Record<string, string> = {}): ReturnType<typeof runDbx> {
  return runDbx(args, { env: { EVENTDBX_DATA_DIR: dataDir, EVENTDBX_TOKEN: '', EVENTDBX_TENANT_ID: '', ...env }, timeoutMs: 30_000 });
}

/** A data dir's shards opened with no key at all: what someone holding only a copy of it can read. */
function openShardsWithoutKey(dataDir: string): ShardStore[] {
  const { config } = readConfig(dataDir);
  const layout = readLayout(dataDir);
  assert.ok(layout);
  const envs = new Map<number, WorkerEnv>();
  const stores: ShardStore[] = [];
  for (let s = 0; s < layout.shard_count; s++) {
    const w = workerOfShard(s, layout);
    let env = envs.get(w);
    if (!env) {
      env = new WorkerEnv(workerEnvPath(dataDir, w), { mapSizeMib: config.storage.map_size_mib });
      envs.set(w, env);
    }
    stores.push(env.shard(s));
  }
  return stores;
}

/** Like shardHolding, by the head's readable part (getHead would need the key for the state). */
function holdingWithoutKey(stores: ShardStore[], id: string): ShardStore {
  const found = stores.filter((s) => s.getHeadMeta('default', TYPE, id) !== undefined);
  assert.equal(found.length, 1);
  return found[0] as ShardStore;
}

function keyIdsOf(dataDir: string): string[] {
  return (JSON.parse(readFileSync(join(dataDir, 'data_keys.json'), 'utf8')) as { keys: { id: string }[] }).keys.map((k) => k.id);
}

async function must(server: TestServer, method: string, path: string, body?: unknown): Promise<any> {
  const res = await server.request(method, path, body);
  assert.ok(res.status === 200 || res.status === 201, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

// One data dir for the marker, restart, proof and rotation tests (in order).
const main = dir('edbx-enc-');
const PLACEMENT = { shardCount: 4, multiTenant: false };
/** Worker of an id with the default 4 shards on 2 workers (shard s on worker s mod 2). */
const workerOf = (id: string): number => shardFor(PLACEMENT, 'default', TYPE, id) % 2;
/** s-1, then two more ids on each worker: the batch below spans both. */
const ids = ['s-1', ...[0, 1].flatMap((w) => Array.from({ length: 40 }, (_, i) => `s-${i + 2}`).filter((id) => workerOf(id) === w).slice(0, 2))];

test('encryption - no file under the data dir holds a marker written as payload, @ metadata, note, snapshot, batch, import or stage', { timeout: 120_000 }, async () => {
  // Two workers: a batch over aggregates of both goes through a cross-worker intent in LMDB.
  const server = await spawnServer({ dataDir: main, configToml: 'snapshot_threshold = 2\n[storage]\nworkers = 2\n' });
  try {
    const base = `/v1/aggregates/${TYPE}/s-1`;
    // The schema registry: notes, rules and hidden field names are sealed too (DESIGN §5).
    await must(server, 'PUT', '/v1/schemas/vaulted', {
      events: { vault_opened: { fields: [], notes: MARKER } },
      column_types: { card: { type: 'text', does_not_contain: [MARKER] } },
      hidden_fields: [`f_${MARKER}`],
    });
    assert.equal((await must(server, 'GET', '/v1/schemas/vaulted')).schema.events.vault_opened.notes, MARKER, 'the sealed schema reads back');
    await must(server, 'POST', base, { event_type: 'opened', payload: { secret: MARKER, [`key_${MARKER}`]: 1 }, metadata: { '@tag': MARKER }, note: MARKER, idempotency_key: `idem-1` });
    await must(server, 'POST', `${base}/events`, { event_type: 'noted', payload: { more: `${MARKER}-2` }, metadata: { [`@m${MARKER.slice(-6)}`]: MARKER } });
    await must(server, 'POST', `${base}/patch`, { event_type: 'patched', patch: [{ op: 'add', path: '/patched', value: MARKER }] });
    await must(server, 'POST', `${base}/snapshots`, { comment: MARKER });
    await must(server, 'POST', `${base}/archive`, { comment: MARKER });
    await must(server, 'POST', `${base}/restore`, { comment: MARKER, note: MARKER });
    const batch = await must(server, 'POST', '/v1/batch', {
      events: ids.slice(1).map((id) => ({ aggregate_type: TYPE, aggregate_id: id, event_type: 'opened', payload: { secret: MARKER }, metadata: { '@tag': MARKER } })),
    });
    assert.equal(batch.events.length, 4);
    const imported = await server.request(
      'POST',
      '/v1/import',
      `${JSON.stringify({
        aggregate_type: TYPE,
        aggregate_id: 'imported-1',
        event_type: 'opened',
        version: 1,
        payload: { secret: MARKER },
        extensions: { '@tag': MARKER },
        metadata: { event_id: '900000000000000001', created_at: '2025-01-02T03:04:05.678Z', issued_by: { group: 'import', user: MARKER } },
      })}\n`,
      { 'content-type': 'application/x-ndjson' },
    );
    assert.equal(imported.status, 200, JSON.stringify(imported.body));
    // A refused write carrying the marker: the log must not repeat it either.
    assert.equal((await server.request('POST', `${base}/events`, { event_type: 'Bad Type', payload: { secret: MARKER } })).status, 400);

    // The CLI's stage: one staged event committed, one left in the file.
    const staged = await dbxIn(main, ['aggregate', 'apply', TYPE, 'staged-1', 'opened', '--field', `secret=${MARKER}`, '--stage']);
    assert.equal(staged.code, 0, staged.stderr);
    const committed = await dbxIn(main, ['aggregate', 'commit']);
    assert.equal(committed.code, 0, committed.stderr);
    assert.equal((await dbxIn(main, ['aggregate', 'apply', TYPE, 'staged-2', 'opened', '--field', `secret=${MARKER}`, '--stage'])).code, 0);
    const listed = await dbxIn(main, ['aggregate', 'list', '--stage', '--json']);
    assert.equal(JSON.parse(listed.stdout)[0].payload.secret, MARKER, 'the staged event reads back with the key');
    assert.equal((await must(server, 'GET', `/v1/aggregates/${TYPE}/staged-1`)).state.secret, MARKER);
    assert.equal(await stopSpawned(server), 0);
    assert.ok(!server.stdout().includes(MARKER) && !server.stderr().includes(MARKER), 'the server log never shows the marker');
  } finally {
    if (server.child.exitCode === null) await stopSpawned(server);
  }

  const layout = readLayout(main);
  assert.ok(layout && layout.workers === 2);
  const workers = new Set(ids.slice(1).map((id) => workerOfShard(shardFor({ shardCount: layout.shard_count, multiTenant: false }, 'default', TYPE, id), layout)));
  assert.equal(ids.length, 5);
  assert.equal(workers.size, 2, 'the batch spanned both workers (a cross-worker intent was written)');
  const files = filesUnder(main);
  assert.ok(files.some((f) => f.endsWith('data.mdb')), 'the LMDB files were searched');
  assert.ok(files.some((f) => f.endsWith('staged_events.json')), 'the stage file was searched');
  assert.deepEqual(filesHolding(main, MARKER), [], 'no file under the data dir holds the marker');
  // Readable without the key: ids, versions, hashes, roots.
  assert.ok(filesHolding(main, 's-1').length > 0, 'aggregate ids stay readable');
  const config = readFileSync(join(main, 'config.toml'), 'utf8');
  assert.match(config, /^data_encryption_key = "[A-Za-z0-9+/]{43}="$/m, 'the first start generated a DEK into config.toml');
  assert.equal(statSync(join(main, 'config.toml')).mode & 0o777, 0o600);
  assert.equal(keyIdsOf(main).length, 1, 'data_keys.json records the key id');
});

test('encryption - a restart reads every sealed value back; verify and proofs pass', { timeout: 60_000 }, async () => {
  const server = await startServerInProcess({ dataDir: main });
  try {
    const got = await must(server, 'GET', `/v1/aggregates/${TYPE}/s-1?include_events=true`);
    assert.equal(got.state.secret, MARKER);
    assert.equal(got.state.patched, MARKER);
    const events = (await must(server, 'GET', `/v1/aggregates/${TYPE}/s-1/events?take=10`)).items;
    assert.equal(events.length, 5);
    assert.deepEqual(events[0].extensions, { '@tag': MARKER });
    assert.equal(events[0].metadata.note, MARKER);
    assert.deepEqual(events[0].metadata.issued_by, { group: 'cli', user: 'root' });
    assert.equal(events[4].payload.comment, MARKER, 'the restore comment');
    const one = await must(server, 'GET', `/v1/events/${events[1].metadata.event_id}`);
    assert.deepEqual(one, events[1]);
    const snapshots = await must(server, 'GET', `/v1/aggregates/${TYPE}/s-1/snapshots`);
    assert.ok(snapshots.items.some((s: any) => s.comment === MARKER && s.state.secret === MARKER), 'the snapshot comment and state read back');
    // An old version is rebuilt from a (sealed) snapshot plus (sealed) events.
    assert.equal((await must(server, 'GET', `/v1/aggregates/${TYPE}/s-1?version=3`)).state.patched, MARKER);
    const all = await must(server, 'GET', `/v1/events?take=100`);
    assert.equal(all.items.length, 11, '5 events of s-1, 4 of the batch, 1 imported, 1 staged');
    assert.ok(all.items.every((e: any) => typeof e.payload === 'object' && !('sealed' in e)), 'listed events come back opened');
    const imported = await must(server, 'GET', `/v1/aggregates/${TYPE}/imported-1`);
    assert.equal(imported.state.secret, MARKER);

    for (const id of [...ids, 'imported-1', 'staged-1']) {
      const verified = await must(server, 'GET', `/v1/aggregates/${TYPE}/${id}/verify`);
      assert.equal(verified.valid, true, `${id}: ${JSON.stringify(verified)}`);
    }
    const inclusion = await must(server, 'GET', `/v1/aggregates/${TYPE}/s-1/proof?version=2`);
    assert.equal(inclusion.root, got.merkle_root);
    assert.ok(verifyInclusion(inclusion.leaf_hash, inclusion.version - 1, inclusion.tree_size, inclusion.proof, inclusion.root));
    const consistency = await must(server, 'GET', `/v1/aggregates/${TYPE}/s-1/proof?from_size=2`);
    assert.ok(verifyConsistency(consistency.from_size, consistency.to_size, consistency.from_root, consistency.to_root, consistency.proof));
    const cli = await dbxIn(main, ['aggregate', 'verify', TYPE, 's-1', '--json'], { EVENTDBX_TOKEN: server.token });
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(JSON.parse(cli.stdout).valid, true, 'dbx aggregate verify');
  } finally {
    await server.stop();
  }
});

test('encryption - without the key, the stored hashes still fold to the stored roots and proofs can be made; the state cannot be read', { timeout: 30_000 }, () => {
  const store = holdingWithoutKey(openShardsWithoutKey(main), 's-1');
  const head = store.getHeadMeta('default', TYPE, 's-1');
  assert.ok(head);
  const leaves = [...store.storedEventRange('default', TYPE, 's-1', 0)].map((json) => JSON.parse(json).hash as string);
  assert.equal(leaves.length, head.version);
  assert.equal(rootOf(leaves), head.merkle_root, 'the readable leaf hashes give the head root');
  const proof = inclusionProof(leaves, 1);
  assert.ok(verifyInclusion(leaves[1] as string, 1, leaves.length, proof, head.merkle_root));
  assert.ok(verifyConsistency(2, leaves.length, rootOf(leaves.slice(0, 2)), head.merkle_root, consistencyProof(leaves, 2)));
  assert.throws(() => store.getHead('default', TYPE, 's-1'), /encrypted but no data encryption key/);
  assert.throws(() => [...store.eventRange('default', TYPE, 's-1', 0)], /encrypted but no data encryption key/);
  // The idempotency entry's key is stored as a keyed tag (not as given), its fingerprint (a hash
  // of the content) sealed.
  assert.equal(store.idempotency.get(['default', TYPE, 's-1', 'idem-1']), undefined, 'no entry under the key as given');
  const tagged = [...store.idempotency.db.getRange({ start: [store.shard, 'default', TYPE, 's-1'], end: [store.shard, 'default', TYPE, 's-1\u0000'] })];
  assert.equal(tagged.length, 1, 'one entry for the aggregate');
  assert.match(String((tagged[0]?.key as unknown[])[4]), /^\u0000t1[0-9a-f]{16}[A-Za-z0-9_-]{32}$/);
  assert.throws(() => [...store.idempotency.getRange()], /encrypted but no data encryption key/);
});

test('encryption - a wrong DEK refuses to start with one clear line; so does a key whose check value fails', { timeout: 60_000 }, async () => {
  const start = (env: Record<string, string>) => runDbx(['start', '--foreground', '--data-dir', main, '--port', '0'], { env, timeoutMs: 20_000 });
  const wrong = await start({ EVENTDBX_DATA_ENCRYPTION_KEY: generateDataKey() });
  assert.equal(wrong.code, 1, `${wrong.stdout}${wrong.stderr}`);
  const lines = wrong.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${wrong.stderr}`);
  assert.match(lines[0] as string, new RegExp(`^error: invalid_input: wrong data encryption key: .*key ${keyIdsOf(main)[0]}.*EVENTDBX_DATA_ENCRYPTION_KEY`));

  const malformed = await start({ EVENTDBX_DATA_ENCRYPTION_KEY: 'not-a-key' });
  assert.equal(malformed.code, 1);
  assert.match(malformed.stderr.trim(), /^error: invalid_input: EVENTDBX_DATA_ENCRYPTION_KEY: data encryption key must be base64 of 32 bytes \(256 bits\)$/);

  const registryPath = join(main, 'data_keys.json');
  const registry = readFileSync(registryPath, 'utf8');
  try {
    const parsed = JSON.parse(registry);
    const check = Buffer.from(parsed.keys[0].check, 'base64');
    check[check.length - 1] = (check[check.length - 1] as number) ^ 1;
    parsed.keys[0].check = check.toString('base64');
    writeFileSync(registryPath, JSON.stringify(parsed));
    const altered = await start({});
    assert.equal(altered.code, 1);
    assert.match(altered.stderr.trim(), /^error: invalid_input: wrong data encryption key: key [0-9a-f]{16} does not open its check value/);
  } finally {
    writeFileSync(registryPath, registry);
  }
});

test('encryption - rotate-dek: old values stay readable, new ones are sealed under the new key id', { timeout: 60_000 }, async () => {
  const [oldId] = keyIdsOf(main);
  const oldKey = readConfig(main).config.data_encryption_key;
  const rotated = await dbxIn(main, ['config', '--rotate-dek']);
  assert.equal(rotated.code, 0, rotated.stderr);
  const { config } = readConfig(main);
  const newId = dataKeyId(Buffer.from(config.data_encryption_key, 'base64'));
  assert.notEqual(newId, oldId);
  assert.deepEqual(config.data_encryption_keys_retired, [oldKey]);
  assert.match(rotated.stdout, new RegExp(`key ${newId} seals new values; ${oldId} stay configured`));
  assert.ok(!rotated.stdout.includes(config.data_encryption_key) && !rotated.stdout.includes(oldKey), 'no key is printed');
  // Replacing the key outright would strand what the old one sealed.
  const replace = await dbxIn(main, ['config', '--dek', generateDataKey()]);
  assert.equal(replace.code, 1);
  assert.match(replace.stderr, /--dek would drop key .*add --rotate-dek/);

  const server = await startServerInProcess({ dataDir: main });
  try {
    assert.equal((await must(server, 'GET', `/v1/aggregates/${TYPE}/${ids[1]}`)).state.secret, MARKER, 'an old value reads with the retired key');
    await must(server, 'POST', `/v1/aggregates/${TYPE}/${ids[1]}/events`, { event_type: 'noted', payload: { after: 'rotation' } });
    assert.equal((await must(server, 'GET', `/v1/aggregates/${TYPE}/${ids[1]}/verify`)).valid, true);
  } finally {
    await server.stop();
  }
  assert.deepEqual(keyIdsOf(main), [newId, oldId], 'the start recorded the new key id');
  const store = holdingWithoutKey(openShardsWithoutKey(main), ids[1] as string);
  const [v1, v2] = [...store.storedEventRange('default', TYPE, ids[1] as string, 0)].map((json) => sealedKeyId(Buffer.from(JSON.parse(json).sealed, 'base64')));
  assert.equal(v1, oldId, 'version 1 stays under the old key');
  assert.equal(v2, newId, 'version 2 is sealed under the new key');
  const head = store.storedHeads.get(['default', TYPE, ids[1] as string]) as unknown as { sealed: Uint8Array };
  assert.equal(sealedKeyId(head.sealed), newId, 'the rewritten head state too');

  // Without the retired key, the start names the key it misses (config.toml restored after).
  const configPath = join(main, 'config.toml');
  const saved = readFileSync(configPath, 'utf8');
  try {
    writeConfigToml(main, saved.replace(/^data_encryption_keys_retired = .*$/m, 'data_encryption_keys_retired = []'));
    const withoutOld = await runDbx(['start', '--foreground', '--data-dir', main, '--port', '0'], { timeoutMs: 20_000 });
    assert.equal(withoutOld.code, 1);
    assert.match(withoutOld.stderr.trim(), new RegExp(`^error: invalid_input: wrong data encryption key: .*key ${oldId}, which data_encryption_key does not provide`));
  } finally {
    writeFileSync(configPath, saved, { mode: 0o600 });
  }
});

test('encryption - dbx config never prints the signing key or a DEK unless --show-secrets', { timeout: 30_000 }, async () => {
  const { config } = readConfig(main);
  const secrets = [config.auth.private_key, config.data_encryption_key, ...config.data_encryption_keys_retired];
  assert.ok(secrets.length >= 3 && secrets.every((s) => s.length > 20));
  for (const args of [['config'], ['config', '--json']]) {
    const shown = await dbxIn(main, args);
    assert.equal(shown.code, 0, shown.stderr);
    for (const secret of secrets) assert.ok(!shown.stdout.includes(secret), `dbx ${args.join(' ')} hides a secret`);
    assert.match(shown.stdout, /hidden; dbx config --show-secrets prints it/);
  }
  const revealed = await dbxIn(main, ['config', '--show-secrets']);
  for (const secret of secrets) assert.ok(revealed.stdout.includes(secret), '--show-secrets prints it');
});

test('encryption - an altered ciphertext is reported by verify and refused by reads (integrity_failed)', { timeout: 60_000 }, async () => {
  const stores = openShards(main);
  const store = shardHolding(stores, 'default', TYPE, ids[3] as string);
  const stored = store.storedEvents.get(['default', TYPE, ids[3] as string, 1]) as string;
  const record = JSON.parse(stored);
  const bytes = Buffer.from(record.sealed, 'base64');
  bytes[30] = (bytes[30] as number) ^ 0x40;
  store.env.transactionSync(() => store.storedEvents.put(['default', TYPE, ids[3] as string, 1], JSON.stringify({ ...record, sealed: bytes.toString('base64') })));
  await store.env.flushed;
  const server = await startServerInProcess({ dataDir: main });
  try {
    const verified = await must(server, 'GET', `/v1/aggregates/${TYPE}/${ids[3]}/verify`);
    assert.equal(verified.valid, false);
    assert.equal(verified.problems[0].kind, 'event_unreadable');
    assertError(await server.request('GET', `/v1/aggregates/${TYPE}/${ids[3]}/events`), 500, 'integrity_failed');
    // Proofs need only the readable hashes: still served.
    await must(server, 'GET', `/v1/aggregates/${TYPE}/${ids[3]}/proof?version=1`);
  } finally {
    await server.stop();
  }
});

test('encryption - a data dir written without encryption keeps its plaintext readable once a key is on; a key file outside the data dir works', { timeout: 90_000 }, async () => {
  const legacy = dir('edbx-enc-legacy-');
  const first = await startServerInProcess({ dataDir: legacy, configToml: 'encryption_at_rest = false\n' });
  try {
    await must(first, 'POST', `/v1/aggregates/${TYPE}/old`, { event_type: 'opened', payload: { plain: MARKER } });
    await must(first, 'PUT', '/v1/schemas/legacy_schema', { events: { legacy_opened: { fields: [], notes: `${MARKER}-schema` } } });
  } finally {
    await first.stop();
  }
  assert.ok(filesHolding(legacy, `${MARKER}-schema`).length > 0, 'with encryption off the schema is stored in plaintext');
  assert.ok(filesHolding(legacy, MARKER).length > 0, 'with encryption off the payload is stored in plaintext');
  assert.equal(existsSync(join(legacy, 'data_keys.json')), false);
  assert.equal(readConfig(legacy).config.data_encryption_key, '', 'no key was generated');

  // The operator turns it on with a key kept outside the data dir.
  const keyDir = dir('edbx-enc-keys-');
  const keyFile = join(keyDir, 'dek');
  writeConfigToml(legacy, readFileSync(join(legacy, 'config.toml'), 'utf8').replace('encryption_at_rest = false', 'encryption_at_rest = true'));
  const moved = await dbxIn(legacy, ['config', '--dek-file', keyFile]);
  assert.equal(moved.code, 0, moved.stderr);
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  assert.equal(readConfig(legacy).config.data_encryption_key, '', 'config.toml holds no key');

  const second = await startServerInProcess({ dataDir: legacy });
  try {
    assert.equal((await must(second, 'GET', `/v1/aggregates/${TYPE}/old`)).state.plain, MARKER, 'the plaintext value reads');
    await must(second, 'POST', `/v1/aggregates/${TYPE}/old/events`, { event_type: 'noted', payload: { sealed_now: `${MARKER}-new` } });
    assert.equal((await must(second, 'GET', `/v1/aggregates/${TYPE}/old/verify`)).valid, true, 'a mixed history verifies');
    assert.equal((await must(second, 'GET', '/v1/schemas/legacy_schema')).schema.events.legacy_opened.notes, `${MARKER}-schema`, 'the schema written in plaintext reads');
    assert.equal((await must(second, 'GET', '/v1/schemas/legacy_schema/versions')).items.length, 1, 'and so does its history');
  } finally {
    await second.stop();
  }
  // Every registry value is sealed now (the old plaintext pages are free pages LMDB reuses later).
  const lmdb = new URL('../../node_modules/lmdb/dist/index.cjs', import.meta.url).pathname;
  const script = `const { open } = require(${JSON.stringify(lmdb)});
    const env = open({ path: ${JSON.stringify(join(legacy, 'registry'))}, maxDbs: 4, readOnly: true });
    const out = [];
    for (const name of ['schemas', 'schema_versions']) for (const { value } of env.openDB({ name }).getRange({})) out.push(value && typeof value === 'object' && 'sealed' in value ? 'sealed' : 'plain');
    console.log(JSON.stringify(out));`;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), ['sealed', 'sealed'], 'the registry values were sealed once a key was on');
  assert.deepEqual(filesHolding(legacy, `${MARKER}-new`), [], 'the new write is sealed');
  const keyText = readFileSync(keyFile, 'utf8').split('\n').find((l) => l && !l.startsWith('#')) as string;
  assert.ok(filesUnder(legacy).every((f) => !readFileSync(f).includes(Buffer.from(keyText))), 'no file under the data dir holds the key');

  // Turning encryption back off once values are sealed is refused with one line.
  writeConfigToml(legacy, readFileSync(join(legacy, 'config.toml'), 'utf8').replace('encryption_at_rest = true', 'encryption_at_rest = false'));
  const off = await runDbx(['start', '--foreground', '--data-dir', legacy, '--port', '0'], { timeoutMs: 20_000 });
  assert.equal(off.code, 1);
  assert.match(off.stderr.trim(), /^error: invalid_input: this data dir holds values sealed with data encryption key [0-9a-f]{16}, but no key is configured \(encryption_at_rest = false/);
});
