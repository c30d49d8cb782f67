/**
 * GET /openapi.json: an OpenAPI 3.1 document generated from the same RouteSpec list (and the same
 * zod schemas) that registers and validates the routes, so the description cannot drift from what
 * the server accepts. Built once, on first request: z.toJSONSchema walks every schema (~ms).
 */
import { z } from 'zod';
import { ERROR_CATALOGUE } from '../core/index.js';
import { defineRoute, type RouteSpec } from './route-spec.js';
import { ANY_TOKEN_ROUTES } from './routes-system.js';

type JsonSchema = Record<string, unknown>;

export interface OpenApiInfo {
  title?: string;
  version?: string;
}

/** `:name` segments become `{name}`. */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** Input side of a schema: what a client sends (query strings before their transforms, defaults optional). */
function toSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

function objectParameters(schema: z.ZodType | undefined, where: 'path' | 'query'): JsonSchema[] {
  if (!schema) return [];
  const json = toSchema(schema);
  const properties = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    ...(typeof property.description === 'string' ? { description: property.description } : {}),
    schema: property,
  }));
}

function requiresToken(spec: RouteSpec): boolean {
  return spec.action !== null || ANY_TOKEN_ROUTES.has(`${spec.method} ${spec.url}`);
}

function operation(spec: RouteSpec): JsonSchema {
  const status = String(spec.status ?? 200);
  const isMetrics = spec.url === '/metrics';
  const parameters = [...objectParameters(spec.params, 'path'), ...objectParameters(spec.query, 'query')];
  if (spec.url.startsWith('/v1/')) parameters.push({ $ref: '#/components/parameters/TenantId' });
  return {
    operationId: `${spec.method.toLowerCase()}${openApiPath(spec.url).replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
    summary: spec.summary,
    ...(spec.action ? { 'x-eventdbx-action': spec.action } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(spec.body
      ? { requestBody: { required: !spec.body.safeParse(undefined).success, content: { 'application/json': { schema: toSchema(spec.body) } } } }
      : {}),
    ...(spec.stream ? { requestBody: { required: true, content: { [spec.stream.contentType]: { schema: toSchema(spec.stream.line) } } } } : {}),
    security: requiresToken(spec) ? [{ bearerAuth: [] }] : [],
    responses: {
      [status]: {
        description: 'Success',
        content: isMetrics ? { 'text/plain': { schema: { type: 'string' } } } : { 'application/json': { schema: {} } },
      },
      default: { $ref: '#/components/responses/Error' },
    },
  };
}

export function buildOpenApi(routes: RouteSpec[], info: OpenApiInfo = {}): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const spec of routes) {
    const path = openApiPath(spec.url);
    (paths[path] ??= {})[spec.method.toLowerCase()] = operation(spec);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: info.title ?? 'EventDBX',
      version: info.version ?? '0.1.0',
      description: 'Event-sourced, write-side database server. Errors are { "error": { "code", "message", "details"? } }.',
    },
    paths,
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT (EdDSA)' } },
      parameters: {
        TenantId: { name: 'X-Tenant-Id', in: 'header', required: false, description: 'Tenant (default "default")', schema: { type: 'string' } },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: {
                code: { type: 'string', enum: Object.keys(ERROR_CATALOGUE) },
                message: { type: 'string' },
                details: {},
              },
            },
          },
        },
      },
      responses: {
        Error: {
          description: Object.entries(ERROR_CATALOGUE)
            .map(([code, { status, summary }]) => `${status} ${code}: ${summary}`)
            .join('\n'),
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    },
  };
}

/** The route itself (no auth); it lists itself too, since it is one of the routes. */
export function openApiRoute(routes: () => RouteSpec[], info: OpenApiInfo = {}): RouteSpec {
  let document: JsonSchema | undefined;
  return defineRoute({
    method: 'GET',
    url: '/openapi.json',
    summary: 'This OpenAPI 3.1 document, generated from the route table and its zod schemas',
    action: null,
    handler: () => (document ??= buildOpenApi(routes(), info)),
  });
}
