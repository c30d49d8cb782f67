/**
 * Schema registry routes (issue 9, DESIGN §6): list, get, create, replace, delete, history, the
 * JSON Schema export and a dry-run validation. Actions `schema.read` / `schema.write`, resource the
 * aggregate type. The zod body below checks the shape of the original's schema JSON (reference
 * §6.1) and describes it in /openapi.json; `parseAggregateSchema` then checks what a shape cannot
 * (type names, regexes, range bounds, names) and lists every problem in one `validation_failed`.
 */
import { z } from 'zod';
import { DbxError, aggregateTypeSchema, allowsResource, eventTypeSchema, writeSchemas, writeLimitsFrom, type Config } from '../core/index.js';
import { EVENT_NOTE_CHARS_MAX, FORMAT_NAMES, compileSchema, parseAggregateSchema, toJsonSchema, type AggregateSchema, type SchemaRecord } from '../core/schema/index.js';
import { authorize, type Principal } from './auth.js';
import * as responses from './response-schemas.js';
import { defineRoute, documentParameterAs, queryInt, type RouteSpec } from './route-spec.js';
import { schemaNotFound, type SchemaRegistry, type SchemaVersionRecord } from './schema-registry.js';

/**
 * Shape of one column's settings as sent: a bare type string, or the type with its rules. It
 * accepts exactly what parseAggregateSchema's own shape check accepts (nulls for absent rules, one
 * regex or a list, format names in any case), so the semantic problems of a well-shaped body all
 * come back together from the parser.
 */
interface ColumnInput {
  type: string;
  required?: boolean | null | undefined;
  contains?: string[] | null | undefined;
  does_not_contain?: string[] | null | undefined;
  regex?: string | string[] | null | undefined;
  length?: { min?: number | null | undefined; max?: number | null | undefined } | null | undefined;
  range?: { min?: string | number | null | undefined; max?: string | number | null | undefined } | null | undefined;
  format?: string | null | undefined;
  must_match?: unknown;
  properties?: Record<string, ColumnInput | string> | null | undefined;
}

const names = z.array(z.string().min(1, 'names cannot be empty'));
const lengthBound = z.int().min(0).nullish();
/** Range bounds are strings in the original (parsed in the column's type); numbers are accepted too. */
const rangeBound = z.union([z.string(), z.number()]).nullish();

const columnRules: z.ZodType<ColumnInput> = z.lazy(() =>
  z.strictObject({
    type: z.string().describe('integer|int, float|double, decimal(p,s)|numeric(p,s), boolean|bool, text|string, timestamp, date, json, binary|bytes, object (any case)'),
    required: z.boolean().nullish(),
    contains: z.array(z.string()).nullish().describe('text columns: substrings the value must contain'),
    does_not_contain: z.array(z.string()).nullish(),
    regex: z.union([z.string(), z.array(z.string())]).nullish().describe('text columns: patterns, each an unanchored search; compiled when the schema is saved'),
    length: z.strictObject({ min: lengthBound, max: lengthBound }).nullish().describe('text: characters; binary: decoded bytes'),
    range: z.strictObject({ min: rangeBound, max: rangeBound }).nullish().describe('bounds in the column type (integer, float, decimal, timestamp, date)'),
    format: z.string().nullish().describe(`text columns: one of ${FORMAT_NAMES.join(', ')}`),
    must_match: z.unknown().optional().describe('legacy key of the original: accepted and ignored'),
    properties: z.record(z.string(), columnSettings).nullish().describe('nested columns of an object column'),
  }),
);
const columnSettings: z.ZodType<ColumnInput | string> = z.lazy(() => z.union([z.string(), columnRules]));

const eventSchema = z
  .strictObject({
    fields: names.nullish().describe('when non-empty: every listed field must be present and no other'),
    notes: z.string().nullish().describe(`a default note (≤ ${EVENT_NOTE_CHARS_MAX} characters), never applied to events`),
  })
  .nullish();

const schemaFields = {
  aggregate: aggregateTypeSchema.optional().describe('must match the path when given'),
  snapshot_threshold: z.int().min(0).nullish().describe('events between automatic snapshots; null = the config default'),
  locked: z.boolean().nullish().describe('refuse every write (409 schema_locked)'),
  field_locks: names.nullish().describe('top-level fields a payload may not set'),
  hidden: z.boolean().nullish().describe('the aggregate type answers 404 on reads and leaves lists'),
  hidden_fields: names.nullish().describe('left out of every answer that carries state'),
  column_types: z.record(z.string(), columnSettings).nullish(),
  events: z.record(z.string(), eventSchema).nullish().describe('event type → { fields, notes }'),
  created_at: z.string().nullish().describe('ignored: the registry keeps the first creation time'),
  updated_at: z.string().nullish().describe('ignored: the registry sets it'),
};

