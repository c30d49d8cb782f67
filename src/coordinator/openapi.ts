/**
 * GET /openapi.json: an OpenAPI 3.1 document generated from the same RouteSpec list (and the same
 * zod schemas) that registers and validates the routes, so the description cannot drift from what
 * the server accepts. Each route declares its success answer (`response`, see response-schemas.ts)
 * and the errors only it can give (`errors`); the errors every route of a kind can give (bad input,
 * a refused token, a body over the limit, draining) are added here. Built once, on first request:
 * z.toJSONSchema walks every schema (~ms).
 */
import { z } from 'zod';
import { ERROR_CATALOGUE } from '../core/index.js';
import { NAMED_RESPONSE_SCHEMAS, OpenApiDocument } from './response-schemas.js';
import { defineRoute, documentedParameterJson, type ResponseContent, type RouteSpec } from './route-spec.js';
import { ANY_TOKEN_ROUTES } from './routes-system.js';

type JsonSchema = Record<string, unknown>;

export interface OpenApiInfo {
  title?: string;
  version?: string;
  /** Absolute URLs of this server (known once it listens); `/` (relative) is always listed first. */
  servers?: () => { url: string; description?: string }[];
}

/** `:name` segments become `{name}`. */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** The operationId a route without one gets: method and path in camelCase (readable names are declared). */
export function operationIdOf(spec: RouteSpec): string {
  if (spec.operationId) return spec.operationId;
  const path = openApiPath(spec.url).replace(/[{}]/g, '');
  return `${spec.method.toLowerCase()}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`;
}

/** The media types and zod schemas of a route's success answer (none when it declares none). */
export function responsesOf(spec: RouteSpec): readonly ResponseContent[] {
  const { response } = spec;
  if (!response) return [];
  if (response instanceof z.ZodType) return [{ contentType: 'application/json', schema: response }];
  return Array.isArray(response) ? response : [response as ResponseContent];
}

/**
 * Request schemas that refer to themselves (a schema's nested object columns) come out of zod with
 * `$defs` and `#/$defs/…` refs, which mean nothing inside an OpenAPI document: they are moved to
 * components.schemas as `<prefix>_<name>` and the refs rewritten.
 */
interface DefsSink {
  schemas: Record<string, JsonSchema>;
  prefix: string;
}

function hoistDefs(json: JsonSchema, sink: DefsSink | undefined): JsonSchema {
  const { $defs, ...rest } = json as JsonSchema & { $defs?: Record<string, JsonSchema> };
  if (!$defs) return rest;
  if (!sink) throw new Error('a parameter schema with $defs cannot be described');
  // zod names anonymous definitions `__schema0`, `__schema1`, …
  const rename = (name: string) => `${sink.prefix}${name.replace(/^_+schema/, 'Def').replace(/[^A-Za-z0-9_.-]/g, '_')}`;
  const rewrite = (value: JsonSchema): JsonSchema =>
    JSON.parse(JSON.stringify(value).replace(/"#\/\$defs\/([^"]+)"/g, (_m, name: string) => JSON.stringify(`#/components/schemas/${rename(name)}`))) as JsonSchema;
  for (const [name, def] of Object.entries($defs)) sink.schemas[rename(name)] = rewrite(def);
  return rewrite(rest);
}

/** Input side of a schema: what a client sends (query strings before their transforms, defaults optional). */
function toSchema(schema: z.ZodType, parameters = false, sink?: DefsSink): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
    // A query or path parameter parsed from text is presented as what it means (integer, boolean).
    ...(parameters
      ? {
          override: ({ zodSchema, jsonSchema }) => {
            const documented = documentedParameterJson(zodSchema as unknown as z.ZodType);
            if (!documented) return;
            for (const key of Object.keys(jsonSchema)) delete (jsonSchema as JsonSchema)[key];
            Object.assign(jsonSchema, documented);
          },
        }
      : {}),
  }) as JsonSchema;
  return hoistDefs(rest, sink);
}

function objectParameters(schema: z.ZodType | undefined, where: 'path' | 'query'): JsonSchema[] {
  if (!schema) return [];
  const json = toSchema(schema, true);
  const properties = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: where,
      required: where === 'path' || required.has(name),
      ...(typeof description === 'string' ? { description } : {}),
      schema: rest,
    };
  });
}

