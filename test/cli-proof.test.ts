/** `dbx proof check`: offline verification of the proofs the server hands out (DESIGN §4). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

test('cli proof - inclusion and consistency proofs check offline; tampering is caught', { timeout: 60_000 }, async () => {
  const inclusion = await proofFile('version=3', 'inclusion.json');
  const ok = await runDbx(['proof', 'check', inclusion.path, '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), { kind: 'inclusion', valid: true });

  const consistency = await proofFile('from_size=3&to_size=7', 'consistency.json');
  const fromRoot = (await server.request('GET', '/v1/aggregates/ledger/l-1?version=3')).body.merkle_root;
  assert.equal(consistency.body.from_root, fromRoot, 'the proof starts at the root event 3 carried');
  const good = await runDbx(['proof', 'check', consistency.path, '--root', fromRoot]);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /^valid: consistency proof/);

  const tampered = { ...consistency.body, proof: [...consistency.body.proof] };
  tampered.proof[0] = tampered.proof[0].replace(/^./, (c: string) => (c === '0' ? '1' : '0'));
  const badPath = join(scratch, 'tampered.json');
  writeFileSync(badPath, JSON.stringify(tampered));
  const bad = await runDbx(['proof', 'check', badPath]);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /INVALID/);

  const wrongRoot = await runDbx(['proof', 'check', inclusion.path, '--root', 'f'.repeat(64)]);
  assert.equal(wrongRoot.code, 1);
});
