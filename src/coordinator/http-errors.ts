/**
 * Maps every failure onto the DESIGN §6 error model; nothing internal leaks into an answer. A
 * library's own message (fastify's FST_ERR_* texts, V8's JSON.parse wording, a stack) never reaches
 * a client: each known failure gets our own sentence, anything else a generic one.
 */
import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DbxError } from '../core/index.js';

/** Our message for each fastify error a client can cause; unlisted 4xx codes get a generic one. */
const FRAMEWORK_MESSAGES: Record<string, [code: 'invalid_input' | 'payload_too_large', message: string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: ['payload_too_large', 'request body is larger than the configured limit'],
  FST_ERR_CTP_INVALID_JSON_BODY: ['invalid_input', 'malformed JSON body'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['invalid_input', 'malformed JSON body: it is empty'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['invalid_input', 'unsupported Content-Type; send application/json (POST /v1/import takes application/x-ndjson)'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['invalid_input', 'the body does not match its Content-Length'],
  FST_ERR_BAD_URL: ['invalid_input', 'the URL is not valid percent-encoded UTF-8'],
  FST_ERR_MAX_PARAM_LENGTH: ['invalid_input', 'a path segment is too long'],
};

export function toDbxError(err: unknown): DbxError {
  if (err instanceof DbxError) return err;
  const fe = err as Partial<FastifyError>;
  const known = typeof fe.code === 'string' ? FRAMEWORK_MESSAGES[fe.code] : undefined;
  if (known) return new DbxError(known[0], known[1]);
  if (err instanceof SyntaxError) return new DbxError('invalid_input', 'malformed JSON body');
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) return new DbxError('invalid_input', 'bad request');
  return new DbxError('internal', 'internal error');
}

/**
 * A JSON or NDJSON body must be UTF-8 (I-JSON, RFC 7493 §2.1): a Content-Type naming another charset is
 * refused rather than decoded as UTF-8 anyway (which would store other characters than were sent).
 */
export function jsonBodyRefusal(contentType: string | undefined): DbxError | undefined {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '')?.[1]?.toLowerCase();
  if (charset === undefined || charset === 'utf-8' || charset === 'utf8') return undefined;
  return new DbxError('invalid_input', `unsupported charset '${charset}': request bodies are UTF-8 (send charset=utf-8 or none)`);
}

/** Longest path parameter the router passes on to validation (ids are ≤ 128, names ≤ 64). */
export const PATH_PARAM_CHARS_MAX = 256;

/** Errors fastify raises before routing (bad URL encoding, over-long path parameter). */
export function frameworkErrors(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  sendError(reply, toDbxError(err));
}

function sendError(reply: FastifyReply, error: DbxError): void {
  const retryAfter = (error.details as { retry_after_secs?: unknown } | undefined)?.retry_after_secs;
  // 429 rate_limited and 503 unavailable (a tenant's paused writes) say when to come back.
  if ((error.code === 'rate_limited' || error.code === 'unavailable') && typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
  void reply.code(error.status).send({ error: error.toWire() });
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const error = toDbxError(err);
    // The cause (a worker's stack, an LMDB error) goes to the log, never into the answer.
    // The route pattern, never the URL: query strings and path ids can hold user data.
    if (error.status === 500) request.log.error({ err, cause: error.cause, route: request.routeOptions.url ?? 'unmatched' }, 'request failed');
    sendError(reply, error);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } });
  });
}

/** 414 before routing: a path and query over `url_bytes_max` is refused before anything parses it. */
export function installUrlLimit(app: FastifyInstance, urlBytesMax: number): void {
  app.addHook('onRequest', (request, _reply, done) => {
    // UTF-16 length ≤ byte length for the ASCII a request line holds, so this is a byte bound.
    if (request.raw.url !== undefined && request.raw.url.length > urlBytesMax) {
      return done(new DbxError('uri_too_long', `the URL is longer than ${urlBytesMax} bytes`));
    }
    done();
  });
}

/**
 * What the HTTP parser refuses before fastify sees a request (headers over `header_bytes_max`, a
 * malformed request line, a NUL in a header, a request that did not arrive in time) is answered in
 * the error model too, instead of fastify's own `{"error":"Bad Request",…}` shape.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let error: DbxError;
  if (err.code === 'HPE_HEADER_OVERFLOW') error = new DbxError('headers_too_large', 'the request line and headers are larger than the configured limit');
  else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') error = new DbxError('request_timeout', 'the request did not arrive in time');
  else error = new DbxError('invalid_input', 'malformed HTTP request');
  if (socket.writable) {
    const body = JSON.stringify({ error: error.toWire() });
    socket.write(
      `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