function requiresToken(spec: RouteSpec): boolean {
  return spec.action !== null || ANY_TOKEN_ROUTES.has(`${spec.method} ${spec.url}`);
}

/** Statuses a route answers besides success: its own (`errors`) plus those of every route of its kind. */
export function errorStatuses(spec: RouteSpec): number[] {
  const statuses = new Set<number>(spec.errors ?? []);
  // Every route refuses a query it does not take (and /v1 routes validate X-Tenant-Id, params and
  // body too); at the edge any request may be too long in its URL or headers, and a body too slow.
  statuses.add(400);
  statuses.add(414);
  statuses.add(431);
  if (spec.body || spec.stream) statuses.add(408);
  if (requiresToken(spec)) {
    statuses.add(401);
    statuses.add(403);
    statuses.add(429); // [http.rate_limit], per token
  }
  if (spec.body || spec.stream) statuses.add(413);
  statuses.add(503); // starting or draining
  return [...statuses].sort((a, b) => a - b);
}

const TAGS: Record<string, string> = {
  aggregates: 'Aggregates: create, append, patch, archive, read, verify, prove',
  events: 'Events across aggregates',
  import: 'Bulk import of event records',
  export: 'Export of event records',
  stream: 'Events as they are committed',
  tenants: 'Tenants: placement, quotas and limits',
  schemas: 'The schema registry',
  tokens: 'The token ledger',
  plugins: 'Plugins and their delivery queue',
  system: 'Health, metrics, status and this document',
};
/** Path segments that belong to another tag. */
const TAG_ALIASES: Record<string, string> = { batch: 'aggregates', queue: 'plugins', status: 'system', 'tenant-meta': 'tenants' };

export function tagOf(spec: RouteSpec): string {
  if (!spec.url.startsWith('/v1/')) return 'system';
  const segment = spec.url.split('/')[2] ?? 'system';
  return TAG_ALIASES[segment] ?? segment;
}

const pascal = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * Every response schema becomes a component: the named ones of response-schemas.ts under their
 * names, a route's own inline one as `<OperationId>Response`. References between them stay refs.
 */
function responseComponents(routes: RouteSpec[]): { schemas: Record<string, JsonSchema>; idOf: (schema: z.ZodType) => string | undefined } {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of NAMED_RESPONSE_SCHEMAS) registry.add(schema, { id });
  for (const spec of routes) {
    responsesOf(spec).forEach(({ schema }, i) => {
      if (!registry.has(schema)) registry.add(schema, { id: `${pascal(operationIdOf(spec))}Response${i > 0 ? i + 1 : ''}` });
    });
  }
  const { schemas } = z.toJSONSchema(registry, { io: 'output', unrepresentable: 'any', uri: (id) => `#/components/schemas/${id}` }) as { schemas: Record<string, JsonSchema> };
  const out: Record<string, JsonSchema> = {};
  // `$id` = a fragment-only URI is not allowed in JSON Schema 2020-12, and `$schema` is the document's dialect already.
  for (const [id, { $schema: _dialect, $id: _id, ...schema }] of Object.entries(schemas)) out[id] = schema;
  return { schemas: out, idOf: (schema) => registry.get(schema)?.id };
}

function hasIdempotencyKey(spec: RouteSpec): boolean {
  if (!spec.body) return false;
  // A batch whose every item was replayed by its key answers the header too.
  if (spec.bodyItems) return true;
  const properties = (toSchema(spec.body, false, { schemas: {}, prefix: 'Probe' }).properties ?? {}) as Record<string, unknown>;
  return 'idempotency_key' in properties;
}

