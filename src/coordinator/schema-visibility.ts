/**
 * Hiding (issue 9 item 7; reference §6.4), applied by the coordinator to every server answer, for
 * every token (`*` included):
 * - `hidden_fields` are left out of `state` wherever an answer carries one (get, get ?version=N,
 *   select, lists, snapshots, create/archive/restore answers) and out of event payloads (event
 *   reads, apply/patch/batch answers): a hidden field that came back in its event would not be
 *   hidden. Patch payloads lose the ops that touch a hidden field. The cost: a client can no longer
 *   recompute such an event's hash from the answer; `GET …/verify` still checks the stored events.
 *   A dotted entry (`address.zip`) hides that nested field.
 * - `hidden: true` makes the type answer 404 on reads (get, select, events, verify, proof,
 *   snapshots, GET /v1/events/{id}) and disappear from lists. Writes are still accepted (hiding is
 *   about reads); their answers follow the hidden_fields rule.
 * - A `?filter=` that reads a hidden field (or a field under one) is refused with 400: matching on
 *   it would reveal its value one query at a time. `?sort=` takes only built-in fields, so it cannot.
 *
 * Kept per registry change (`onChange`), so the read path costs one Map-size test when no schema
 * hides anything and one Map lookup per type otherwise.
 */
import { dataPathOf, fieldsOf, parseFilter, type FilterLimits } from '../core/filter.js';
import { DbxError, invalidInput, notFound, type AggregateView, type EventRecord, type JsonObject, type JsonValue, type Page, type SnapshotRecord } from '../core/index.js';
import type { SchemaRecord } from '../core/schema/api.js';
import type { SchemaChange } from './schema-registry.js';

interface Rule {
  hidden: boolean;
  /** Each hidden field as its path segments. */
  fields: string[][];
}

export interface VisibilitySource {
  all(): Iterable<SchemaRecord>;
  onChange(listener: (change: SchemaChange) => void): () => void;
}

export class SchemaVisibility {
  /** Only schemas that hide something are kept: the common case is an empty map. */
  private readonly rules = new Map<string, Rule>();
  /** Per tenant, the hidden fields of all its types: what a list across types is checked against. */
  private readonly tenantFields = new Map<string, string[][]>();

  constructor(source?: VisibilitySource) {
    if (!source) return;
    for (const record of source.all()) this.set(record.tenant, record.schema.aggregate, record);
    source.onChange((change) => this.set(change.tenant, change.aggregate, change.record));
  }

  set(tenant: string, aggregate: string, record: SchemaRecord | null): void {
    const key = `${tenant}\u0000${aggregate}`;
    const schema = record?.schema;
    if (!schema || (!schema.hidden && schema.hidden_fields.length === 0)) this.rules.delete(key);
    // `a.b` is the path a → b, and also the top-level key `a.b` (a column may be named so): both
    // are hidden, or a declared `card.pin` column would show whatever hidden_fields said.
    else this.rules.set(key, { hidden: schema.hidden, fields: schema.hidden_fields.flatMap((f) => (f.includes('.') ? [f.split('.'), [f]] : [[f]])) });
    // Rebuilt on a schema change (rare), so a list across types reads one Map entry.
    const fields: string[][] = [];
    for (const [k, rule] of this.rules) if (k.startsWith(`${tenant}\u0000`)) fields.push(...rule.fields);
    if (fields.length > 0) this.tenantFields.set(tenant, fields);
    else this.tenantFields.delete(tenant);
  }

  private rule(tenant: string, type: string): Rule | undefined {
    return this.rules.size === 0 ? undefined : this.rules.get(`${tenant}\u0000${type}`);
  }

  /** Whether any of the tenant's types is hidden (`hidden: true`). */
  hidesTypes(tenant: string): boolean {
    if (this.rules.size === 0) return false;
    for (const [key, rule] of this.rules) if (rule.hidden && key.startsWith(`${tenant}\u0000`)) return true;
    return false;
  }

  /**
   * 403 for `explain=true` on a list across the tenant's types when one of them is hidden: its
   * counters (index entries read, rows scanned) count the hidden type's rows too.
   */
  assertExplainVisible(tenant: string, explain: boolean | undefined): void {
    if (explain === true && this.hidesTypes(tenant)) {
      throw new DbxError('forbidden', 'explain=true would count rows of a hidden aggregate type; list one visible type (GET /v1/aggregates/{type}) to explain it');
    }
  }

