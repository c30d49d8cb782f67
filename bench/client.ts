/**
 * The benchmark's HTTP client: one undici Pool with keep-alive per target, one connection per
 * concurrent client, JSON in and out. Every unexpected status throws with the answer's body, so a
 * misconfigured run fails loudly instead of measuring error round trips.
 */
import { Readable } from 'node:stream';
import { Pool } from 'undici';

export class HttpFailure extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`${method} ${path} answered ${status} (expected success): ${body.slice(0, 500)}`);
    this.name = 'HttpFailure';
  }
}

export class HttpApi {
  private readonly pool: Pool;
  private readonly headers: Record<string, string>;
  private readonly jsonHeaders: Record<string, string>;

  constructor(
    readonly url: string,
    token: string | undefined,
    connections: number,
  ) {
    this.pool = new Pool(url, {
      connections,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      keepAliveMaxTimeout: 600_000,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    this.headers = token ? { authorization: `Bearer ${token}` } : {};
    this.jsonHeaders = { ...this.headers, 'content-type': 'application/json' };
  }

  /** GET expecting 200; answers the parsed JSON. */
  get(path: string): Promise<any> {
    return this.send('GET', path, undefined, 200);
  }

  /** GET answering the status and body without throwing (existence probes). */
  async probe(path: string): Promise<{ status: number; body: any }> {
    const res = await this.pool.request({ method: 'GET', path, headers: this.headers });
    const text = await res.body.text();
    return { status: res.statusCode, body: text.length ? JSON.parse(text) : undefined };
  }

  post(path: string, body: unknown, expected: number): Promise<any> {
    return this.send('POST', path, JSON.stringify(body), expected);
  }

  /** POST answering the status and body without throwing (resumable seeding tolerates 409). */
  async postRaw(path: string, body: unknown): Promise<{ status: number; body: any }> {
    const res = await this.pool.request({ method: 'POST', path, headers: this.jsonHeaders, body: JSON.stringify(body) });
    const text = await res.body.text();
    return { status: res.statusCode, body: text.length ? JSON.parse(text) : undefined };
  }

  /** POST of a streamed body (bulk import's NDJSON), answering the status and body without throwing. */
  async postStream(path: string, contentType: string, body: AsyncIterable<string> | string): Promise<{ status: number; body: any }> {
    const res = await this.pool.request({
      method: 'POST',
      path,
      headers: { ...this.headers, 'content-type': contentType },
      body: typeof body === 'string' ? body : Readable.from(body),
      // A request of many events is answered once all of them are committed.
      headersTimeout: 600_000,
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: text.length ? JSON.parse(text) : undefined };
  }

  private async send(method: 'GET' | 'POST', path: string, body: string | undefined, expected: number): Promise<any> {
    const res = await this.pool.request({
      method,
      path,
      headers: body === undefined ? this.headers : this.jsonHeaders,
      ...(body === undefined ? {} : { body }),
    });
    const text = await res.body.text();
    if (res.statusCode !== expected) throw new HttpFailure(method, path, res.statusCode, text);
    return text.length ? JSON.parse(text) : undefined;
  }

  /** GET expecting 200; answers the body as text (the Prometheus exposition of /metrics). */
  async text(path: string): Promise<string> {
    const res = await this.pool.request({ method: 'GET', path, headers: this.headers });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new HttpFailure('GET', path, res.statusCode, text);
    return text;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
