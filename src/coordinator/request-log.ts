/**
 * One log line per refused or failed request (4xx at info, 5xx at error), and per-request metrics.
 * A successful request logs nothing (a line per request costs ~36 µs; /metrics counts them).
 *
 * The line names what a person needs to find the cause — method, route pattern, status, error
 * code, request id, tenant, time — and nothing a request carries as data: never the token, a body,
 * a query string or the concrete path of a matched route (ids and values stay out of the log).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Metrics } from './metrics.js';

/** The response header (and log field) that carries the request id. */
export const REQUEST_ID_HEADER = 'x-request-id';
/** A client may send its own id (to correlate with its logs) if it is short and plain. */
const CLIENT_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const TENANT = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** The error body starts with its code (http-errors.ts sends `{"error":{"code":…`). */
const ERROR_CODE = /^\{"error":\{"code":"([a-z_]{1,64})"/;
const UNMATCHED_PATH_CHARS_MAX = 200;

/** fastify's `genReqId`: the client's X-Request-Id when plain, else a fresh UUID. */
export function requestId(raw: IncomingMessage): string {
  const given = raw.headers[REQUEST_ID_HEADER];
  return typeof given === 'string' && CLIENT_ID.test(given) ? given : randomUUID();
}

function tenantOf(request: FastifyRequest): string {
  const raw = request.headers['x-tenant-id'];
  if (typeof raw !== 'string' || raw.length === 0) return 'default';
  return TENANT.test(raw) ? raw.toLowerCase() : '(invalid)';
}

export function installRequestLog(app: FastifyInstance, metrics: Metrics): void {
  const codes = new WeakMap<FastifyRequest, string>();
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    if (reply.statusCode >= 400 && typeof payload === 'string') {
      const code = ERROR_CODE.exec(payload)?.[1];
      if (code) codes.set(request, code);
    }
    done(null, payload);
  });
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url;
    const status = reply.statusCode;
    metrics.observeRequest(request.method, route, status, reply.elapsedTime / 1000);
    if (status >= 400) {
      const fields: Record<string, unknown> = {
        method: request.method,
        route: route ?? null,
        status,
        code: codes.get(request) ?? null,
        tenant: tenantOf(request),
        ms: Math.round(reply.elapsedTime * 10) / 10,
      };
      // No route matched: the path (never the query) is what a person needs to see the typo.
      if (route === undefined) fields.path = (request.url.split('?')[0] ?? '').slice(0, UNMATCHED_PATH_CHARS_MAX);
      const message = `${request.method} ${route ?? fields.path} → ${status}${fields.code ? ` ${fields.code}` : ''}`;
      if (status >= 500) request.log.error(fields, message);
      else request.log.info(fields, message);
    }
    done();
  });
}
