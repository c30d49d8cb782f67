/**
 * Turns write commands into a write set, checking each against the aggregate heads (plus the
 * effect of earlier commands in the same group, kept in an overlay). `add` either succeeds and
 * records its whole effect or throws and records nothing, so one bad command in a group commit never
 * taints the others, and an atomic batch can be dropped as a whole.
 */
import { createHash } from 'node:crypto';
import {
  ARCHIVE_EVENT,
  DEFAULT_WRITE_LIMITS,
  DbxError,
  RESTORE_EVENT,
  isLifecycleEvent,
  appendLeaf,
  applyJsonPatch,
  assertFrontierIntact,
  canonicalize,
  frontierRoot,
  leafHash,
  mergePayload,
  snowflakeTime,
  type EventRecord,
  type JsonObject,
  type PatchOperation,
  type SnowflakeGenerator,
  type WriteLimits,
} from '../core/index.js';
import type { ImportRecord, WriteCommand, WriteResult } from './protocol.js';
import { importedBody, type ImportPrecomputed } from './import-record.js';
import { emptyWriteSet, headKeyString, type EventKey, type Head, type WriteSet } from './records.js';
import { storedEventText } from './sealing.js';
import { checkPatchedState, checkSchema, type SchemaSource } from './schema-check.js';

export interface LoadedAggregate {
  head: Head;
  state: JsonObject;
}

export interface PrepareContext extends SchemaSource {
  load(shard: number, tenant: string, type: string, id: string): LoadedAggregate | undefined;
  idempotencyEntry(shard: number, tenant: string, type: string, id: string, key: string): { version: number; fingerprint: string } | undefined;
  readEvent(shard: number, tenant: string, type: string, id: string, version: number): EventRecord | undefined;
  snowflake: SnowflakeGenerator;
  snapshotThreshold: number;
  /** `[limits]` from config (state and event bytes, state depth); the defaults when absent. */
  writeLimits?: WriteLimits;
  /** Whether an event id is already stored in this worker's environment (bulk import checks it). */
  eventIdExists?(eventId: string): boolean;
  /**
   * Encryption at rest: the stored text of an event (sealing.ts), made here from the record the
   * builder holds anyway, so the store need not parse the text again. Absent: stored as JSON.
   */
  sealEvent?(record: EventRecord): string;
}

export class BatchBuilder {
  /** Heads as they stand after the commands added so far (keyed by shard + head key). */
  readonly overlay = new Map<string, LoadedAggregate & { shard: number; tenant: string; type: string; id: string }>();
  readonly writeSets = new Map<number, WriteSet>();
  protected readonly pendingEvents = new Map<string, EventRecord>();
  protected readonly pendingIdempotency = new Map<string, { version: number; fingerprint: string }>();
  /** Event ids that imports in this builder will write (ids are given, so they must be checked). */
  protected readonly pendingEventIds = new Set<string>();

  constructor(
    private readonly ctx: PrepareContext,
    /**
     * Lookups fall through to the parent: a fork's parent is its group, and a group's parent is
     * the previous group while that one's commit is still in flight (its effects are not on disk
     * yet, and the heads cache may have evicted them).
     */
    private parent?: BatchBuilder,
  ) {}

  /** Once this builder's commit is durable its parent's data is on disk: stop looking there. */
  detach(): void {
    this.parent = undefined;
  }

  /** A builder that sees this one's pending effects but writes only its own (atomic batches). */
  fork(): BatchBuilder {
    return new BatchBuilder(this.ctx, this);
  }

  /** Takes over a fork's effects once all of its commands succeeded. */
  absorb(child: BatchBuilder): void {
    for (const [key, value] of child.overlay) this.overlay.set(key, value);
    for (const [key, value] of child.pendingEvents) this.pendingEvents.set(key, value);
    for (const [key, value] of child.pendingIdempotency) this.pendingIdempotency.set(key, value);
    for (const [shard, ws] of child.writeSets) {
      const mine = this.writeSetFor(shard);
      mine.events.push(...ws.events);
      mine.heads.push(...ws.heads);
      mine.index.push(...ws.index);
      mine.idempotency.push(...ws.idempotency);
      mine.snapshots.push(...ws.snapshots);
    }
  }

