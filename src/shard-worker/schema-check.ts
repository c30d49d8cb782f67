/**
 * Schema enforcement on the shard worker (issue 9; reference §6.2–§6.3). The worker keeps one
 * compiled validator per (tenant, aggregate type), built when the worker starts and again on every
 * registry change (the coordinator calls `schemaChanged` on every worker before the PUT answers),
 * so a write costs one Map lookup when no schema exists and one compiled validation when one does.
 *
 * Decisions (documented in README "Schemas"):
 * - `off` skips validation even when a schema exists; the schema's snapshot_threshold still applies
 *   and no `schema_version` is recorded (nothing was checked).
 * - `strict` refuses every write (archive and restore included: they append events too) to a type
 *   without a schema: 400 validation_failed, one violation with rule `schema_required`.
 * - `locked` refuses every write, archive and restore included; `field_locks` refuse a payload that
 *   sets (or removes) one of those fields and a patch whose ops touch one: both 409 schema_locked,
 *   whose details list every violation. Any other violation: 400 validation_failed, details list
 *   every `{ field, rule, message }`.
 * - create/apply: the normalised payload replaces the payload before hashing, so what is stored is
 *   what was hashed, and is what gets merged into the state.
 * - patch: the event type must be declared; the state the patch produces is validated
 *   (`validateState`). Normalised values are appended to the stored patch as `replace` ops, so a
 *   replay of the stored events yields exactly the stored (normalised) state and verify stays valid.
 */
import { DbxError, type JsonObject, type JsonValue, type PatchOperation, type WriteLimits } from '../core/index.js';
import { compileSchema, schemaRequiredViolation, type CompiledSchema, type RestrictMode, type SchemaRecord, type Violation } from '../core/schema/index.js';
import type { WriteCommand } from './protocol.js';

/** The compiled schemas of one worker, by `${tenant}\0${aggregate}`. */
export class WorkerSchemas {
  private readonly compiled = new Map<string, CompiledSchema>();

  constructor(
    readonly restrict: RestrictMode,
    records: readonly SchemaRecord[] = [],
  ) {
    for (const record of records) this.set(record.tenant, record.schema.aggregate, record);
  }

  /** A registry change: the schema now in force (null once deleted). Compiles once per change. */
  set(tenant: string, aggregate: string, record: SchemaRecord | null): void {
    const key = `${tenant}\u0000${aggregate}`;
    if (record === null) this.compiled.delete(key);
    else this.compiled.set(key, compileSchema(record.schema, record.version));
  }

  get(tenant: string, aggregate: string): CompiledSchema | undefined {
    return this.compiled.size === 0 ? undefined : this.compiled.get(`${tenant}\u0000${aggregate}`);
  }

  get size(): number {
    return this.compiled.size;
  }
}

/** What `checkSchema` decided for one command; `version` is set only when the schema was checked. */
export interface SchemaGate {
  /** The command to compute the event from (its payload normalised for create/apply). */
  cmd: WriteCommand;
  compiled?: CompiledSchema;
  /** The registry version the write was validated against (recorded in the event's metadata). */
  version?: number;
  /** The schema's snapshot_threshold when it sets one (overrides the config default). */
  snapshotThreshold?: number;
}

/** The part of PrepareContext enforcement needs. */
export interface SchemaSource {
  restrict?: RestrictMode;
  schemaFor?(tenant: string, aggregate: string): CompiledSchema | undefined;
}

const NO_GATE = (cmd: WriteCommand): SchemaGate => ({ cmd });

/**
 * Before the event is computed: throws (409 schema_locked / 400 validation_failed) when the schema
 * in force refuses the command; otherwise returns the command to compute the event from.
 */
