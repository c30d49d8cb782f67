/** Write routes (DESIGN §6): create, apply, patch, archive, restore, batch, snapshots. */
import { z } from 'zod';
import {
  aggregateIdSchema,
  aggregateTypeSchema,
  DEFAULT_WRITE_LIMITS,
  DbxError,
  eventBodySchema,
  lifecycleBodySchema,
  snapshotBodySchema,
  writeSchemas,
  type BatchPatchItem,
  type JsonObject,
  type WriteLimits,
} from '../core/index.js';
import type { WriteResult } from '../shard-worker/index.js';
import { authorize, issuerOf, type Principal } from './auth.js';
import type { Reader } from './reader.js';
import * as responses from './response-schemas.js';
import { defineRoute, type RouteSpec } from './route-spec.js';
import type { UnplacedCommand, Writer } from './writes.js';
import { SchemaVisibility, maskedPatchFailure } from './schema-visibility.js';
import type { WriteAllowance } from './write-allowance.js';

export const aggregateParams = z.strictObject({ type: aggregateTypeSchema, id: aggregateIdSchema });
type AggregateParams = z.infer<typeof aggregateParams>;
const resource = (p: AggregateParams) => ({ type: p.type, id: p.id });

/** Whether the caller may read the aggregate (the `aggregate.read` action on it) at all. */
function mayRead(principal: Principal, type: string, id: string): boolean {
  try {
    authorize(principal, 'aggregate.read', { type, id });
    return true;
  } catch {
    return false;
  }
}

/**
 * Archive, restore and snapshot answer with the aggregate's whole state, which the caller did not
 * write: it is left out (no `state` member) for a caller that may not read the aggregate, and for
 * a hidden type (`hidden: true`: reads answer 404, so its state never leaves the server).
 */
function stateIfReadable<T extends { state: unknown }>(principal: Principal, hiddenType: boolean, answer: T, type: string, id: string): T | Omit<T, 'state'> {
  if (!hiddenType && mayRead(principal, type, id)) return answer;
  const { state: _state, ...rest } = answer;
  return rest;
}

type PatchOps = readonly { op: string; path: string; from?: string }[];

/**
 * A patch is a write that reads: `test` answers 201 or 400 by the stored value, `copy`/`move` put
 * a stored value where the answer shows it, and a failed op names the path that was not there. A
 * caller that may not read the aggregate (no `aggregate.read` on it, or a hidden type) is refused
 * ops that read (403, before anything is looked up) and is told only that a patch failed, not
 * which op or path. What stays visible to it is that the patch applied or not.
 */
function patchReadGuard(principal: Principal, hiddenType: boolean, type: string, id: string, ops: PatchOps): { maskFailure: boolean } {
  if (!hiddenType && mayRead(principal, type, id)) return { maskFailure: false };
  ops.forEach((op, i) => {
    if (op.op === 'test' || op.op === 'copy' || op.op === 'move') {
      throw new DbxError('forbidden', `patch op ${i} (${op.op}) reads the state of ${type}/${id}, which this token may not read${hiddenType ? ' (the type is hidden by its schema)' : ' (it needs aggregate.read)'}`);
    }
  });
  return { maskFailure: true };
}

const NOT_READABLE = 'this token may not read the aggregate';

function base(principal: Principal, tenant: string, type: string, id: string) {
  return { tenant, aggregate_type: type, aggregate_id: id, issued_by: issuerOf(principal) };
}

function eventFields(body: { event_type: string; metadata?: Record<string, unknown> | undefined; note?: string | undefined }) {
  return {
    event_type: body.event_type,
    ...(body.metadata !== undefined ? { extensions: body.metadata as JsonObject } : {}),
    ...(body.note !== undefined ? { note: body.note } : {}),
  };
}

function concurrency(body: { expected_version?: number | undefined; idempotency_key?: string | undefined }) {
  return {
    ...(body.expected_version !== undefined ? { expected_version: body.expected_version } : {}),
    ...(body.idempotency_key !== undefined ? { idempotency_key: body.idempotency_key } : {}),
  };
}

function markReplay(result: WriteResult, reply: { header(name: string, value: string): unknown }): void {
  if (result.replayed) reply.header('idempotent-replayed', 'true');
}

export function applyCommand(principal: Principal, tenant: string, body: z.infer<typeof eventBodySchema>): UnplacedCommand {
  return {
    op: 'apply',
    ...base(principal, tenant, body.aggregate_type, body.aggregate_id),
    ...eventFields(body),
    payload: body.payload as JsonObject,
    ...concurrency(body),
  };
}

export function patchCommand(principal: Principal, tenant: string, body: BatchPatchItem): UnplacedCommand {
  return {
    op: 'patch',
    ...base(principal, tenant, body.aggregate_type, body.aggregate_id),
    ...eventFields(body),
    patch: body.patch as UnplacedCommand['patch'],
    ...concurrency(body),
  };
}