  /** Whether the type is hidden (`hidden: true`) for the tenant. */
  hiddenType(tenant: string, type: string): boolean {
    return this.rule(tenant, type)?.hidden ?? false;
  }

  /** 404 for a hidden type, with the message of an absent aggregate. */
  assertVisible(tenant: string, type: string, id: string): void {
    if (this.hiddenType(tenant, type)) throw notFound(`aggregate ${type}/${id}`);
  }

  /**
   * 400 when `filter` reads a hidden field of `type`, or of any of the tenant's types when the list
   * spans types (`type` undefined). The filter is parsed a second time (the reader parses it again):
   * O(its length), and only when the tenant hides a field. The message names the field as written,
   * which the caller already knows, and nothing else.
   */
  assertFilterVisible(tenant: string, type: string | undefined, kind: 'aggregate' | 'event', filter: string | undefined, limits: FilterLimits): void {
    if (filter === undefined || this.rules.size === 0) return;
    const hidden = type === undefined ? (this.tenantFields.get(tenant) ?? []) : (this.rule(tenant, type)?.fields ?? []);
    if (hidden.length === 0) return;
    for (const field of fieldsOf(parseFilter(filter, limits))) {
      const path = dataPathOf(kind, field);
      // On or under a hidden field; above one (`address` for `address.zip`) is allowed: an object
      // equals no literal and never matches LIKE, so only its presence shows, which answers show too.
      if (path !== undefined && covered(path.split('.'), hidden)) throw invalidInput(`filter field '${field}' is hidden by the schema`);
    }
  }

  /**
   * 400 when a patch op reads a hidden field: `copy`/`move` from it (or from a parent holding it)
   * would put its value where answers show it, and `test` on it would confirm a guess by 201/400.
   * Checked before the write, so the refusal does not depend on the stored value. Writing a hidden
   * field (add, replace, remove) stays allowed: hiding is about reads.
   */
  assertPatchReadsVisible(tenant: string, type: string, ops: readonly { op: string; path: string; from?: string }[]): void {
    const rule = this.rule(tenant, type);
    if (!rule || rule.fields.length === 0) return;
    ops.forEach((op, i) => {
      const read = op.op === 'copy' || op.op === 'move' ? op.from : op.op === 'test' ? op.path : undefined;
      if (typeof read === 'string' && touches(read === '' ? [] : pointerSegments(read), rule.fields)) {
        throw invalidInput(`patch op ${i} (${op.op}) reads '${read}', which holds a field hidden by the schema`);
      }
    });
  }

  /** Whether some op of the patch reads or writes on, under or above a hidden field. */
  patchTouchesHidden(tenant: string, type: string, ops: readonly { path: string; from?: string }[]): boolean {
    const rule = this.rule(tenant, type);
    if (!rule || rule.fields.length === 0) return false;
    return ops.some((op) => [op.path, op.from].some((p) => typeof p === 'string' && touches(p === '' ? [] : pointerSegments(p), rule.fields)));
  }

  /**
   * A patch that touches a hidden field and failed to apply is answered without saying why: an
   * add, remove or replace under a hidden field fails or not by what is stored there (a missing
   * key, an array's length), and which op failed would tell that.
   */
  maskPatchFailure(err: unknown, touchesHidden: boolean): unknown {
    return touchesHidden ? maskedPatchFailure(err, 'it touches a field hidden by the schema') : err;
  }

  /** A list's row filter that also drops hidden types (composed with the token's own filter). */
  allow(tenant: string, allow?: (type: string, id: string) => boolean): { allow?: (type: string, id: string) => boolean } {
    if (this.rules.size === 0) return allow ? { allow } : {};
    return { allow: (type, id) => !this.hiddenType(tenant, type) && (allow ? allow(type, id) : true) };
  }

  state(tenant: string, type: string, state: JsonObject): JsonObject {
    const rule = this.rule(tenant, type);
    return rule && rule.fields.length > 0 ? stripPaths(state, rule.fields) : state;
  }

  view<T extends AggregateView>(tenant: string, view: T): T {
    const rule = this.rule(tenant, view.aggregate_type);
    if (!rule || rule.fields.length === 0) return view;
    const out = { ...view, state: stripPaths(view.state, rule.fields) };
    if (view.events) out.events = view.events.map((e) => this.event(tenant, e));
    return out;
  }

