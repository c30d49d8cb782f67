/**
 * Routes are declared as data (method, url, action, zod schemas, handler) so that validation, auth
 * and the OpenAPI document all come from one place and cannot drift apart.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { DbxError, allowsAction, parseInput, tenantSchema, type TokenClaims } from '../core/index.js';
import { authorize, type Authenticator, type Principal } from './auth.js';
import { jsonBodyRefusal } from './http-errors.js';

export interface HandlerContext<B, Q, P> {
  body: B;
  query: Q;
  params: P;
  principal: Principal;
  tenant: string;
  request: FastifyRequest;
  reply: FastifyReply;
}

/** One media type a route's success answer can come in, and its shape. */
export interface ResponseContent {
  contentType: string;
  schema: z.ZodType;
}

export interface RouteSpec<B = unknown, Q = unknown, P = unknown> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  summary: string;
  /** Action the token must hold; `null` = no auth at all (health). */
  action: string | null;
  /** Resource the action applies to, from the params. */
  resource?: (params: P) => { type: string; id?: string };
  status?: number;
  body?: z.ZodType<B>;
  query?: z.ZodType<Q>;
  params?: z.ZodType<P>;
  /**
   * A streamed body (bulk import): the route reads `request.body` as the raw request stream, line
   * by line, instead of a parsed, size-limited JSON body; `line` is the schema of one line (OpenAPI).
   */
  stream?: { contentType: string; line: z.ZodType };
  /** Stable, readable OpenAPI operationId (`createAggregate`, `listEvents`); unique across routes. */
  operationId?: string;
  /**
   * What a success answers, for /openapi.json and the tests that check real answers against it
   * (never used to serialise: a zod response schema doubles the cost of JSON.stringify). A plain
   * schema is JSON; give `contentType` for anything else (the Prometheus text of /metrics), and a
   * list when the route answers in more than one (an export as CSV or JSON).
   */
  response?: z.ZodType | ResponseContent | readonly ResponseContent[];
  /**
   * Statuses this route itself can answer beyond those every route of its kind can (400 for bad
   * input, 401/403/429 with a token, 413 with a body, 503 while draining: openapi.ts adds those).
   */
  errors?: readonly number[];
  /**
   * `none`: the route is about tenants as a whole (`/v1/tenants`): X-Tenant-Id is neither needed
   * nor checked against the token here; the handler checks the tenants it names (issue 12).
   */
  tenantScope?: 'none';
  /**
   * A further check of the token alone (operator-only routes), made with the action check, before
   * the query and body are read: a token that may not call the route is 403 whatever it sent.
   */
  authorize?: (claims: TokenClaims) => void;
  /**
   * The body's list of items (a batch's `events`): an item refused by request validation is named
   * as the workers name theirs, `details: { index, violations }`.
   */
  bodyItems?: string;
  /**
   * For a body the `body` schema refused: problems a fuller check of the raw body finds beyond
   * the request schema's, added to its answer (a schema's own parser walks every column even past
   * a shape problem, so one 400 lists every problem).
   */
  moreBodyProblems?: (raw: unknown) => { path: string; field: string; rule: string; message: string }[];
  handler: (ctx: HandlerContext<B, Q, P>) => unknown;
}

export function defineRoute<B = undefined, Q = undefined, P = undefined>(spec: RouteSpec<B, Q, P>): RouteSpec {
  return spec as unknown as RouteSpec;
}

/**
 * Authentication runs in `onRequest`, before the body is even parsed, so a caller without a valid
 * token learns nothing about what the route would accept (401 comes before any 400). Authorisation
 * needs the validated params, so it runs in the handler.
 */
