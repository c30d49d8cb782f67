/**
 * How events fold into aggregate state (DESIGN §3): an object payload is a top-level merge (a key set
 * to null is removed); a patch event carries its RFC 6902 operations as the payload (an array) and is
 * applied to the state; archive/restore events record a comment and leave the state alone.
 */
import fastJsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { DbxError } from './errors.js';
import { jsonBytes, jsonDepth, type WriteLimits } from './limits.js';
import type { JsonObject, JsonValue } from './types.js';

const { applyOperation, getValueByPointer, unescapePathComponent } = fastJsonPatch;

export const ARCHIVE_EVENT = 'aggregate_archived';
export const RESTORE_EVENT = 'aggregate_restored';
export const RESERVED_EVENT_TYPES: ReadonlySet<string> = new Set([ARCHIVE_EVENT, RESTORE_EVENT]);

export function isLifecycleEvent(eventType: string): boolean {
  return RESERVED_EVENT_TYPES.has(eventType);
}

/** What a write may make of the state (the worker passes them; replays of stored events do not). */
export type StateLimits = Pick<WriteLimits, 'stateBytesMax' | 'jsonDepthMax'>;

/**
 * JSON size of states already measured. States are never mutated (heads share them with readers),
 * so a size stays true for the object's life; a merge then costs O(payload), not O(state).
 */
const stateBytesCache = new WeakMap<object, number>();

/** UTF-8 bytes of the state's JSON text: measured once per state object, then derived. */
export function stateBytes(state: JsonObject): number {
  let bytes = stateBytesCache.get(state);
  if (bytes === undefined) {
    bytes = jsonBytes(state);
    stateBytesCache.set(state, bytes);
  }
  return bytes;
}

function tooLarge(bytes: number, limits: StateLimits, where: string): DbxError {
  return new DbxError('payload_too_large', `${where} the state would grow to ${bytes} bytes, over state_bytes_max (${limits.stateBytesMax})`, {
    state_bytes: bytes,
    state_bytes_max: limits.stateBytesMax,
  });
}

/** Bytes a member adds to its container besides its value: `"key":` in an object, nothing in an array. */
function keyBytes(container: object, key: string): number {
  return Array.isArray(container) ? 0 : jsonBytes(key) + 1;
}

/** Members of a container, counted up to 2 (all a comma needs to know) without listing the keys. */
function membersUpTo2(container: object): number {
  if (Array.isArray(container)) return Math.min(container.length, 2);
  let n = 0;
  for (const _ in container) if (++n === 2) break;
  return n;
}

/**
 * Returns a new state; never mutates the input (heads share state objects with readers). With
 * `limits`, refuses (413) a result over `state_bytes_max`: the size is derived from the state's
 * measured size plus the members the payload adds or replaces.
 */
export function mergePayload(state: JsonObject, payload: JsonObject, limits?: StateLimits): JsonObject {
  const next: JsonObject = { ...state };
  if (!limits) {
    for (const [key, value] of Object.entries(payload)) {
      if (value === null) delete next[key];
      else next[key] = value;
    }
    return next;
  }
  let members = Object.keys(state).length;
  // Bytes of the members alone: `{` `}` and the commas between members are added back at the end.
  let content = stateBytes(state) - 2 - Math.max(0, members - 1);
  for (const [key, value] of Object.entries(payload)) {
    const old = Object.prototype.hasOwnProperty.call(next, key) ? next[key] : undefined;
    if (old !== undefined) {
      content -= jsonBytes(key) + 1 + jsonBytes(old);
      members--;
    }
    if (value === null) {
      delete next[key];
    } else {
      next[key] = value;
      content += jsonBytes(key) + 1 + jsonBytes(value);
      members++;
    }
  }
  const bytes = content + 2 + Math.max(0, members - 1);
  if (bytes > limits.stateBytesMax) throw tooLarge(bytes, limits, 'after this event');
  stateBytesCache.set(next, bytes);
  return next;
}

export type PatchOperation = Operation;

interface Target {
  container: object | undefined;
  key: string;
}

/** The value at a pointer, or undefined when it does not resolve (fast-json-patch throws on some). */
function valueAt(doc: unknown, pointer: string): unknown {
  if (pointer === '') return doc;
  try {
    return getValueByPointer(doc as object, pointer) as unknown;
  } catch {
    return undefined;
  }
}

/** The container a pointer points into and the member's key there (undefined when unresolvable). */
function targetOf(doc: unknown, pointer: string): Target {
  const cut = pointer.lastIndexOf('/');
  const container = valueAt(doc, pointer.slice(0, Math.max(cut, 0)));
  const key = unescapePathComponent(pointer.slice(cut + 1));
  return { container: container !== null && typeof container === 'object' ? container : undefined, key };
}

