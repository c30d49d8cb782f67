/**
 * Child process for the floors: a bare fastify server with the same settings that matter for speed
 * as the real one (no request logging, JSON bodies), exposing
 *   POST /echo         answers the body it got
 *   POST /echo-worker  the same, after a round trip through a worker_thread (postMessage + id map)
 * Prints {"port": n} on stdout once listening.
 */
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import Fastify from 'fastify';

if (isMainThread) {
  await main();
} else {
  // Worker side: echo each message straight back.
  parentPort?.on('message', (message: { id: number; body: unknown }) => parentPort?.postMessage(message));
}

async function main(): Promise<void> {
  const worker = new Worker(new URL(import.meta.url));
  const pending = new Map<number, (body: unknown) => void>();
  let nextId = 0;
  worker.on('message', (message: { id: number; body: unknown }) => {
    const resolve = pending.get(message.id);
    pending.delete(message.id);
    resolve?.(message.body);
  });
  worker.unref();

  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  app.post('/echo', async (request, reply) => {
    reply.code(201);
    return request.body;
  });
  app.post('/echo-worker', async (request, reply) => {
    const id = nextId++;
    const body = await new Promise((resolve) => {
      pending.set(id, resolve);
      worker.postMessage({ id, body: request.body });
    });
    reply.code(201);
    return body;
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  const stop = (): void => {
    void app.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
