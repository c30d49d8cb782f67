/**
 * HTTP under the client: one undici Pool of keep-alive connections per client (a request reuses a
 * warm socket instead of paying a TCP handshake), JSON in and out (renamed by the mapper), retries
 * only where a repeat cannot append twice: GETs, and writes that carry an idempotency key (the
 * server replays those); every call ends by its caller's signal or its deadline.
 */
import type { Readable } from 'node:stream';
import type { Pool } from 'undici';
import { AbortError, ConnectionError, createError, errorFromResponse, EventDbxError, TimeoutError } from './errors.js';
import { bodyToWire, fromWire } from './mapper.js';
import type { CallOptions, RetryOptions } from './types.js';
import { loadUndici } from './undici.js';

/** Query parameters in camelCase (renamed by the mapper); undefined ones are left out. */
export type Query = Record<string, string | number | boolean | undefined>;

export interface Request extends CallOptions {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  query?: Query;
  body?: unknown;
  /** A body sent as is instead of JSON (bulk import streams NDJSON); never retried. */
  raw?: { contentType: string; body: string | Readable };
  /** Safe to send again after a lost answer. */
  idempotent: boolean;
  /** Answer keys are user-chosen names (a selection, JSON Schema documents): returned as sent. */
  verbatim?: boolean;
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
  /** Default deadline of a call (0 = none). */
  timeoutMs: number;
  /** Longest wait for headers, or between body chunks, when a call has no longer deadline. */
  stallMs: number;
  connections: number;
  /** PEM CA certificate(s) trusted for https:// instead of the system roots. */
  ca?: string | Buffer | (string | Buffer)[];
  /** Send through this instead of a pool of our own (ClientOptions.dispatcher); never closed here. */
  dispatcher?: RequestDispatcher;
}

/** One request as the transport hands it to its dispatcher (a subset of undici's request options). */
export interface DispatchOptions {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Readable | undefined;
  signal?: AbortSignal;
  headersTimeout?: number;
  bodyTimeout?: number;
}

/** What the transport reads of an answer (undici's `ResponseData` has these). */
export interface DispatchResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: { text(): Promise<string> };
}

/** What requests go through: an undici Pool (the default), Agent or MockPool, or anything with these two methods. */
export interface RequestDispatcher {
  request(options: DispatchOptions): Promise<DispatchResponse>;
  close(): Promise<void>;
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
  /**
   * Made on the first request, and undici imported then: loading the client costs no ~100 ms of
   * undici, and a command answered without HTTP (dbx's direct reads) never loads it.
   */
  private pool: Promise<RequestDispatcher> | undefined;
  private readonly basePath: string;
  private closed = false;

  constructor(private readonly options: TransportOptions) {
    this.basePath = options.url.pathname.replace(/\/+$/, '');
  }

  private dispatcher(): Promise<RequestDispatcher> {
    const { dispatcher, url, connections, stallMs, ca } = this.options;
    // The pool's own timeouts only guard against a server that goes silent in a call without a
    // deadline (`timeoutMs: 0`, bulk import); a call's deadline is its signal (see Deadline).
    this.pool ??=
      dispatcher !== undefined
        ? Promise.resolve(dispatcher)
        : loadUndici().then(
            ({ Pool }): Pool =>
              new Pool(url.origin, { connections, keepAliveTimeout: 10_000, headersTimeout: stallMs, bodyTimeout: stallMs, ...(ca !== undefined ? { connect: { ca } } : {}) }),
          );
    return this.pool;
  }

  get origin(): string {
    return this.options.url.origin + this.basePath;
  }