function memberOf(target: Target): unknown {
  const { container, key } = target;
  if (!container || !Object.prototype.hasOwnProperty.call(container, key)) return undefined;
  return (container as Record<string, unknown>)[key];
}

/** Size change from putting a value of `valueBytes` at `target` (an insert, or a replace of an object member). */
function putDelta(target: Target, valueBytes: number, membersAfterRemoval = 0): number {
  const { container, key } = target;
  if (!container) return 0; // unresolvable: applyOperation refuses it
  if (!Array.isArray(container)) {
    const old = memberOf(target);
    if (old !== undefined) return valueBytes - jsonBytes(old);
  }
  const existing = membersUpTo2(container) - membersAfterRemoval;
  return keyBytes(container, key) + valueBytes + (existing > 0 ? 1 : 0);
}

/** Size change from removing the member at `target`, not counting its value. */
function removeOverhead(target: Target): number {
  const { container, key } = target;
  if (!container) return 0;
  return -(keyBytes(container, key) + (membersUpTo2(container) > 1 ? 1 : 0));
}

/**
 * The operation to apply and what it does to the state's size. Values that enter the state are
 * cloned (stringify + parse, which also measures them): without it a later operation could edit a
 * value inside the patch itself, and the patch is what gets stored as the event. A copy's source is
 * measured the same way, so the bomb (`copy from ""` doubling the state) is caught at the copy that
 * crosses the limit, before it is made. A move costs nothing to measure: only the keys change.
 */
function prepareOp(doc: unknown, docBytes: number, op: PatchOperation): { op: PatchOperation; delta: number } {
  const put = (value: unknown, extra = 0): { op: PatchOperation; delta: number } => {
    const text = JSON.stringify(value);
    const bytes = Buffer.byteLength(text, 'utf8');
    const delta = op.path === '' ? bytes - docBytes : putDelta(targetOf(doc, op.path), bytes) + extra;
    return { op: { op: 'add', path: op.path, value: JSON.parse(text) }, delta };
  };
  switch (op.op) {
    case 'add':
      return put(op.value);
    case 'replace': {
      const text = JSON.stringify(op.value);
      const bytes = Buffer.byteLength(text, 'utf8');
      const old = op.path === '' ? doc : memberOf(targetOf(doc, op.path));
      // An unresolvable path changes nothing here: applyOperation refuses it.
      return { op: { op: 'replace', path: op.path, value: JSON.parse(text) }, delta: old === undefined ? 0 : bytes - (op.path === '' ? docBytes : jsonBytes(old)) };
    }
    case 'copy': {
      const source = valueAt(doc, op.from);
      return source === undefined ? { op, delta: 0 } : put(source);
    }
    case 'remove': {
      const target = targetOf(doc, op.path);
      const old = op.path === '' ? undefined : memberOf(target);
      return { op, delta: old === undefined ? 0 : removeOverhead(target) - jsonBytes(old) };
    }
    case 'move': {
      if (op.from === op.path) return { op, delta: 0 };
      // RFC 6902 §4.4; fast-json-patch does not check it, and `move from ""` would make the state
      // contain itself (a cycle that no encoder can write).
      if (op.from === '' || op.path.startsWith(`${op.from}/`)) {
        throw new DbxError('validation_failed', `failed to apply patch: a move's from (${op.from || '""'}) must not be a prefix of its path`, [
          { path: 'body.patch', message: `a move's from (${op.from || '""'}) must not be a prefix of its path` },
        ]);
      }
      if (op.path === '') return { op, delta: jsonBytes(valueAt(doc, op.from)) - docBytes };
      const from = targetOf(doc, op.from);
      const to = targetOf(doc, op.path);
      const sameContainer = from.container !== undefined && from.container === to.container;
      return { op, delta: removeOverhead(from) + putDelta(to, 0, sameContainer ? 1 : 0) };
    }
    default:
      return { op, delta: 0 };
  }
}

/** RFC 6901 reference token → member name. */
const unescapeToken = (token: string): string => token.replace(/~1/g, '/').replace(/~0/g, '~');

/**
 * Resolves a pointer on the document's own members only. fast-json-patch follows inherited
 * members too (`/toString`, `/constructor`), so `move from /toString` would put a function into the
 * state, which no encoder writes back: the stored state would stop being the fold of its events.
 * `__proto__` is refused outright (assigning it would change an object's prototype).
 */