/** PUT /v1/schemas/{aggregate}: the path names the aggregate. */
export const schemaBody = z.strictObject(schemaFields);
/** POST /v1/schemas: the body names it. */
export const createSchemaBody = z.strictObject({ ...schemaFields, aggregate: aggregateTypeSchema });

const aggregateParams = z.strictObject({ aggregate: aggregateTypeSchema });
const versionParams = aggregateParams.extend({
  version: documentParameterAs(z.string().regex(/^[1-9]\d{0,15}$/, 'must be a positive integer').transform(Number), { type: 'integer', minimum: 1 }),
});
const resource = (p: { aggregate: string }) => ({ type: p.aggregate });
const writeQuery = z.strictObject({ expected_version: queryInt().optional().describe('refuse with 409 version_conflict unless the schema is at this version (0 = none)') });

/** Parses the body into a schema named `aggregate`; every problem lands in one validation_failed. */
function parseSchema(aggregate: string, body: z.infer<typeof schemaBody>): AggregateSchema {
  if (body.aggregate !== undefined && body.aggregate !== aggregate) {
    throw new DbxError('validation_failed', `body.aggregate '${body.aggregate}' does not match the path's aggregate '${aggregate}'`, [
      { field: 'aggregate', rule: 'shape', message: `must be '${aggregate}' (the path names the aggregate)` },
    ]);
  }
  return parseAggregateSchema({ ...body, aggregate });
}

/**
 * A schema body the request schema refused, checked by the schema parser itself: it goes on
 * through every column and event past a shape problem, so its regex, type, bound and event-name
 * problems join the request schema's in one 400. Its own shape problems are the request schema's
 * (said there with zod's codes), so they are not repeated.
 */
function moreSchemaProblems(raw: unknown, pathNamesAggregate: boolean): { path: string; field: string; rule: string; message: string }[] {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return [];
  const body = raw as Record<string, unknown>;
  try {
    // PUT: the path names the aggregate (parseSchema checks a body naming another), so a stand-in.
    parseAggregateSchema(pathNamesAggregate && body.aggregate === undefined ? { ...body, aggregate: 'schema' } : body);
  } catch (err) {
    if (!(err instanceof DbxError) || !Array.isArray(err.details)) return [];
    return (err.details as { field: string; rule: string; message: string }[])
      .filter((d) => d.rule !== 'shape')
      .map((d) => ({ path: d.field ? `body.${d.field}` : 'body', field: d.field, rule: d.rule, message: d.message }));
  }
  return [];
}

function expected(query: { expected_version?: number | undefined }): { expectedVersion?: number } {
  return query.expected_version !== undefined ? { expectedVersion: query.expected_version } : {};
}

/** The rows a token may see: like aggregate lists, filtered to the types it covers. */
function visibleTo(principal: Principal): (record: SchemaRecord) => boolean {
  const { resources } = principal.claims;
  if (resources.length === 0 || resources.includes('*') || resources.includes('*.*')) return () => true;
  return (record) => allowsResource(principal.claims, record.schema.aggregate);
}

export interface SchemaRouteLimits {
  list_page_size: number;
  page_limit: number;
  limits: Config['limits'];
}