  /** Sends `request`, retrying what is safe to repeat, within its deadline; answers in camelCase. */
  async request<T>(request: Request): Promise<T> {
    if (this.closed) throw new ConnectionError('unavailable', 'the client is closed');
    const deadline = new Deadline(request, request.timeoutMs ?? this.options.timeoutMs);
    const { attempts, initialDelayMs, maxDelayMs } = this.options.retry;
    try {
      for (let attempt = 1; ; attempt++) {
        deadline.throwIfDone();
        try {
          return (await this.once(request, deadline)) as T;
        } catch (err) {
          const wrapped = deadline.error() ?? this.wrap(err);
          if (!request.idempotent || attempt >= attempts || !retryable(wrapped)) throw wrapped;
          // Exponential backoff with full jitter, so retrying clients do not arrive together.
          const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1));
          await deadline.sleep(Math.random() * ceiling);
        }
      }
    } finally {
      deadline.dispose();
    }
  }

  private async once(request: Request, deadline: Deadline): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json', 'x-tenant-id': this.options.tenant };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let body: string | Readable | undefined;
    if (request.raw !== undefined) {
      headers['content-type'] = request.raw.contentType;
      body = request.raw.body;
    } else if (request.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(bodyToWire(request.body));
    }
    // A deadline longer than the stall guard stretches it, so the deadline is what ends the call.
    const stretched = deadline.ms > this.options.stallMs ? { headersTimeout: deadline.ms + 1000, bodyTimeout: deadline.ms + 1000 } : {};
    const response = await (await this.dispatcher()).request({
      method: request.method,
      path: this.basePath + request.path + queryString(request.query),
      headers,
      body,
      signal: deadline.signal,
      ...stretched,
    });
    const text = await response.body.text();
    const contentType = String(response.headers['content-type'] ?? '');
    let parsed: unknown = text;
    if (contentType.includes('json') && text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw createError('internal', `malformed JSON from the server (HTTP ${response.statusCode})`, { status: response.statusCode });
      }
    }
    if (response.statusCode >= 400) {
      const retryAfter = response.headers['retry-after'];
      throw errorFromResponse(response.statusCode, parsed, typeof retryAfter === 'string' ? retryAfter : undefined);
    }
    return request.verbatim ? parsed : fromWire(parsed);
  }

  private wrap(err: unknown): EventDbxError {
    if (err instanceof EventDbxError) return err;
    const code = (err as { code?: unknown }).code;
    const reason = typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
    return new ConnectionError('unavailable', `cannot reach EventDBX at ${this.origin}: ${reason}${tlsHint(code, this.options.url.protocol)}`, { cause: err });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.options.dispatcher === undefined) await (await this.pool)?.close();
  }
}

/**
 * One call's end: the caller's signal, or its deadline (a timer cleared when the call settles).
 * Both abort the one signal handed to undici, which stops the socket wait and the back-off sleep.
 */
class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout | undefined;
  private cause: 'aborted' | 'timeout' | undefined;
  private readonly onAbort = (): void => this.end('aborted');

  constructor(
    private readonly request: Request,
    readonly ms: number,
  ) {
    if (request.signal?.aborted) this.end('aborted');
    else request.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.timer = ms > 0 && this.cause === undefined ? setTimeout(() => this.end('timeout'), ms) : undefined;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  private end(cause: 'aborted' | 'timeout'): void {
    if (this.cause !== undefined) return;
    this.cause = cause;
    this.controller.abort();
  }

  /** The call's AbortError or TimeoutError once it ended, else undefined. */
  error(): EventDbxError | undefined {
    const what = `${this.request.method} ${this.request.path}`;
    if (this.cause === 'aborted') return new AbortError('aborted', `${what} was aborted`, { cause: this.request.signal?.reason });
    if (this.cause === 'timeout') return new TimeoutError('timeout', `${what} got no answer within ${this.ms} ms (timeoutMs)`);
    return undefined;
  }

  throwIfDone(): void {
    const err = this.error();
    if (err) throw err;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (): void => {
        clearTimeout(timer);
        reject(this.error());
      };
      const timer = setTimeout(() => {
        this.signal.removeEventListener('abort', fail);
        resolve();
      }, ms);
      if (this.signal.aborted) fail();
      else this.signal.addEventListener('abort', fail, { once: true });
    });
  }

  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.request.signal?.removeEventListener('abort', this.onAbort);
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
  for (const [key, value] of Object.entries(bodyToWire(query) as Query)) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
}