  event(tenant: string, event: EventRecord): EventRecord {
    const rule = this.rule(tenant, event.aggregate_type);
    if (!rule || rule.fields.length === 0) return event;
    const payload = Array.isArray(event.payload) ? stripPatch(event.payload, rule.fields) : stripPaths(event.payload, rule.fields);
    return payload === event.payload ? event : { ...event, payload };
  }

  snapshot(tenant: string, snapshot: SnapshotRecord): SnapshotRecord {
    const state = this.state(tenant, snapshot.aggregate_type, snapshot.state);
    return state === snapshot.state ? snapshot : { ...snapshot, state };
  }

  /** `select` answers: a hidden path reads as missing (null), like any absent field. */
  select(tenant: string, type: string, selected: Record<string, unknown>): Record<string, unknown> {
    const rule = this.rule(tenant, type);
    if (!rule || rule.fields.length === 0) return selected;
    const out: Record<string, unknown> = {};
    for (const [path, value] of Object.entries(selected)) {
      const segments = path.split('.');
      out[path] = covered(segments, rule.fields) ? null : rule.fields.some((hidden) => isPrefix(segments, hidden)) ? stripUnder(value, segments.length, rule.fields, segments) : value;
    }
    return out;
  }

  views<T extends AggregateView>(tenant: string, page: Page<T>): Page<T> {
    return this.rules.size === 0 ? page : { ...page, items: page.items.map((v) => this.view(tenant, v)) };
  }

  events(tenant: string, page: Page<EventRecord>): Page<EventRecord> {
    return this.rules.size === 0 ? page : { ...page, items: page.items.map((e) => this.event(tenant, e)) };
  }
}

function covered(segments: string[], fields: string[][]): boolean {
  return fields.some((hidden) => hidden.length <= segments.length && hidden.every((s, i) => segments[i] === s));
}

function isPrefix(prefix: string[], of: string[]): boolean {
  return prefix.length < of.length && prefix.every((s, i) => of[i] === s);
}

/** A selected object value that contains hidden fields below it (select `address` hides `address.zip`). */
function stripUnder(value: unknown, depth: number, fields: string[][], at: string[]): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const below = fields.filter((f) => isPrefix(at, f)).map((f) => f.slice(depth));
  return stripPaths(value as JsonObject, below);
}

/** A copy of `object` without the given paths; the object itself when none is present. */
function stripPaths(object: JsonObject, paths: string[][]): JsonObject {
  let out: JsonObject | undefined;
  for (const path of paths) {
    const [head, ...rest] = path as [string, ...string[]];
    if (!Object.hasOwn(out ?? object, head)) continue;
    out ??= { ...object };
    if (rest.length === 0) {
      delete out[head];
      continue;
    }
    const child = out[head];
    if (typeof child === 'object' && child !== null && !Array.isArray(child)) out[head] = stripPaths(child, [rest]);
  }
  return out ?? object;
}

/** Patch ops without those that touch a hidden field; a whole-document value is stripped. */
function stripPatch(ops: JsonValue[], paths: string[][]): JsonValue[] {
  let changed = false;
  const out: JsonValue[] = [];
  for (const raw of ops) {
    const op = raw as { path?: string; from?: string; value?: JsonValue };
    if ([op.path, op.from].some((p) => typeof p === 'string' && p !== '' && touches(pointerSegments(p), paths))) {
      changed = true;
      continue;
    }
    if (op.path === '' && typeof op.value === 'object' && op.value !== null && !Array.isArray(op.value)) {
      const value = stripPaths(op.value, paths);
      if (value !== op.value) {
        changed = true;
        out.push({ ...(raw as JsonObject), value });
        continue;
      }
    }
    out.push(raw);
  }
  return changed ? out : ops;
}

/** Whether a pointer lies on or under a hidden path, or above one (setting a parent sets it). */
function touches(segments: string[], paths: string[][]): boolean {
  return paths.some((hidden) => {
    const n = Math.min(hidden.length, segments.length);
    for (let i = 0; i < n; i++) if (hidden[i] !== segments[i]) return false;
    return true;
  });
}

function pointerSegments(pointer: string): string[] {
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** A patch failure that names no op or path (`why`: what the caller may not read). */
export function maskedPatchFailure(err: unknown, why: string): unknown {
  if (!(err instanceof DbxError) || err.code !== 'validation_failed' || !err.message.includes('failed to apply patch')) return err;
  const message = `the patch could not be applied; ${why}, so which operation failed is not told`;
  return new DbxError('validation_failed', `failed to apply patch: ${message}`, [{ path: 'body.patch', message }]);
}