function operation(spec: RouteSpec, idOf: (schema: z.ZodType) => string | undefined, schemas: Record<string, JsonSchema>): JsonSchema {
  const sink: DefsSink = { schemas, prefix: `${pascal(operationIdOf(spec))}Body` };
  const status = String(spec.status ?? 200);
  const parameters = [...objectParameters(spec.params, 'path'), ...objectParameters(spec.query, 'query')];
  if (spec.url.startsWith('/v1/')) parameters.push({ $ref: '#/components/parameters/TenantId' });
  const declared = responsesOf(spec);
  const content = declared.length
    ? Object.fromEntries(declared.map(({ contentType, schema }) => [contentType, { schema: { $ref: `#/components/schemas/${idOf(schema) as string}` } }]))
    : { 'application/json': { schema: {} } };
  const success: JsonSchema = {
    description: 'Success',
    ...(hasIdempotencyKey(spec) ? { headers: { 'idempotent-replayed': { $ref: '#/components/headers/IdempotentReplayed' } } } : {}),
    content,
  };
  const errors = Object.fromEntries(errorStatuses(spec).map((s) => [String(s), { $ref: `#/components/responses/Error${s}` }]));
  return {
    operationId: operationIdOf(spec),
    summary: spec.summary,
    tags: [tagOf(spec)],
    ...(spec.action ? { 'x-eventdbx-action': spec.action } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(spec.body
      ? { requestBody: { required: !spec.body.safeParse(undefined).success, content: { 'application/json': { schema: toSchema(spec.body, false, sink) } } } }
      : {}),
    ...(spec.stream ? { requestBody: { required: true, content: { [spec.stream.contentType]: { schema: toSchema(spec.stream.line, false, sink) } } } } : {}),
    security: requiresToken(spec) ? [{ bearerAuth: [] }] : [],
    responses: { [status]: success, ...errors, default: { $ref: '#/components/responses/Error' } },
  };
}

/** One response per error status, listing the codes of the catalogue that answer it. */
function errorResponses(): Record<string, JsonSchema> {
  const byStatus = new Map<number, string[]>();
  for (const [code, { status, summary }] of Object.entries(ERROR_CATALOGUE)) {
    byStatus.set(status, [...(byStatus.get(status) ?? []), `\`${code}\`: ${summary}`]);
  }
  const content = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };
  const out: Record<string, JsonSchema> = {
    Error: { description: 'Any error; the status and `error.code` say which (see the other Error responses)', content },
  };
  for (const [status, lines] of [...byStatus].sort(([a], [b]) => a - b)) {
    out[`Error${status}`] = {
      description: lines.join('\n'),
      ...(status === 429 ? { headers: { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } } } : {}),
      content,
    };
  }
  return out;
}

export function buildOpenApi(routes: RouteSpec[], info: OpenApiInfo = {}): JsonSchema {
  const { schemas, idOf } = responseComponents(routes);
  const paths: Record<string, Record<string, JsonSchema>> = {};
  const operationIds = new Map<string, string>();
  const tags = new Set<string>();
  for (const spec of routes) {
    const op = operation(spec, idOf, schemas);
    const operationId = op.operationId as string;
    const other = operationIds.get(operationId);
    if (other) throw new Error(`operationId ${operationId} is used by ${other} and ${spec.method} ${spec.url}`);
    operationIds.set(operationId, `${spec.method} ${spec.url}`);
    tags.add(tagOf(spec));
    (paths[openApiPath(spec.url)] ??= {})[spec.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: info.title ?? 'EventDBX',
      version: info.version ?? '0.1.0',
      description: 'Event-sourced, write-side database server. Errors are { "error": { "code", "message", "details"? } }.',
    },
    servers: [{ url: '/', description: 'the server that serves this document' }, ...(info.servers?.() ?? [])],
    tags: [...tags].sort().map((name) => ({ name, ...(TAGS[name] ? { description: TAGS[name] } : {}) })),
    paths,
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT (EdDSA)', description: 'A token from `dbx token generate`, or <data_dir>/cli.token' } },
      parameters: {
        TenantId: { name: 'X-Tenant-Id', in: 'header', required: false, description: 'Tenant (default "default")', schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' } },
      },
      headers: {
        IdempotentReplayed: {
          description: '`true` when the write was a retry with an idempotency_key already used with the same content: the original result, nothing appended',
          schema: { type: 'string', enum: ['true'] },
        },
        RetryAfter: { description: 'Seconds to wait before the next request (rate_limited)', schema: { type: 'integer', minimum: 0 } },
      },
      schemas,
      responses: errorResponses(),
    },
  };
}

/** The route itself (no auth); it lists itself too, since it is one of the routes. */
export function openApiRoute(routes: () => RouteSpec[], info: OpenApiInfo = {}): RouteSpec {
  let document: JsonSchema | undefined;
  return defineRoute({
    method: 'GET',
    url: '/openapi.json',
    operationId: 'getOpenApi',
    summary: 'This OpenAPI 3.1 document, generated from the route table and its zod schemas',
    action: null,
    response: OpenApiDocument,
    handler: () => (document ??= buildOpenApi(routes(), info)),
  });
}
