/**
 * zod schemas for every input (HTTP bodies, params, queries; the CLI's direct mode reuses them), and
 * the conversion of a zod failure into the `validation_failed` error with one detail per field.
 */
import { z } from 'zod';
import { DbxError } from './errors.js';
import { installZodMessages } from './zod-messages.js';
import {
  AGGREGATE_ID_CHARS_MAX,
  BATCH_EVENTS_MAX,
  IDEMPOTENCY_KEY_CHARS_MAX,
  METADATA_BYTES_MAX,
  NAME_CHARS_MAX,
  NOTE_CHARS_MAX,
  PATCH_OPS_MAX,
  PAYLOAD_BYTES_MAX,
  TENANT_CHARS_MAX,
  DEFAULT_WRITE_LIMITS,
  checkJsonValue,
  isWellFormed,
  type WriteLimits,
} from './limits.js';
import { RESERVED_EVENT_TYPES } from './state.js';

// Every answer says what failed in our words (issue 10: no library message in any answer).
installZodMessages();

const SNAKE_CASE = /^[a-z][a-z0-9_]*$/;

export const aggregateTypeSchema = z
  .string()
  .max(NAME_CHARS_MAX, `aggregate_type cannot exceed ${NAME_CHARS_MAX} characters`)
  .regex(SNAKE_CASE, 'aggregate_type must be lowercase snake_case');

export const eventTypeSchema = z
  .string()
  .max(NAME_CHARS_MAX, `event_type cannot exceed ${NAME_CHARS_MAX} characters`)
  .regex(SNAKE_CASE, 'event_type must be lowercase snake_case')
  .refine((value) => !RESERVED_EVENT_TYPES.has(value), 'event_type is reserved for archive/restore');

export const aggregateIdSchema = z
  .string()
  .min(1, 'aggregate_id must not be empty')
  .max(AGGREGATE_ID_CHARS_MAX, `aggregate_id cannot exceed ${AGGREGATE_ID_CHARS_MAX} characters`)
  .regex(/^[A-Za-z0-9_-]+$/, 'aggregate_id may only contain letters, numbers, underscores, or hyphens');

export const tenantSchema = z
  .string()
  .max(TENANT_CHARS_MAX, `tenant cannot exceed ${TENANT_CHARS_MAX} characters`)
  .transform((value) => value.toLowerCase())
  .pipe(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'tenant must start with a letter or digit and use [a-z0-9_-]'));

const jsonObjectSchema = z.record(z.string(), z.unknown());

function byteLength(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}

const UNICODE_MESSAGE = 'must be well-formed Unicode (it holds a lone surrogate; I-JSON, RFC 7493)';
/** A free-text string field: refused when it holds a lone surrogate (it would come back as U+FFFD). */
const textSchema = z.string().refine(isWellFormed, UNICODE_MESSAGE);

type JsonLimits = Pick<WriteLimits, 'jsonDepthMax' | 'jsonNodesMax'>;
type Ctx = z.core.$RefinementCtx;

/**
 * Walks a JSON field once (depth, node count, I-JSON) and only then measures its bytes: the walk
 * bounds the depth first, so `JSON.stringify` below never meets a value deep enough to overflow.
 */
function checkField(value: unknown, ctx: Ctx, limits: JsonLimits, what: string, bytesMax: number): void {
  const issue = checkJsonValue(value, limits);
  if (issue) {
    ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    return;
  }
  if (byteLength(value) > bytesMax) {
    ctx.addIssue({ code: 'custom', message: `${what} exceeds maximum size of ${bytesMax} bytes`, params: { tooLarge: true } });
  }
}

function payloadSchemaFor(limits: JsonLimits) {
  return jsonObjectSchema.superRefine((value, ctx) => checkField(value, ctx, limits, 'payload', PAYLOAD_BYTES_MAX));
}

function metadataSchemaFor(limits: JsonLimits) {
  return jsonObjectSchema.superRefine((value, ctx) => {
    for (const key of Object.keys(value)) {
      if (!/^@[A-Za-z0-9][A-Za-z0-9_-]*$/.test(key)) {
        ctx.addIssue({ code: 'custom', path: [key], message: `metadata key '${key}' must start with '@' followed by letters, numbers, underscores, or hyphens` });
        return;
      }
    }
    checkField(value, ctx, limits, 'metadata', METADATA_BYTES_MAX);
  });
}

