/**
 * `dbx proof check`: verification of the proofs the server hands out (DESIGN §4). A proof is only
 * called valid against a root the user trusts (`--root`, or `--server` fetching it); a proof whose
 * hashes merely lead to its own root proves nothing, since anyone can invent one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { consistencyProof, leafHash, rootOf } from '../src/core/index.js';
import { removeDir, runDbx, startServerInProcess, tempDataDir, type TestServer } from './helpers/server.js';

let server: TestServer;
const scratch = tempDataDir('edbx-proof-');
before(async () => {
  server = await startServerInProcess();
  for (let i = 1; i <= 7; i++) {
    const res = await server.request('POST', '/v1/aggregates/ledger/l-1/events', { event_type: 'posted', payload: { n: i } });
    assert.equal(res.status, 201);
  }
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
  removeDir(scratch);
});

async function proofFile(query: string, name: string): Promise<{ path: string; body: any }> {
  const res = await server.request('GET', `/v1/aggregates/ledger/l-1/proof?${query}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const path = join(scratch, name);
  writeFileSync(path, JSON.stringify(res.body));
  return { path, body: res.body };
}

function writeProof(name: string, body: unknown): string {
  const path = join(scratch, name);
  writeFileSync(path, JSON.stringify(body));
  return path;
}

/** Proofs anyone can make without the server: an invented leaf that is its own root, an invented tree. */
function forgedProofs(): { inclusion: string; consistency: string } {
  const leaf = leafHash('{"made":"up"}');
  const leaves = [1, 2, 3, 4, 5].map((i) => leafHash(`{"invented":${i}}`));
  return {
    inclusion: writeProof('forged-inclusion.json', { aggregate_type: 'ledger', aggregate_id: 'l-1', version: 1, tree_size: 1, leaf_hash: leaf, root: leaf, proof: [] }),
    consistency: writeProof('forged-consistency.json', {
      aggregate_type: 'ledger',
      aggregate_id: 'l-1',
      from_size: 3,
      to_size: 5,
      from_root: rootOf(leaves.slice(0, 3)),
      to_root: rootOf(leaves),
      proof: consistencyProof(leaves, 3),
    }),
  };
}

test('cli proof - proofs check against --root; tampering and a wrong root are caught', { timeout: 60_000 }, async () => {
  const inclusion = await proofFile('version=3', 'inclusion.json');
  const ok = await runDbx(['proof', 'check', inclusion.path, '--root', inclusion.body.root, '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), { kind: 'inclusion', valid: true, consistent: true, checked_against: ['root'] });

  const consistency = await proofFile('from_size=3&to_size=7', 'consistency.json');
  const fromRoot = (await server.request('GET', '/v1/aggregates/ledger/l-1?version=3')).body.merkle_root;
  assert.equal(consistency.body.from_root, fromRoot, 'the proof starts at the root event 3 carried');
  const good = await runDbx(['proof', 'check', consistency.path, '--root', fromRoot]);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /^valid: consistency proof/);

  const tampered = { ...consistency.body, proof: [...consistency.body.proof] };
  tampered.proof[0] = tampered.proof[0].replace(/^./, (c: string) => (c === '0' ? '1' : '0'));
  const bad = await runDbx(['proof', 'check', writeProof('tampered.json', tampered), '--root', fromRoot]);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /INVALID/);

  const wrongRoot = await runDbx(['proof', 'check', inclusion.path, '--root', 'f'.repeat(64)]);
  assert.equal(wrongRoot.code, 1);
  assert.match(wrongRoot.stdout, /^INVALID: inclusion proof \(.*trusted root/);
});

test('cli proof - without --root a proof, forged or real, is not called valid and exits 1', { timeout: 60_000 }, async () => {
  const forged = forgedProofs();
  const real = await proofFile('version=2', 'real-inclusion.json');
  for (const path of [forged.inclusion, forged.consistency, real.path]) {
    const text = await runDbx(['proof', 'check', path]);
    assert.equal(text.code, 1, `${path}: ${text.stdout}${text.stderr}`);
    assert.doesNotMatch(text.stdout, /\bvalid\b/, 'never says "valid"');
    assert.match(text.stdout, /^unverified: .*internally consistent, but not checked against a trusted root/);
    const json = await runDbx(['proof', 'check', path, '--json']);
    assert.equal(json.code, 1);
    const verdict = JSON.parse(json.stdout);
    assert.equal(verdict.valid, false);
    assert.equal(verdict.consistent, true);
    assert.deepEqual(verdict.checked_against, []);
  }
  // A forged proof checked against the aggregate's real root fails.
  const head = (await server.request('GET', '/v1/aggregates/ledger/l-1')).body.merkle_root;
  const against = await runDbx(['proof', 'check', forged.inclusion, '--root', head]);
  assert.equal(against.code, 1);
  assert.match(against.stdout, /^INVALID/);
});

test('cli proof - --server fetches the trusted roots of the aggregate the proof names', { timeout: 60_000 }, async () => {
  const auth = ['--server', server.url, '--token', server.token];
  const inclusion = await proofFile('version=4&size=6', 'server-inclusion.json');
  const ok = await runDbx(['proof', 'check', inclusion.path, ...auth, '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), { kind: 'inclusion', valid: true, consistent: true, checked_against: ['server'] });
  const consistency = await proofFile('from_size=2&to_size=7', 'server-consistency.json');
  const good = await runDbx(['proof', 'check', consistency.path, ...auth]);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /^valid: consistency proof, checked against the server's root/);

  const forged = forgedProofs();
  for (const path of [forged.inclusion, forged.consistency]) {
    const bad = await runDbx(['proof', 'check', path, ...auth]);
    assert.equal(bad.code, 1, bad.stdout);
    assert.match(bad.stdout, /^INVALID: .*the server's root at size/);
  }
  // A proof for a tree the server does not have (size 9 of 7 events) is not confirmed either.
  const beyond = await runDbx(['proof', 'check', writeProof('beyond.json', { ...inclusion.body, tree_size: 9, version: 9 }), ...auth]);
  assert.equal(beyond.code, 1);
  assert.doesNotMatch(beyond.stdout, /^valid/);
});