/**
 * `limits` come from `[limits]` in config.toml: the body schemas are built once here, so the
 * per-request cost is the one walk each JSON field gets during validation.
 */
export function writeRoutes(
  writer: Writer,
  reader: Reader,
  limits: WriteLimits = DEFAULT_WRITE_LIMITS,
  visibility = new SchemaVisibility(),
  allowance?: WriteAllowance,
): RouteSpec[] {
  const schemas = writeSchemas(limits);
  // One accepted write = one event; a limited token's allowance is charged per event (see WriteAllowance).
  /**
   * The aggregate as the write left it (at its event's version), not as it is now: a later write,
   * or an idempotent replay long after, must not change what this write answers. `archived` is
   * the write's own: its event is the last one at that version.
   */
  const viewAfter = (tenant: string, result: WriteResult, archived: boolean) => {
    const { aggregate_type: type, aggregate_id: id, version } = result.event;
    return { ...reader.getAggregate(tenant, type, id, { version, eventsMax: 0 }), archived };
  };
  /**
   * A batch body's commands, after the checks made before anything is looked up (each item's
   * resource; patches that read state the token may not read, or hidden fields), and how its
   * failures are masked (a failed patch that touches what the caller may not see says no more).
   */
  const batchCommands = (events: z.infer<typeof schemas.batchBody>['events'], principal: Principal, tenant: string) => {
    let maskFailure = false;
    for (const e of events) {
      authorizeBodyResource(principal, e.aggregate_type, e.aggregate_id);
      if (!('patch' in e)) continue;
      if (patchReadGuard(principal, visibility.hiddenType(tenant, e.aggregate_type), e.aggregate_type, e.aggregate_id, e.patch).maskFailure) maskFailure = true;
      visibility.assertPatchReadsVisible(tenant, e.aggregate_type, e.patch);
    }
    const commands = events.map((e) => ('patch' in e ? patchCommand(principal, tenant, e) : applyCommand(principal, tenant, e)));
    const hidden = events.some((e) => 'patch' in e && visibility.patchTouchesHidden(tenant, e.aggregate_type, e.patch));
    const masked = <T>(work: Promise<T>): Promise<T> =>
      work.catch((err: unknown) => {
        throw maskFailure ? maskedPatchFailure(err, NOT_READABLE) : visibility.maskPatchFailure(err, hidden);
      });
    return { commands, masked };
  };
  const writeOne = (principal: Principal, command: UnplacedCommand): Promise<WriteResult> =>
    allowance
      ? allowance.spend(
          principal,
          1,
          () => writer.write(command),
          (r) => r.replayed === true,
          command.idempotency_key !== undefined ? () => writer.write({ ...command, replay_only: true }) : undefined,
        )
      : writer.write(command);
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/aggregates/:type/:id',
      operationId: 'createAggregate',
      response: responses.AggregateView,
      errors: [409],
      summary: 'Create an aggregate with its first event',
      action: 'aggregate.create',
      resource,
      status: 201,
      params: aggregateParams,
      body: schemas.createBody,
      handler: async ({ params, body, principal, tenant, reply }) => {
        const result = await writeOne(principal, {
          op: 'create',
          ...base(principal, tenant, params.type, params.id),
          ...eventFields(body),
          payload: body.payload as JsonObject,
          ...concurrency(body),
        });
        markReplay(result, reply);
        return visibility.view(tenant, viewAfter(tenant, result, false));
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/aggregates/:type/:id/events',
      operationId: 'appendEvent',
      response: responses.EventRecord,
      errors: [409],
      summary: 'Append an event (creates the aggregate if missing)',
      action: 'aggregate.append',
      resource,
      status: 201,
      params: aggregateParams,
      body: schemas.applyBody,
      handler: async ({ params, body, principal, tenant, reply }) => {
        const result = await writeOne(principal, applyCommand(principal, tenant, { ...body, aggregate_type: params.type, aggregate_id: params.id }));
        markReplay(result, reply);
        return visibility.event(tenant, result.event);
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/events',
      operationId: 'appendEventByBody',
      response: responses.EventRecord,
      errors: [409],
      summary: 'Append an event, naming the aggregate in the body',
      action: 'aggregate.append',
      status: 201,
      body: schemas.eventBody,
      handler: async ({ body, principal, tenant, reply }) => {
        authorizeBodyResource(principal, body.aggregate_type, body.aggregate_id);
        const result = await writeOne(principal, applyCommand(principal, tenant, body));
        markReplay(result, reply);
        return visibility.event(tenant, result.event);
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/aggregates/:type/:id/patch',
      operationId: 'patchAggregate',
      response: responses.EventRecord,
      errors: [404, 409],
      summary: 'Apply an RFC 6902 patch to the state; the patch is stored as the event payload',
      action: 'aggregate.append',
      resource,
      status: 201,
      params: aggregateParams,
      body: schemas.patchBody,
      handler: async ({ params, body, principal, tenant, reply }) => {
        const { maskFailure } = patchReadGuard(principal, visibility.hiddenType(tenant, params.type), params.type, params.id, body.patch);
        visibility.assertPatchReadsVisible(tenant, params.type, body.patch);
        const hidden = visibility.patchTouchesHidden(tenant, params.type, body.patch);
        const result = await writeOne(principal, patchCommand(principal, tenant, { ...body, aggregate_type: params.type, aggregate_id: params.id })).catch((err: unknown) => {
          throw maskFailure ? maskedPatchFailure(err, NOT_READABLE) : visibility.maskPatchFailure(err, hidden);
        });
        markReplay(result, reply);
        return visibility.event(tenant, result.event);
      },
    }),
    ...(['archive', 'restore'] as const).map((op) =>
      defineRoute({
        method: 'POST',
        url: `/v1/aggregates/:type/:id/${op}`,
        operationId: `${op}Aggregate`,
        response: responses.AggregateReceipt,
        errors: [404, 409],
        summary: op === 'archive' ? 'Archive an aggregate (an event; further writes are refused)' : 'Restore an archived aggregate',
        action: 'aggregate.archive',
        resource,
        status: 200,
        params: aggregateParams,
        body: lifecycleBodySchema.optional().transform((b) => b ?? {}),
        handler: async ({ params, body, principal, tenant, reply }) => {
          const result = await writeOne(principal, {
            op,
            ...base(principal, tenant, params.type, params.id),
            ...(body.comment !== undefined ? { comment: body.comment } : {}),
            ...(body.note !== undefined ? { note: body.note } : {}),
            ...concurrency(body),
          });
          markReplay(result, reply);
          const view = visibility.view(tenant, viewAfter(tenant, result, op === 'archive'));
          return stateIfReadable(principal, visibility.hiddenType(tenant, params.type), view, params.type, params.id);
        },
      }),
    ),
    defineRoute({
      method: 'POST',
      url: '/v1/batch',
      operationId: 'appendBatch',
      response: responses.BatchResult,
      errors: [404, 409],
      summary: 'Append several events (apply bodies, or patch bodies with `patch`) atomically: all or nothing, across aggregates and shards',
      action: 'aggregate.append',
      status: 201,
      body: schemas.batchBody,
      bodyItems: 'events',
      handler: async ({ body, principal, tenant, reply }) => {
        const { commands, masked } = batchCommands(body.events, principal, tenant);
        const run = (items: typeof commands) => masked(writer.batch(items));
        const batch = () => run(commands);
        // A batch replayed whole (every item by its idempotency key) appends nothing: it costs no
        // write and says so, as a single write does.
        const wholeReplay = (results: WriteResult[]) => results.length > 0 && results.every((r) => r.replayed);
        const replayOnly = commands.every((c) => c.idempotency_key !== undefined) ? () => run(commands.map((c) => ({ ...c, replay_only: true }))) : undefined;
        const results = allowance ? await allowance.spend(principal, commands.length, batch, wholeReplay, replayOnly) : await batch();
        if (wholeReplay(results)) reply.header('idempotent-replayed', 'true');
        return { events: results.map((r) => visibility.event(tenant, r.event)) };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/batch/check',
      operationId: 'checkBatch',
      response: responses.BatchCheck,
      errors: [404, 409],
      summary: 'Check a batch as POST /v1/batch would (schemas, restrict mode, versions, patches, idempotency keys) without writing anything: 200 or the error the batch would get',
      action: 'aggregate.append',
      body: schemas.batchBody,
      bodyItems: 'events',
      handler: async ({ body, principal, tenant }) => {
        const { commands, masked } = batchCommands(body.events, principal, tenant);
        await masked(writer.checkBatch(commands));
        return { valid: true, events: commands.length };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/aggregates/:type/:id/snapshots',
      operationId: 'createSnapshot',
      response: responses.SnapshotReceipt,
      errors: [404],
      summary: 'Take a snapshot of the current state now',
      action: 'aggregate.append',
      resource,
      status: 201,
      params: aggregateParams,
      body: snapshotBodySchema.optional().transform((b) => b ?? {}),
      handler: async ({ params, body, principal, tenant }) => {
        const version = await writer.snapshot(tenant, params.type, params.id, body.comment);
        const snapshot = reader.snapshots(tenant, params.type, params.id, { after: version - 1, take: 1 }).find((s) => s.version === version);
        return snapshot && stateIfReadable(principal, visibility.hiddenType(tenant, params.type), visibility.snapshot(tenant, snapshot), params.type, params.id);
      },
    }),
  ];
}

/** Routes whose aggregate is named in the body check the resource here, per aggregate. */
function authorizeBodyResource(principal: Principal, type: string, id: string): void {
  authorize(principal, 'aggregate.append', { type, id });
}