export const noteSchema = textSchema.refine((v) => [...v].length <= NOTE_CHARS_MAX, `note cannot exceed ${NOTE_CHARS_MAX} characters`);
export const expectedVersionSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const idempotencyKeySchema = textSchema.pipe(z.string().min(1).max(IDEMPOTENCY_KEY_CHARS_MAX));

const pointerSchema = textSchema
  .refine((p) => p === '' || p.startsWith('/'), "a JSON pointer must be empty or start with '/'")
  // RFC 6901 §3: '~' is only ever '~0' or '~1'.
  .refine((p) => !/~(?![01])/.test(p), "a JSON pointer may use '~' only as '~0' (for '~') or '~1' (for '/')");
export const patchOperationSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('add'), path: pointerSchema, value: z.unknown() }),
  z.strictObject({ op: z.literal('replace'), path: pointerSchema, value: z.unknown() }),
  z.strictObject({ op: z.literal('test'), path: pointerSchema, value: z.unknown() }),
  z.strictObject({ op: z.literal('remove'), path: pointerSchema }),
  z.strictObject({ op: z.literal('move'), path: pointerSchema, from: pointerSchema }),
  z.strictObject({ op: z.literal('copy'), path: pointerSchema, from: pointerSchema }),
]);

function patchSchemaFor(limits: JsonLimits) {
  return z
    .array(patchOperationSchema)
    .min(1, 'patch must contain at least one operation')
    .max(PATCH_OPS_MAX)
    .superRefine((ops, ctx) => {
      // Depth counts from each value; the node budget is shared by the whole patch.
      const budget = { nodes: 0 };
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i] as { value?: unknown };
        if (!('value' in op)) continue;
        const issue = checkJsonValue(op.value, limits, budget);
        if (issue) {
          ctx.addIssue({ code: 'custom', path: [i, 'value', ...issue.path], message: issue.message });
          return;
        }
      }
      if (byteLength(ops) > PAYLOAD_BYTES_MAX) {
        ctx.addIssue({ code: 'custom', message: `patch exceeds maximum size of ${PAYLOAD_BYTES_MAX} bytes`, params: { tooLarge: true } });
      }
    });
}

const commentSchema = textSchema.pipe(z.string().max(1024));

export const lifecycleBodySchema = z.strictObject({
  comment: commentSchema.optional(),
  note: noteSchema.optional(),
  expected_version: expectedVersionSchema.optional(),
  idempotency_key: idempotencyKeySchema.optional(),
});

export const snapshotBodySchema = z.strictObject({ comment: commentSchema.optional() });

/**
 * The write bodies for one set of limits (the server builds them from `[limits]`; the module-level
 * schemas below use the defaults, for the CLI's stage and for types).
 */
export function writeSchemas(limits: JsonLimits) {
  const payload = payloadSchemaFor(limits);
  const metadata = metadataSchemaFor(limits);
  const patch = patchSchemaFor(limits);
  const createBody = z.strictObject({
    event_type: eventTypeSchema,
    payload: payload.default({}),
    metadata: metadata.optional(),
    note: noteSchema.optional(),
    // Every write takes it (DESIGN §3): on a create only 0 can match (an existing aggregate is 409 already_exists).
    expected_version: expectedVersionSchema.optional(),
    idempotency_key: idempotencyKeySchema.optional(),
  });
  const applyBody = z.strictObject({
    event_type: eventTypeSchema,
    payload: payload.default({}),
    metadata: metadata.optional(),
    note: noteSchema.optional(),
    expected_version: expectedVersionSchema.optional(),
    idempotency_key: idempotencyKeySchema.optional(),
  });
  const eventBody = applyBody.extend({ aggregate_type: aggregateTypeSchema, aggregate_id: aggregateIdSchema });
  const patchBody = z.strictObject({
    event_type: eventTypeSchema,
    patch,
    metadata: metadata.optional(),
    note: noteSchema.optional(),
    expected_version: expectedVersionSchema.optional(),
    idempotency_key: idempotencyKeySchema.optional(),
  });
  /** A patch inside a batch: the patch body plus the aggregate it applies to. */
  const batchPatchItem = patchBody.extend({ aggregate_type: aggregateTypeSchema, aggregate_id: aggregateIdSchema });
  /** One event of a batch (or of the CLI's stage): an apply body, or a patch body with `patch`. */
  const batchItem = z.union([eventBody, batchPatchItem]);
  const batchBody = z.strictObject({
    events: z.array(batchItem).min(1, 'a batch needs at least one event').max(BATCH_EVENTS_MAX),
  });
  return { payload, metadata, createBody, applyBody, eventBody, patchBody, batchPatchItem, batchItem, batchBody };
}

