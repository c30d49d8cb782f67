/**
 * Graceful stop (issue 3 item 2, DESIGN §11): SIGTERM while clients are appending drains the writes
 * in flight, exits 0, and every write the server acknowledged is there after a restart. Answers
 * sent while draining use the error model (503 unavailable), never a bare framework error.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, spawnServer, stopSpawned, tempDataDir, type SpawnedServer } from './helpers/server.js';

const dataDir = tempDataDir();
after(() => removeDir(dataDir));

interface Outcome {
  acked: { id: string; event_id: string; hash: string }[];
  refusedCodes: string[];
}

async function appendUntilGone(server: SpawnedServer, index: number, outcome: Outcome): Promise<void> {
  for (let n = 0; n < 100_000; n++) {
    try {
      const res = await server.request('POST', `/v1/aggregates/drain/d-${index}/events`, { event_type: 'ticked', payload: { n } });
      if (res.status === 201) outcome.acked.push({ id: `d-${index}`, event_id: res.body.metadata.event_id, hash: res.body.hash });
      else outcome.refusedCodes.push(String(res.body?.error?.code ?? `bare ${res.status}`));
    } catch {
      return; // connection closed: the server is gone
    }
  }
}

test('drain - SIGTERM under load exits 0 and keeps every acknowledged write', { timeout: 90_000 }, async () => {
  const server = await spawnServer({ dataDir });
  const outcome: Outcome = { acked: [], refusedCodes: [] };
  const clients = Array.from({ length: 16 }, (_, i) => appendUntilGone(server, i, outcome));
  await new Promise((r) => setTimeout(r, 700));
  server.kill('SIGTERM');
  const code = await server.exited;
  await Promise.all(clients);
  assert.equal(code, 0, `clean exit (stderr: ${server.stderr()})`);
  assert.ok(outcome.acked.length > 0, 'some writes were acknowledged before the stop');
  for (const refused of outcome.refusedCodes) assert.equal(refused, 'unavailable', 'refusals while draining use the error model');

  const again = await spawnServer({ dataDir });
  try {
    // Every stored event of every client aggregate, paged (one request per page, not per event).
    const stored = new Map<string, string>();
    for (let i = 0; i < 16; i++) {
      for (let cursor: string | null = ''; cursor !== null; ) {
        const page = await again.request('GET', `/v1/aggregates/drain/d-${i}/events?take=1000${cursor ? `&cursor=${cursor}` : ''}`);
        if (page.status === 404) break;
        for (const e of page.body.items) stored.set(e.metadata.event_id, e.hash);
        cursor = page.body.next_cursor;
      }
      const verify = await again.request('GET', `/v1/aggregates/drain/d-${i}/verify`);
      if (verify.status !== 404) assert.equal(verify.body.valid, true);
    }
    for (const ack of outcome.acked) assert.equal(stored.get(ack.event_id), ack.hash, `acknowledged event ${ack.event_id} survives`);
  } finally {
    await stopSpawned(again);
  }
});