  private current(shard: number, tenant: string, type: string, id: string): LoadedAggregate | undefined {
    return this.currentAt(`${shard}\u0000${headKeyString(tenant, type, id)}`, shard, tenant, type, id);
  }

  /** `current` for a caller that has built the overlay key already. */
  private currentAt(overlayKey: string, shard: number, tenant: string, type: string, id: string): LoadedAggregate | undefined {
    for (let b: BatchBuilder | undefined = this; b; b = b.parent) {
      const hit = b.overlay.get(overlayKey);
      if (hit) return hit;
    }
    // Never extend a forged frontier (every later root would be wrong); ≤ 63 hashes, once per group.
    const loaded = this.ctx.load(shard, tenant, type, id);
    if (loaded) assertFrontierIntact(loaded.head, type, id, 'write');
    return loaded;
  }

  private pendingEvent(key: string): EventRecord | undefined {
    for (let b: BatchBuilder | undefined = this; b; b = b.parent) {
      const hit = b.pendingEvents.get(key);
      if (hit) return hit;
    }
    return undefined;
  }

  private pendingIdempotencyEntry(key: string): { version: number; fingerprint: string } | undefined {
    for (let b: BatchBuilder | undefined = this; b; b = b.parent) {
      const hit = b.pendingIdempotency.get(key);
      if (hit) return hit;
    }
    return undefined;
  }

  /** Records a snapshot of the current state (on demand); returns its version. */
  snapshot(shard: number, tenant: string, type: string, id: string, comment: string | null): number {
    const current = this.current(shard, tenant, type, id);
    if (!current) throw new DbxError('not_found', `aggregate ${type}/${id} not found`);
    const { head, state } = current;
    const headKey: [string, string, string] = [tenant, type, id];
    const newHead: Head = { ...head, snapshot_version: head.version };
    const ws = this.writeSetFor(shard);
    ws.snapshots.push({
      key: [...headKey, head.version],
      snapshot: { state, merkle_root: head.merkle_root, created_at: new Date().toISOString(), comment, archived: head.archived },
    });
    ws.heads.push({ key: headKey, head: newHead, state });
    this.overlay.set(`${shard}\u0000${headKeyString(tenant, type, id)}`, { head: newHead, state, shard, tenant, type, id });
    return head.version;
  }