export function schemaRoutes(registry: SchemaRegistry, config: SchemaRouteLimits): RouteSpec[] {
  const take = (requested: number | undefined): number => Math.min(requested ?? config.list_page_size, config.page_limit);
  const payload = writeSchemas(writeLimitsFrom(config.limits)).payload;
  const get = (tenant: string, aggregate: string): SchemaRecord => {
    const record = registry.get(tenant, aggregate);
    if (!record) throw schemaNotFound(aggregate);
    return record;
  };
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/schemas',
      operationId: 'listSchemas',
      response: responses.SchemaPage,
      summary: "The tenant's schemas in force, by aggregate name → { items: [{ tenant, version, schema }], next_cursor }",
      action: 'schema.read',
      query: z.strictObject({ take: queryInt(0).optional(), cursor: aggregateTypeSchema.optional().describe('the last aggregate name of the previous page') }),
      handler: ({ query, tenant, principal }) => {
        const limit = take(query.take);
        const visible = visibleTo(principal);
        const items = registry.list(tenant).filter((r) => visible(r) && (query.cursor === undefined || r.schema.aggregate > query.cursor));
        const page = items.slice(0, limit);
        return { items: page, next_cursor: limit > 0 && items.length > limit ? (page.at(-1)?.schema.aggregate ?? null) : null };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/schemas',
      operationId: 'createSchema',
      response: responses.SchemaRecord,
      errors: [409],
      summary: 'Create a schema (409 already_exists if the aggregate has one) → 201 { tenant, version, schema }',
      action: 'schema.write',
      status: 201,
      body: createSchemaBody,
      moreBodyProblems: (raw) => moreSchemaProblems(raw, false),
      handler: ({ body, tenant, principal }) => {
        authorize(principal, 'schema.write', { type: body.aggregate });
        return registry.put(tenant, parseSchema(body.aggregate, body), { createOnly: true });
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/schemas/:aggregate',
      operationId: 'getSchema',
      response: responses.SchemaRecord,
      errors: [404],
      summary: 'The schema in force for an aggregate type → { tenant, version, schema }',
      action: 'schema.read',
      resource,
      params: aggregateParams,
      handler: ({ params, tenant }) => get(tenant, params.aggregate),
    }),
    defineRoute({
      method: 'PUT',
      url: '/v1/schemas/:aggregate',
      operationId: 'putSchema',
      response: responses.SchemaRecord,
      errors: [409],
      summary: 'Create or replace a whole schema (a new version; an unchanged schema keeps its version) → { tenant, version, schema }',
      action: 'schema.write',
      resource,
      params: aggregateParams,
      query: writeQuery,
      body: schemaBody,
      moreBodyProblems: (raw) => moreSchemaProblems(raw, true),
      handler: ({ params, query, body, tenant }) => registry.put(tenant, parseSchema(params.aggregate, body), expected(query)),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/schemas/:aggregate',
      operationId: 'deleteSchema',
      response: responses.SchemaVersionRecord,
      errors: [404, 409],
      summary: 'Remove a schema; its history stays, ending with a tombstone version → { tenant, version, deleted: true, … }',
      action: 'schema.write',
      resource,
      params: aggregateParams,
      query: writeQuery,
      handler: ({ params, query, tenant }) => registry.delete(tenant, params.aggregate, expected(query)),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/schemas/:aggregate/versions',
      operationId: 'listSchemaVersions',
      response: responses.SchemaVersionPage,
      errors: [404],
      summary: "A schema's history, oldest first: every change a numbered version, a delete a tombstone → { items, next_cursor }",
      action: 'schema.read',
      resource,
      params: aggregateParams,
      query: z.strictObject({ take: queryInt(0).optional(), cursor: z.string().regex(/^\d{1,16}$/, 'must be a version number').optional() }),
      handler: ({ params, query, tenant }) => {
        const limit = take(query.take);
        const after = query.cursor !== undefined ? Number(query.cursor) : 0;
        const items: SchemaVersionRecord[] = registry.versions(tenant, params.aggregate, { after, take: limit + 1 });
        if (items.length === 0 && after === 0) throw schemaNotFound(params.aggregate);
        const page = items.slice(0, limit);
        // take=0 is an empty page, as on every list (reference §3.7).
        return { items: page, next_cursor: limit > 0 && items.length > limit ? String(page.at(-1)?.version) : null };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/schemas/:aggregate/versions/:version',
      operationId: 'getSchemaVersion',
      response: responses.SchemaVersionRecord,
      errors: [404],
      summary: 'One version of a schema (what an event recording that schema version was checked against)',
      action: 'schema.read',
      resource,
      params: versionParams,
      handler: ({ params, tenant }) => {
        const record = registry.version(tenant, params.aggregate, params.version);
        if (!record) throw new DbxError('not_found', `schema ${params.aggregate} has no version ${params.version}`);
        return record;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/schemas/:aggregate/json-schema',
      operationId: 'getSchemaJsonSchema',
      response: responses.JsonSchemaDocuments,
      errors: [404],
      summary: 'The schema as JSON Schema 2020-12 documents, one per event type',
      action: 'schema.read',
      resource,
      params: aggregateParams,
      handler: ({ params, tenant }) => toJsonSchema(get(tenant, params.aggregate).schema),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/schemas/:aggregate/validate',
      operationId: 'validatePayload',
      response: responses.PayloadValidation,
      summary: 'Check a payload against the schema in force without writing → { valid, violations, payload, schema_version } (no schema: valid)',
      action: 'schema.read',
      resource,
      params: aggregateParams,
      body: z.strictObject({ event_type: eventTypeSchema, payload }),
      handler: ({ params, body, tenant }) => {
        const record = registry.get(tenant, params.aggregate);
        if (!record) return { valid: true, violations: [], payload: body.payload, schema_version: null };
        // Compiled per call: a dry run is rare, and the enforcement keeps its own compiled copies.
        const outcome = compileSchema(record.schema, record.version).validatePayload(body.event_type, body.payload);
        return outcome.ok
          ? { valid: true, violations: [], payload: outcome.payload, schema_version: record.version }
          : { valid: false, violations: outcome.violations, payload: body.payload, schema_version: record.version };
      },
    }),
  ];
}