function checkPointer(doc: unknown, pointer: string, mustExist: boolean, index: number): void {
  if (pointer === '') return;
  const fail = (why: string): never => {
    throw new DbxError('validation_failed', `failed to apply patch: operation ${index}: ${why}`, [{ path: `patch.${index}`, message: why }]);
  };
  if (!pointer.startsWith('/')) fail(`'${pointer}' is not a JSON pointer`);
  const tokens = pointer.slice(1).split('/').map(unescapeToken);
  let current: unknown = doc;
  for (let t = 0; t < tokens.length; t++) {
    const token = tokens[t] as string;
    if (token === '__proto__') fail(`'${pointer}' names __proto__, which a state may not hold`);
    const last = t === tokens.length - 1;
    if (current === null || typeof current !== 'object') return fail(`path '${pointer}' does not exist`);
    if (Array.isArray(current)) {
      if (last && !mustExist && token === '-') return;
      if (!/^(0|[1-9]\d*)$/.test(token)) return fail(`'${token}' is not an array index in '${pointer}'`);
      const at = Number(token);
      if (at > current.length || (at === current.length && (mustExist || !last))) return fail(`path '${pointer}' does not exist`);
      current = current[at];
    } else {
      const own = Object.prototype.hasOwnProperty.call(current, token);
      if (!own && (mustExist || !last)) return fail(`path '${pointer}' does not exist`);
      current = own ? (current as Record<string, unknown>)[token] : undefined;
    }
  }
}

function checkPointers(doc: unknown, op: PatchOperation, index: number): void {
  switch (op.op) {
    case 'add':
      return checkPointer(doc, op.path, false, index);
    case 'remove':
    case 'replace':
    case 'test':
      return checkPointer(doc, op.path, true, index);
    case 'move':
    case 'copy':
      checkPointer(doc, op.from, true, index);
      return checkPointer(doc, op.path, false, index);
    default:
      return;
  }
}

/**
 * Applies RFC 6902 operations atomically (on a copy; a failing operation leaves nothing changed).
 * With `limits` (a write, not a replay) the state's size is tracked operation by operation and the
 * patch is refused (413) as soon as it would pass `state_bytes_max`, and the result may not nest
 * deeper than `json_depth_max` (400). Cost: the copy (stringify + parse of the state, which also
 * gives its size) and one iterative depth walk of the result, each O(state); ~5 µs for a 1 KiB state.
 */
export function applyJsonPatch(state: JsonObject, ops: readonly PatchOperation[], limits?: StateLimits): JsonObject {
  const text = JSON.stringify(state);
  let doc: unknown = JSON.parse(text);
  let bytes = Buffer.byteLength(text, 'utf8');
  let i = 0;
  try {
    for (; i < ops.length; i++) {
      checkPointers(doc, ops[i] as PatchOperation, i);
      const prepared = prepareOp(doc, bytes, ops[i] as PatchOperation);
      bytes += prepared.delta;
      if (limits && bytes > limits.stateBytesMax) throw tooLarge(bytes, limits, `at patch operation ${i},`);
      doc = applyOperation(doc as object, prepared.op, true, true, true, i).newDocument;
    }
  } catch (err) {
    if (err instanceof DbxError) throw err;
    // Our own words: a library's or the runtime's message never reaches an answer.
    const failedTest = err instanceof Error && err.name === 'TEST_OPERATION_FAILED';
    const message = failedTest ? `test operation ${i} failed` : `operation ${i} cannot be applied to the state`;
    throw new DbxError('validation_failed', `failed to apply patch: ${message}`, [{ path: `patch.${i}`, message }]);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new DbxError('validation_failed', 'a patch must leave the state a JSON object', [{ path: 'body.patch', message: 'must leave the state a JSON object' }]);
  }
  if (limits && jsonDepth(doc, limits.jsonDepthMax) > limits.jsonDepthMax) {
    throw new DbxError('validation_failed', `the patch would nest the state deeper than json_depth_max (${limits.jsonDepthMax})`, [
      { path: 'patch', message: `state nesting depth exceeds json_depth_max (${limits.jsonDepthMax})` },
    ]);
  }
  stateBytesCache.set(doc, bytes);
  return doc as JsonObject;
}

/** Folds one stored event into the state. */
export function applyEventToState(state: JsonObject, eventType: string, payload: JsonObject | JsonValue[]): JsonObject {
  if (isLifecycleEvent(eventType)) return state;
  if (Array.isArray(payload)) return applyJsonPatch(state, payload as unknown as PatchOperation[]);
  return mergePayload(state, payload);
}

/** Dot-path lookup (`a.b.0.c`): object keys or array indices; anything missing is null. */
export function selectPath(state: JsonValue, path: string): JsonValue {
  if (path.length === 0) return null;
  let current: JsonValue | undefined = state;
  for (const segment of path.split('.')) {
    if (segment.length === 0 || current === null || typeof current !== 'object') return null;
    if (Array.isArray(current)) {
      if (!/^\d+$/.test(segment)) return null;
      current = current[Number(segment)];
    } else {
      current = Object.prototype.hasOwnProperty.call(current, segment) ? current[segment] : undefined;
    }
    if (current === undefined) return null;
  }
  return current ?? null;
}