  add(cmd: WriteCommand): WriteResult {
    const key = headKeyString(cmd.tenant, cmd.aggregate_type, cmd.aggregate_id);
    const overlayKey = `${cmd.shard}\u0000${key}`;
    const current = this.current(cmd.shard, cmd.tenant, cmd.aggregate_type, cmd.aggregate_id);

    const fingerprint = cmd.idempotency_key !== undefined ? fingerprintOf(cmd) : undefined;
    if (cmd.idempotency_key !== undefined && fingerprint !== undefined) {
      const replay = this.replayIdempotent(cmd, overlayKey, fingerprint);
      if (replay) return replay;
    }
    if (cmd.replay_only) throw new DbxError('write_limit_exhausted', 'the token has no writes left and this is not a retry of a stored write');

    const head = current?.head;
    checkPreconditions(cmd, head);
    const version = (head?.version ?? 0) + 1;
    const limits = this.ctx.writeLimits ?? DEFAULT_WRITE_LIMITS;
    // Schema enforcement (schema-check.ts): refuses before anything is recorded; normalises first.
    const gate = checkSchema(this.ctx, cmd);
    const next = nextStateFor(gate.cmd, current?.state ?? {}, limits);
    const { eventType, payload, state } =
      gate.version !== undefined && cmd.op === 'patch' ? { eventType: next.eventType, ...checkPatchedState(gate, cmd.patch ?? [], next.state, limits) } : next;
    // One clock read: created_at is the time inside the event id, so the two always agree.
    const eventId = this.ctx.snowflake.nextId();
    const now = new Date(snowflakeTime(eventId)).toISOString();
    const body = {
      aggregate_type: cmd.aggregate_type,
      aggregate_id: cmd.aggregate_id,
      event_type: eventType,
      version,
      payload,
      extensions: cmd.extensions ?? {},
      metadata: {
        event_id: eventId,
        created_at: now,
        issued_by: cmd.issued_by,
        ...(cmd.note !== undefined ? { note: cmd.note } : {}),
        ...(gate.version !== undefined ? { schema_version: gate.version } : {}),
      },
    };
    const hash = leafHash(canonicalize(body));
    const frontier = appendLeaf(head?.frontier ?? [], version - 1, hash);
    const merkleRoot = frontierRoot(frontier);
    const record = { ...body, hash, merkle_root: merkleRoot } as EventRecord;
    const archived = cmd.op === 'archive' ? true : cmd.op === 'restore' ? false : (head?.archived ?? false);
    const threshold = gate.snapshotThreshold ?? this.ctx.snapshotThreshold;
    const takesSnapshot = threshold > 0 && version % threshold === 0;
    const newHead = nextHead(head, { version, frontier, merkleRoot, archived, at: now, takesSnapshot });

    // The worker stores this text anyway, so measuring it costs one byte count.
    const json = JSON.stringify(record);
    checkEventBytes(json, limits);

    // Everything is computed: from here on nothing throws, so the group stays consistent.
    const ws = this.writeSetFor(cmd.shard);
    const headKey: [string, string, string] = [cmd.tenant, cmd.aggregate_type, cmd.aggregate_id];
    const eventKey: [string, string, string, number] = [...headKey, version];
    ws.events.push(this.storedEvent(eventKey, record, json, body.metadata.event_id));
    ws.heads.push({ key: headKey, head: newHead, state });
    if (!head) ws.index.push(['put', [cmd.tenant, 'a', cmd.aggregate_type, cmd.aggregate_id]]);
    if (cmd.op === 'archive') {
      ws.index.push(['del', [cmd.tenant, 'a', cmd.aggregate_type, cmd.aggregate_id]], ['put', [cmd.tenant, 'r', cmd.aggregate_type, cmd.aggregate_id]]);
    } else if (cmd.op === 'restore') {
      ws.index.push(['del', [cmd.tenant, 'r', cmd.aggregate_type, cmd.aggregate_id]], ['put', [cmd.tenant, 'a', cmd.aggregate_type, cmd.aggregate_id]]);
    }
    if (cmd.idempotency_key !== undefined && fingerprint !== undefined) {
      const entry = { version, fingerprint };
      ws.idempotency.push({ key: [...headKey, cmd.idempotency_key], entry });
      this.pendingIdempotency.set(`${overlayKey}\u0000${cmd.idempotency_key}`, entry);
    }
    if (takesSnapshot) {
      ws.snapshots.push({ key: eventKey, snapshot: { state, merkle_root: merkleRoot, created_at: now, comment: `auto snapshot v${version}`, archived } });
    }
    this.overlay.set(overlayKey, { head: newHead, state, shard: cmd.shard, tenant: cmd.tenant, type: cmd.aggregate_type, id: cmd.aggregate_id });
    this.pendingEvents.set(`${overlayKey}\u0000${version}`, record);
    return { event: record, replayed: false };
  }

  /** `absorb` plus the event ids an import fork reserved. */
  absorbImport(child: BatchBuilder): void {
    this.absorb(child);
    for (const id of child.pendingEventIds) this.pendingEventIds.add(id);
  }

  private pendingEventId(eventId: string): boolean {
    for (let b: BatchBuilder | undefined = this; b; b = b.parent) if (b.pendingEventIds.has(eventId)) return true;
    return false;
  }