export function checkSchema(source: SchemaSource, cmd: WriteCommand): SchemaGate {
  const mode = source.restrict ?? 'off';
  const compiled = source.schemaFor?.(cmd.tenant, cmd.aggregate_type);
  if (compiled === undefined) {
    if (mode === 'strict') throw refusal([schemaRequiredViolation(cmd.aggregate_type)]);
    return NO_GATE(cmd);
  }
  const threshold = compiled.schema.snapshot_threshold;
  const gate: SchemaGate = { cmd, compiled, ...(threshold !== null && threshold !== undefined ? { snapshotThreshold: threshold } : {}) };
  if (mode === 'off') return gate;
  gate.version = compiled.version;
  const schema = compiled.schema;
  switch (cmd.op) {
    case 'create':
    case 'apply': {
      const outcome = compiled.validatePayload(cmd.event_type as string, (cmd.payload ?? {}) as Record<string, unknown>);
      if (!outcome.ok) throw refusal(outcome.violations);
      if (outcome.payload !== cmd.payload) gate.cmd = { ...cmd, payload: outcome.payload as JsonObject };
      return gate;
    }
    case 'patch': {
      if (schema.locked) throw refusal([lockedViolation(cmd.aggregate_type)]);
      const out: Violation[] = [];
      if (schema.field_locks.length > 0) {
        const touched = new Set<string>();
        for (const op of cmd.patch ?? []) {
          for (const pointer of op.op === 'move' ? [op.path, op.from] : [op.path]) {
            if (pointer === undefined) continue;
            const top = topSegment(pointer);
            if (top === undefined) for (const f of schema.field_locks) touched.add(f);
            else if (schema.field_locks.includes(top)) touched.add(top);
          }
        }
        for (const f of touched) out.push({ field: f, rule: 'field_lock', message: `field ${f} is locked for aggregate ${cmd.aggregate_type}` });
      }
      if (!Object.hasOwn(schema.events, cmd.event_type as string)) {
        out.push({ field: '', rule: 'event_undeclared', message: `event ${String(cmd.event_type)} is not defined for aggregate ${cmd.aggregate_type}` });
      }
      if (out.length > 0) throw refusal(out);
      return gate;
    }
    case 'archive':
    case 'restore':
      if (schema.locked) throw refusal([lockedViolation(cmd.aggregate_type)]);
      return gate;
  }
}

/**
 * After a patch: validates the state it produces. Returns the stored patch (the caller's ops plus
 * one `replace` per top-level field whose value normalised) and the normalised state.
 */
export function checkPatchedState(gate: SchemaGate, ops: PatchOperation[], state: JsonObject, limits: WriteLimits): { payload: JsonValue[]; state: JsonObject } {
  void limits; // normalised values are of the same size class; the event's bytes are checked after
  const compiled = gate.compiled as CompiledSchema;
  // The event's `fields` rule on the keys the patch touches (its payload, reference §14.2), then
  // the column types on the state it produces: one refusal lists both kinds.
  const eventType = gate.cmd.event_type as string;
  // Only an event with a `fields` list needs the touched keys (most patches: none).
  const listsFields = (compiled.schema.events[eventType]?.fields.length ?? 0) > 0;
  const violations = listsFields ? compiled.eventFieldViolations(eventType, touchedKeys(ops, state)) : [];
  const outcome = compiled.validateState(state);
  if (!outcome.ok) violations.push(...outcome.violations);
  if (violations.length > 0 || !outcome.ok) throw refusal(violations);
  const normalised = outcome.payload as JsonObject;
  if (normalised === state) return { payload: ops as unknown as JsonValue[], state };
  const extra: PatchOperation[] = [];
  for (const key of Object.keys(normalised)) {
    if (normalised[key] !== state[key]) extra.push({ op: 'replace', path: `/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`, value: normalised[key] as JsonValue });
  }
  return { payload: [...ops, ...extra] as unknown as JsonValue[], state: normalised };
}

/** The top-level keys a patch sets or removes (a whole-document op: every key of the result). */
function touchedKeys(ops: PatchOperation[], state: JsonObject): Set<string> {
  const touched = new Set<string>();
  for (const op of ops) {
    if (op.op === 'test') continue;
    for (const pointer of op.op === 'move' ? [op.path, op.from] : [op.path]) {
      if (pointer === undefined) continue;
      const top = topSegment(pointer);
      if (top === undefined) for (const key of Object.keys(state)) touched.add(key);
      else touched.add(top);
    }
  }
  return touched;
}

function lockedViolation(aggregate: string): Violation {
  return { field: '', rule: 'locked', message: `aggregate ${aggregate} is locked for updates` };
}

/** The top-level field a JSON pointer names; undefined for the whole document (""). */
function topSegment(pointer: string): string | undefined {
  if (pointer === '') return undefined;
  const end = pointer.indexOf('/', 1);
  return (end === -1 ? pointer.slice(1) : pointer.slice(1, end)).replace(/~1/g, '/').replace(/~0/g, '~');
}

/** One error for every violation: 409 schema_locked when a lock refused it, else 400 validation_failed. */
export function refusal(violations: Violation[]): DbxError {
  const first = violations[0] as Violation;
  const locked = violations.some((v) => v.rule === 'locked' || v.rule === 'field_lock');
  const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : '';
  return new DbxError(locked ? 'schema_locked' : 'validation_failed', `schema violation: ${first.message}${more}`, violations);
}