export function registerRoutes(
  app: FastifyInstance,
  routes: RouteSpec[],
  auth: Authenticator,
  isOpen: (spec: RouteSpec) => boolean,
  /** `afterAuth` runs with each verified token's jti (the per-token rate limit throws 429 there). */
  options: {
    afterAuth?: ((jti: string) => void) | undefined;
    /** `[tenants] multi_tenant = true`: a tenant-scoped route without X-Tenant-Id is refused (400). */
    requireTenant?: boolean;
  } = {},
): void {
  for (const spec of routes) {
    // The raw stream is handed on unread: no buffering, so body_limit_bytes does not apply to it.
    if (spec.stream && !app.hasContentTypeParser(spec.stream.contentType)) {
      // Its lines are decoded as UTF-8 (ndjson-lines.ts): a body declared in another charset is refused, as for JSON.
      app.addContentTypeParser(spec.stream.contentType, (request, payload, done) => {
        const refused = jsonBodyRefusal(request.headers['content-type']);
        if (refused) return done(refused);
        done(null, payload);
      });
    }
    const open = spec.action === null || isOpen(spec);
    app.route({
      method: spec.method,
      url: spec.url,
      onRequest: async (request) => {
        const claims = open ? openClaims : auth.authenticate(request.headers.authorization);
        if (!open) options.afterAuth?.(claims.jti);
        claimsOf.set(request, claims);
      },
      handler: async (request, reply) => {
        // The stream parser is the app's, so any route can be sent its content type: only a stream
        // route takes the raw stream (else a schema would be checked against Node's request object).
        if (!spec.stream && isStreamBody(request.body)) {
          request.body.resume();
          throw new DbxError('invalid_input', 'unsupported Content-Type for this route; send application/json');
        }
        const claims = claimsOf.get(request) ?? openClaims;
        const rawTenant = request.headers['x-tenant-id'];
        const named = typeof rawTenant === 'string' && rawTenant.length > 0;
        // Guessing `default` on a server hosting many tenants would put a write in the wrong one.
        if (!named && options.requireTenant && !open && isTenantScoped(spec)) {
          throw new DbxError('invalid_input', 'this server hosts several tenants ([tenants] multi_tenant = true): name the tenant with the X-Tenant-Id header');
        }
        const tenant = parseInput(tenantSchema, named ? rawTenant : 'default', 'header.x-tenant-id');
        const params = spec.params ? parseInput(spec.params, request.params, 'params') : undefined;
        const principal: Principal = { claims, tenant };
        if (!open && spec.action !== null) {
          if (spec.tenantScope === 'none') {
            if (!allowsAction(claims, spec.action)) throw new DbxError('forbidden', `token lacks the '${spec.action}' action`);
          } else {
            authorize(principal, spec.action, spec.resource && params !== undefined ? spec.resource(params) : undefined);
          }
          spec.authorize?.(claims);
        }
        // A route without a query schema takes no query: an unknown parameter is refused (DESIGN §6),
        // never ignored (`?take=abc` on a list without paging must not look accepted).
        const query = spec.query ? parseInput(spec.query, request.query ?? {}, 'query') : void parseInput(NO_FIELDS, request.query ?? {}, 'query');
        // Routes whose body schema is optional (archive, restore, snapshots) accept no body at all.
        if (spec.body && (request.body === undefined || request.body === null) && !spec.body.safeParse(undefined).success) {
          throw new DbxError('invalid_input', 'a JSON body is required (Content-Type: application/json)');
        }
        // Likewise a route without a body schema takes none (or `{}`); a streamed body (imports) is the route's to check.
        if (!spec.body && !spec.stream && isJsonValue(request.body)) parseInput(NO_FIELDS, request.body, 'body');
        const body = spec.body ? parseBody(spec, request.body) : undefined;
        const result = await spec.handler({ body, query, params, principal, tenant, request, reply });
        if (spec.status) reply.code(spec.status);
        return result;
      },
    });
  }
}

