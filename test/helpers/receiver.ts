/**
 * A real HTTP endpoint for `http` plugin tests: `answer(body, attempt)` gives each delivery's status;
 * deliveries answered 2xx are recorded in arrival order. An empty POST (the plugin's connectivity
 * check) is answered 200 and neither counted nor recorded.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  event_id: string;
  aggregate_id: string;
  version: number;
  attempt: number;
}

export interface Receiver {
  url: string;
  got: Received[];
  /** Deliveries received, whatever they were answered. */
  calls(): number;
  close(): Promise<void>;
}

export async function receiver(answer: (body: any, attempt: number) => number = () => 200): Promise<Receiver> {
  const got: Received[] = [];
  let calls = 0;
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      if (req.method !== 'POST' || text.length === 0) return void res.end();
      calls++;
      const body = JSON.parse(text);
      const attempt = Number(req.headers['x-eventdbx-attempt'] ?? 0);
      const status = answer(body, attempt);
      if (status < 300) got.push({ event_id: body.event_id, aggregate_id: body.aggregate_id, version: body.version, attempt });
      res.statusCode = status;
      res.end(status < 300 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    got,
    calls: () => calls,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
