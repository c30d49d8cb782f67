/**
 * CORS (`[http.cors]`), off by default: without it a browser page on another origin cannot read an
 * answer. When enabled, only the listed origins (or `"*"`) get CORS headers, and a preflight from
 * one of them is answered here, before authentication (browsers send preflights without the
 * Authorization header). Tokens travel in a header, never in cookies, so credentials are never
 * allowed. Everything else falls through untouched: a preflight from another origin meets the
 * usual 404.
 */
import type { FastifyInstance } from 'fastify';

export interface CorsSettings {
  enabled: boolean;
  origins: string[];
  max_age_secs: number;
}

const ALLOWED_METHODS = 'GET, POST, PUT, DELETE';
const ALLOWED_HEADERS = 'authorization, content-type, x-tenant-id';
/** Headers a page may read from an answer besides the CORS-safelisted ones. */
const EXPOSED_HEADERS = 'retry-after, idempotent-replayed';

export function installCors(app: FastifyInstance, settings: CorsSettings): void {
  if (!settings.enabled) return;
  const any = settings.origins.includes('*');
  const allowed = new Set(settings.origins);
  app.addHook('onRequest', (request, reply, done) => {
    const origin = request.headers.origin;
    if (typeof origin !== 'string' || !(any || allowed.has(origin))) return done();
    // The answer depends on Origin: caches must not hand one origin's answer to another.
    void reply.header('vary', 'origin');
    void reply.header('access-control-allow-origin', any ? '*' : origin);
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined) {
      void reply
        .code(204)
        .header('access-control-allow-methods', ALLOWED_METHODS)
        .header('access-control-allow-headers', ALLOWED_HEADERS)
        .header('access-control-max-age', String(settings.max_age_secs))
        .send();
      return;
    }
    void reply.header('access-control-expose-headers', EXPOSED_HEADERS);
    done();
  });
}