function parseBody(spec: RouteSpec, value: unknown): unknown {
  try {
    return parseInput(spec.body as z.ZodType, value, 'body');
  } catch (err) {
    if (spec.moreBodyProblems && err instanceof DbxError && err.code === 'validation_failed' && Array.isArray(err.details)) {
      const more = spec.moreBodyProblems(value);
      if (more.length > 0) throw new DbxError(err.code, `${err.message} (and ${more.length} more)`, [...err.details, ...more]);
    }
    if (!spec.bodyItems || !(err instanceof DbxError) || !Array.isArray(err.details)) throw err;
    const first = (err.details[0] as { path?: unknown } | undefined)?.path;
    const at = typeof first === 'string' ? new RegExp(`^body\\.${spec.bodyItems}\\.(\\d+)(?:\\.|$)`).exec(first) : null;
    if (!at) throw err;
    throw new DbxError(err.code, err.message, { index: Number(at[1]), violations: err.details });
  }
}

/** What a route without a query (or body) schema accepts: nothing beyond an empty object. */
const NO_FIELDS = z.strictObject({});

/** A parsed JSON body (not absent, not a stream handed to the route). */
function isJsonValue(body: unknown): boolean {
  if (body === undefined || body === null) return false;
  return !isStreamBody(body);
}

/** A body handed on unread by a stream route's content-type parser. */
function isStreamBody(body: unknown): body is { resume(): void } {
  return typeof body === 'object' && body !== null && typeof (body as { pipe?: unknown }).pipe === 'function';
}

/**
 * Routes whose data belongs to one tenant (aggregates, events, imports, exports, the global stream,
 * schemas, plugin replays): in multi-tenant mode they must name it (an export or stream without the
 * header served `default`'s data as if asked for). Server-wide ones (tokens, plugins, queue,
 * metrics, tenants) keep `default` as what the header's absence means.
 */
const TENANT_SCOPED_URL = /^\/v1\/(aggregates|batch|events|export|import|schemas|stream)(\/|$)|^\/v1\/plugins\/:name\/replay$/;

export function isTenantScoped(spec: Pick<RouteSpec, 'url' | 'tenantScope'>): boolean {
  return spec.tenantScope !== 'none' && TENANT_SCOPED_URL.test(spec.url);
}

/** Verified claims per request, set in onRequest (a WeakMap keeps fastify's request shape intact). */
const claimsOf = new WeakMap<FastifyRequest, TokenClaims>();

/** The claims onRequest verified for `request` (undefined before it ran, or on an unmatched route). */
export function verifiedClaims(request: FastifyRequest): TokenClaims | undefined {
  return claimsOf.get(request);
}

const openClaims: TokenClaims = {
  iss: '',
  aud: '',
  sub: 'anonymous',
  jti: 'anonymous',
  iat: 0,
  group: '',
  user: '',
  actions: [],
  resources: [],
  tenants: [],
  issued_by: '',
  limits: { write_events: null, keep_alive: false },
};

/**
 * How a string-typed parameter is described in /openapi.json: query strings and path segments
 * arrive as text and are parsed by a transform, which JSON Schema cannot express, so a client
 * generator would see `string`. The document presents them as what they mean (`integer`, `boolean`).
 */
const parameterJson = new WeakMap<z.ZodType, Record<string, unknown>>();

/** Registers the JSON Schema that documents `schema` when it is a query or path parameter. */
export function documentParameterAs<T extends z.ZodType>(schema: T, json: Record<string, unknown>): T {
  parameterJson.set(schema, json);
  return schema;
}

export function documentedParameterJson(schema: z.ZodType): Record<string, unknown> | undefined {
  return parameterJson.get(schema);
}

/** Query-string helpers: everything arrives as strings. */
export const queryInt = (min = 0, max = Number.MAX_SAFE_INTEGER) =>
  documentParameterAs(
    z
      .string()
      .regex(/^\d+$/, 'must be a non-negative integer')
      .transform(Number)
      .pipe(z.number().int().min(min).max(max)),
    { type: 'integer', minimum: min, maximum: max },
  );
export const queryBool = documentParameterAs(
  z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1'),
  { type: 'boolean', description: 'true or false (1 and 0 are accepted too)' },
);