  /**
   * Bulk import of one event record given whole (its event_id, created_at and issued_by are kept).
   * It must continue its aggregate (version = head + 1); a version already stored with the same
   * hash is `skipped` (re-running an import resumes it), with another hash refused. The hash is
   * recomputed from the record; with `verify`, a given `hash` or `merkle_root` that differs from
   * the recomputed one is refused. Like `add`, it records its whole effect or throws and records
   * nothing. Costs one canonical JSON + SHA-256 and O(log n) frontier hashes, as an append.
   */
  addImported(shard: number, tenant: string, record: ImportRecord, verify: boolean, pre?: ImportPrecomputed): 'created' | 'appended' | 'skipped' {
    const { aggregate_type: type, aggregate_id: id, version } = record;
    const what = `aggregate ${type}/${id}`;
    const overlayKey = `${shard}\u0000${headKeyString(tenant, type, id)}`;
    const current = this.currentAt(overlayKey, shard, tenant, type, id);
    const head = current?.head;
    const { event_id: eventId, created_at: createdAt } = record.metadata;
    const body = importedBody(record);
    // Computed at the edge when given (import-record.ts): the same function of the same body.
    const hash = pre?.hash ?? leafHash(canonicalize(body));
    if (verify && record.hash !== undefined && record.hash !== hash) {
      throw new DbxError('invalid_input', `the hash of ${what} version ${version} does not match its content`, { given: record.hash, computed: hash });
    }
    const at = head?.version ?? 0;
    if (version <= at) {
      const stored = this.pendingEvent(`${overlayKey}\u0000${version}`) ?? this.ctx.readEvent(shard, tenant, type, id, version);
      if (stored?.hash === hash) {
        // Stored already: a given root must still be the stored one (a line is never accepted unchecked).
        if (verify && record.merkle_root !== undefined && record.merkle_root !== stored.merkle_root) {
          throw new DbxError('invalid_input', `the merkle_root of ${what} version ${version} does not match the history before it`, {
            given: record.merkle_root,
            computed: stored.merkle_root,
          });
        }
        return 'skipped';
      }
      throw new DbxError('already_exists', `${what} version ${version} is already stored with a different hash`, { version, current_version: at });
    }
    if (version !== at + 1) {
      throw new DbxError('version_conflict', `${what} is at version ${at}: an import must continue with version ${at + 1}, not ${version}`, {
        current_version: at,
        version,
      });
    }
    const lifecycle = isLifecycleEvent(record.event_type);
    if (lifecycle && (!head || Array.isArray(record.payload))) {
      throw new DbxError('invalid_input', `${record.event_type} needs an existing aggregate and an object payload (${what} version ${version})`);
    }
    if (record.event_type === RESTORE_EVENT ? !head?.archived : head?.archived) {
      throw head?.archived
        ? new DbxError('aggregate_archived', `${what} is archived and cannot accept version ${version} (${record.event_type})`)
        : new DbxError('invalid_input', `${what} is not archived, so version ${version} cannot restore it`);
    }
    if (this.pendingEventId(eventId) || this.ctx.eventIdExists?.(eventId)) {
      // Not the holder's name: it may be another tenant's event (ids are unique on the node).
      throw new DbxError('already_exists', `event_id ${eventId} is already stored, by another event (this line: ${what} version ${version}; event ids are unique on the node)`, { event_id: eventId });
    }
    // Ids are unique on the node: a later write must not be given this one (snowflake.ts).
    if (!this.ctx.snowflake.observe(BigInt(eventId))) {
      throw new DbxError(
        'invalid_input',
        `event_id ${eventId} carries this node's snowflake worker id and a time ahead of its clock, so a later write here could be given the same id (${what} version ${version}): import it once the clock has passed ${new Date(snowflakeTime(eventId)).toISOString()}, or give the nodes distinct snowflake_worker_id`,
        { event_id: eventId, id_time: new Date(snowflakeTime(eventId)).toISOString() },
      );
    }
    const limits = this.ctx.writeLimits ?? DEFAULT_WRITE_LIMITS;
    const before = current?.state ?? {};
    const state = lifecycle
      ? before
      : Array.isArray(record.payload)
        ? applyJsonPatch(before, record.payload as unknown as PatchOperation[], limits)
        : mergePayload(before, record.payload, limits);
    const frontier = appendLeaf(head?.frontier ?? [], version - 1, hash);
    const merkleRoot = frontierRoot(frontier);
    if (verify && record.merkle_root !== undefined && record.merkle_root !== merkleRoot) {
      throw new DbxError('invalid_input', `the merkle_root of ${what} version ${version} does not match the history before it`, {
        given: record.merkle_root,
        computed: merkleRoot,
      });
    }
    // The body becomes the stored record in place: no copy per event (this path is allocation-bound).
    const stored = Object.assign(body, { hash, merkle_root: merkleRoot }) as EventRecord;
    // The plaintext text is needed only to store it unsealed, or to measure it when the edge did not.
    const json = pre && this.ctx.sealEvent ? undefined : JSON.stringify(stored);
    checkEventSize(json === undefined ? (pre as ImportPrecomputed).bytes : Buffer.byteLength(json, 'utf8'), limits);
    const archived = record.event_type === ARCHIVE_EVENT ? true : record.event_type === RESTORE_EVENT ? false : (head?.archived ?? false);
    const takesSnapshot = this.ctx.snapshotThreshold > 0 && version % this.ctx.snapshotThreshold === 0;
    const newHead = nextHead(head, { version, frontier, merkleRoot, archived, at: createdAt, takesSnapshot });

    // Everything is computed: from here on nothing throws (the same entries as `add`).
    const ws = this.writeSetFor(shard);
    const headKey: [string, string, string] = [tenant, type, id];
    const eventKey: [string, string, string, number] = [...headKey, version];
    ws.events.push(this.storedEvent(eventKey, stored, json ?? '', eventId, pre?.sealed));
    ws.heads.push({ key: headKey, head: newHead, state });
    if (!head) ws.index.push(['put', [tenant, 'a', type, id]]);
    if (record.event_type === ARCHIVE_EVENT) ws.index.push(['del', [tenant, 'a', type, id]], ['put', [tenant, 'r', type, id]]);
    else if (record.event_type === RESTORE_EVENT) ws.index.push(['del', [tenant, 'r', type, id]], ['put', [tenant, 'a', type, id]]);
    if (takesSnapshot) {
      ws.snapshots.push({ key: eventKey, snapshot: { state, merkle_root: merkleRoot, created_at: createdAt, comment: `auto snapshot v${version}`, archived } });
    }
    this.overlay.set(overlayKey, { head: newHead, state, shard, tenant, type, id });
    this.pendingEvents.set(`${overlayKey}\u0000${version}`, stored);
    this.pendingEventIds.add(eventId);
    return head ? 'appended' : 'created';
  }

