/**
 * HTTP under the client: one undici Pool of keep-alive connections per client (a request reuses a
 * warm socket instead of paying a TCP handshake), JSON in and out, and retries only where a repeat
 * cannot append twice: GETs, and writes that carry an idempotency key (the server replays those).
 */
import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import { EventDbxError, errorFromResponse } from './errors.js';
import type { RetryOptions } from './types.js';

export type Query = Record<string, string | number | boolean | undefined>;

export interface Request {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  query?: Query;
  body?: unknown;
  /** A body sent as is instead of JSON (bulk import streams NDJSON); never retried. */
  raw?: { contentType: string; body: string | Readable };
  /** Safe to send again after a lost answer. */
  idempotent: boolean;
}

/** Errors of the socket or of the server's start/drain: worth another try when the call is idempotent. */
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

export interface TransportOptions {
  url: URL;
  token?: string;
  tenant: string;
  retry: Required<RetryOptions>;
  timeoutMs: number;
  connections: number;
  /** PEM CA certificate(s) trusted for https:// instead of the system roots. */
  ca?: string | Buffer | (string | Buffer)[];
}

/** Certificate verification failures (Node's codes): the server answered, but is not trusted. */
const UNTRUSTED_CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
]);

export class Transport {
  private readonly pool: Pool;
  private readonly basePath: string;
  private closed = false;

  constructor(private readonly options: TransportOptions) {
    this.pool = new Pool(options.url.origin, {
      connections: options.connections,
      keepAliveTimeout: 10_000,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      ...(options.ca !== undefined ? { connect: { ca: options.ca } } : {}),
    });
    this.basePath = options.url.pathname.replace(/\/+$/, '');
  }

  get origin(): string {
    return this.options.url.origin + this.basePath;
  }

  async request<T>(request: Request): Promise<T> {
    if (this.closed) throw new EventDbxError('unavailable', 'the client is closed');
    const { attempts, initialDelayMs, maxDelayMs } = this.options.retry;
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.once(request)) as T;
      } catch (err) {
        const wrapped = this.wrap(err);
        if (!request.idempotent || attempt >= attempts || !retryable(wrapped)) throw wrapped;
        // Exponential backoff with full jitter, so retrying clients do not arrive together.
        const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1));
        await new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
      }
    }
  }

  private async once(request: Request): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json', 'x-tenant-id': this.options.tenant };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let body: string | Readable | undefined;
    if (request.raw !== undefined) {
      headers['content-type'] = request.raw.contentType;
      body = request.raw.body;
    } else if (request.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(request.body);
    }
    const response = await this.pool.request({ method: request.method, path: this.basePath + request.path + queryString(request.query), headers, body });
    const text = await response.body.text();
    const contentType = String(response.headers['content-type'] ?? '');
    let parsed: unknown = text;
    if (contentType.includes('json') && text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new EventDbxError('internal', `malformed JSON from the server (HTTP ${response.statusCode})`, { status: response.statusCode });
      }
    }
    if (response.statusCode >= 400) throw errorFromResponse(response.statusCode, parsed);
    return parsed;
  }

  private wrap(err: unknown): EventDbxError {
    if (err instanceof EventDbxError) return err;
    const code = (err as { code?: unknown }).code;
    const reason = typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
    return new EventDbxError('unavailable', `cannot reach EventDBX at ${this.origin}: ${reason}${tlsHint(code, this.options.url.protocol)}`, { cause: err });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.close();
  }
}

/** What to do about a TLS failure, in words (these never succeed on a retry). */
function tlsHint(code: unknown, protocol: string): string {
  if (typeof code !== 'string') return '';
  if (UNTRUSTED_CERT_CODES.has(code)) {
    return ': the server\'s TLS certificate is not trusted; give the CA that signed it (client option ca or caFile, dbx --ca-file, or $EVENTDBX_CA_FILE)';
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return ': the server\'s TLS certificate does not name this host; connect with a host name or address it lists';
  if (code === 'EPROTO' || code.startsWith('ERR_SSL_')) return ': the TLS handshake failed (is the server serving plain HTTP? then use http://)';
  if (protocol === 'http:' && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET')) return ' (if the server serves HTTPS, use https://)';
  return '';
}

function retryable(err: EventDbxError): boolean {
  if (err.status === 502 || err.status === 503 || err.status === 504) return true;
  if (err.status !== 0) return false;
  const code = (err.cause as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && RETRYABLE_CODES.has(code);
}

function queryString(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
}
