/**
 * Worker thread of `--tenants-noisy`: the flooding tenant's client, in its own event loop (see
 * tenants-append-loop.ts). Each message is one phase's LoopSpec; the answer is its Loop, or
 * `{ error }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Pool } from 'undici';
import { appendLoop, type LoopSpec } from './tenants-append-loop.js';

const { url, connections } = workerData as { url: string; connections: number };
const pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 60_000 });

parentPort?.on('message', (msg: LoopSpec | 'close') => {
  if (msg === 'close') {
    void pool.close().then(() => parentPort?.close());
    return;
  }
  appendLoop(pool, msg).then(
    (loop) => parentPort?.postMessage({ loop }),
    (err: unknown) => parentPort?.postMessage({ error: err instanceof Error ? err.message : String(err) }),
  );
});