  private replayIdempotent(cmd: WriteCommand, overlayKey: string, fingerprint: string): WriteResult | undefined {
    const key = cmd.idempotency_key as string;
    const entry =
      this.pendingIdempotencyEntry(`${overlayKey}\u0000${key}`) ??
      this.ctx.idempotencyEntry(cmd.shard, cmd.tenant, cmd.aggregate_type, cmd.aggregate_id, key);
    if (!entry) return undefined;
    if (entry.fingerprint !== fingerprint) {
      throw new DbxError('already_exists', `idempotency key '${key}' was already used with different content`, { idempotency_key: key, version: entry.version });
    }
    const original =
      this.pendingEvent(`${overlayKey}\u0000${entry.version}`) ??
      this.ctx.readEvent(cmd.shard, cmd.tenant, cmd.aggregate_type, cmd.aggregate_id, entry.version);
    if (!original) throw new DbxError('internal', 'idempotency entry points at a missing event');
    return { event: original, replayed: true };
  }

  /** A write-set entry in stored form: sealed when the context seals (see PrepareContext.sealEvent). */
  /** `sealed`: the record's sealed part made at the edge (import-record.ts), used when this context seals. */
  private storedEvent(key: EventKey, record: EventRecord, json: string, eventId: string, sealed?: string): WriteSet['events'][number] {
    // The event_index entry's key fields, from the record in hand (the stored text may be sealed).
    const eventType = record.event_type;
    const createdMs = Date.parse(record.metadata.created_at);
    if (!this.ctx.sealEvent) return { key, json, event_id: eventId, event_type: eventType, created_ms: createdMs };
    const text = sealed !== undefined ? storedEventText(record, sealed) : this.ctx.sealEvent(record);
    return { key, json: text, event_id: eventId, sealed: true, event_type: eventType, created_ms: createdMs };
  }

  private writeSetFor(shard: number): WriteSet {
    let ws = this.writeSets.get(shard);
    if (!ws) {
      ws = emptyWriteSet();
      this.writeSets.set(shard, ws);
    }
    return ws;
  }
}