export type WriteSchemas = ReturnType<typeof writeSchemas>;

const defaults = writeSchemas(DEFAULT_WRITE_LIMITS);
export const payloadSchema = defaults.payload;
export const metadataSchema = defaults.metadata;
export const createBodySchema = defaults.createBody;
export const applyBodySchema = defaults.applyBody;
export const eventBodySchema = defaults.eventBody;
export const patchBodySchema = defaults.patchBody;
export const batchPatchItemSchema = defaults.batchPatchItem;
export const batchItemSchema = defaults.batchItem;
export const batchBodySchema = defaults.batchBody;

export type CreateBody = z.infer<typeof createBodySchema>;
export type ApplyBody = z.infer<typeof applyBodySchema>;
export type EventBody = z.infer<typeof eventBodySchema>;
export type PatchBody = z.infer<typeof patchBodySchema>;
export type BatchPatchItem = z.infer<typeof batchPatchItemSchema>;
export type BatchItem = z.infer<typeof batchItemSchema>;
export type LifecycleBody = z.infer<typeof lifecycleBodySchema>;

/** Parses or throws `validation_failed` (413 `payload_too_large` when a size limit was the cause). */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown, where = 'body'): z.output<T> {
  let result: z.ZodSafeParseResult<z.output<T>>;
  try {
    result = schema.safeParse(value);
  } catch (err) {
    // A recursive schema (nested schema columns) walks the input recursively: input nested deep
    // enough overflows the stack. That is the input's fault, and says so (not a 500).
    if (err instanceof RangeError && /call stack/i.test(err.message)) {
      const message = 'nests too deeply to check';
      throw new DbxError('validation_failed', `${where}: ${message}`, [{ path: where, message }]);
    }
    throw err;
  }
  if (result.success) return result.data;
  throw zodToDbxError(result.error, where);
}

/**
 * A failed union (a batch item is an apply or a patch) reports the issues of the closest branch,
 * so the caller reads "payload: …" rather than "Invalid input".
 */
function flatten(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  return issues.flatMap((issue) => {
    if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [issue];
    // A branch that rejects a key the caller sent is the wrong shape altogether; among the others,
    // the one with the fewest complaints is what the caller meant.
    const score = (branch: z.core.$ZodIssue[]): number => branch.length + (branch.some((i) => i.code === 'unrecognized_keys') ? 1000 : 0);
    const closest = issue.errors.reduce((best, branch) => (score(branch) < score(best) ? branch : best));
    return flatten(closest.map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] })));
  });
}

export function zodToDbxError(error: z.ZodError, where: string): DbxError {
  const issues = flatten(error.issues);
  // Like a schema violation ({ field, rule, message }, DESIGN §6 "details list each field"): the
  // field inside `where` (the whole of it when the issue is about `where` itself) and the check that
  // failed (zod's issue code: invalid_type, unrecognized_keys, too_small, …); `path` keeps `where`.
  const all = issues.map((issue) => ({
    path: [where, ...issue.path.map(String)].join('.'),
    field: issue.path.length > 0 ? issue.path.map(String).join('.') : where,
    rule: issue.code,
    message: issue.message,
  }));
  // One problem, one entry: two checks of one schema can report the same thing (`.int()` and
  // `.max()` both say "at most 2^53 − 1" of 1e300).
  const seen = new Set<string>();
  const details = all.filter((d) => {
    const key = `${d.path}\u0000${d.rule}\u0000${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const tooLarge = issues.some((issue) => issue.code === 'custom' && (issue as { params?: { tooLarge?: boolean } }).params?.tooLarge);
  if (tooLarge) return new DbxError('payload_too_large', details.find((d) => d.message.includes('exceeds'))?.message ?? 'too large', details);
  const first = details[0];
  return new DbxError('validation_failed', first ? `${first.path}: ${first.message}` : 'validation failed', details);
}