/** The head after one appended event (a new aggregate's head starts at `at`). */
function nextHead(
  head: Head | undefined,
  e: { version: number; frontier: string[]; merkleRoot: string; archived: boolean; at: string; takesSnapshot: boolean },
): Head {
  const snapshotVersion = e.takesSnapshot ? e.version : head?.snapshot_version;
  return {
    version: e.version,
    frontier: e.frontier,
    merkle_root: e.merkleRoot,
    archived: e.archived,
    created_at: head?.created_at ?? e.at,
    updated_at: e.at,
    ...(snapshotVersion !== undefined ? { snapshot_version: snapshotVersion } : {}),
  };
}

function describe(cmd: WriteCommand): string {
  return `aggregate ${cmd.aggregate_type}/${cmd.aggregate_id}`;
}

function checkPreconditions(cmd: WriteCommand, head: Head | undefined): void {
  if (!head && cmd.no_create) throw new DbxError('quota_exceeded', `${describe(cmd)} no longer exists and its tenant's quota has no room reserved for creating it; retry`);
  if (cmd.op === 'create' && head) throw new DbxError('already_exists', `${describe(cmd)} already exists`);
  if ((cmd.op === 'patch' || cmd.op === 'archive' || cmd.op === 'restore') && !head) {
    throw new DbxError('not_found', `${describe(cmd)} not found`);
  }
  const current = head?.version ?? 0;
  if (cmd.expected_version !== undefined && cmd.expected_version !== current) {
    throw new DbxError('version_conflict', `${describe(cmd)} is at version ${current}, expected ${cmd.expected_version}`, {
      current_version: current,
      expected_version: cmd.expected_version,
    });
  }
  if (cmd.op === 'restore') {
    if (!head?.archived) throw new DbxError('invalid_input', `${describe(cmd)} is not archived`);
    return;
  }
  if (head?.archived) throw new DbxError('aggregate_archived', `${describe(cmd)} is archived and cannot accept new events`);
}

function checkEventBytes(json: string, limits: WriteLimits): void {
  checkEventSize(Buffer.byteLength(json, 'utf8'), limits);
}

function checkEventSize(bytes: number, limits: WriteLimits): void {
  if (bytes > limits.eventBytesMax) {
    throw new DbxError('payload_too_large', `the event would be ${bytes} bytes, over event_bytes_max (${limits.eventBytesMax})`, {
      event_bytes: bytes,
      event_bytes_max: limits.eventBytesMax,
    });
  }
}

/** The new state; throws (413 / 400) before anything is recorded when it would break `limits`. */
function nextStateFor(cmd: WriteCommand, state: JsonObject, limits: WriteLimits): { eventType: string; payload: EventRecord['payload']; state: JsonObject } {
  switch (cmd.op) {
    case 'create':
    case 'apply': {
      const payload = cmd.payload ?? {};
      return { eventType: cmd.event_type as string, payload, state: mergePayload(state, payload, limits) };
    }
    case 'patch': {
      const ops = cmd.patch ?? [];
      return { eventType: cmd.event_type as string, payload: ops as unknown as EventRecord['payload'], state: applyJsonPatch(state, ops, limits) };
    }
    case 'archive':
    case 'restore': {
      const payload: JsonObject = cmd.comment !== undefined ? { comment: cmd.comment } : {};
      return { eventType: cmd.op === 'archive' ? ARCHIVE_EVENT : RESTORE_EVENT, payload, state };
    }
  }
}

/** What makes two writes "the same content" for idempotency: everything the caller chose. */
function fingerprintOf(cmd: WriteCommand): string {
  const content = {
    op: cmd.op,
    event_type: cmd.event_type ?? null,
    payload: cmd.payload ?? null,
    patch: cmd.patch ?? null,
    extensions: cmd.extensions ?? null,
    note: cmd.note ?? null,
    comment: cmd.comment ?? null,
  };
  // node:crypto on the hot path: ~10× cheaper than @noble/hashes here.
  return createHash('sha256').update(canonicalize(content), 'utf8').digest('hex').slice(0, 32);
}
