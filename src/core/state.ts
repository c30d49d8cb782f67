/**
 * How events fold into aggregate state (DESIGN §3): an object payload is a top-level merge (a key set
 * to null is removed); a patch event carries its RFC 6902 operations as the payload (an array) and is
 * applied to the state; archive/restore events record a comment and leave the state alone.
 */
import fastJsonPatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { DbxError } from './errors.js';
import type { JsonObject, JsonValue } from './types.js';

const { applyPatch, deepClone } = fastJsonPatch;

export const ARCHIVE_EVENT = 'aggregate_archived';
export const RESTORE_EVENT = 'aggregate_restored';
export const RESERVED_EVENT_TYPES: ReadonlySet<string> = new Set([ARCHIVE_EVENT, RESTORE_EVENT]);

export function isLifecycleEvent(eventType: string): boolean {
  return RESERVED_EVENT_TYPES.has(eventType);
}

/** Returns a new state; never mutates the input (heads share state objects with readers). */
export function mergePayload(state: JsonObject, payload: JsonObject): JsonObject {
  const next: JsonObject = { ...state };
  for (const [key, value] of Object.entries(payload)) {
    if (value === null) delete next[key];
    else next[key] = value;
  }
  return next;
}

export type PatchOperation = Operation;

/** Applies RFC 6902 operations atomically; a failing operation leaves nothing changed. */
export function applyJsonPatch(state: JsonObject, ops: readonly PatchOperation[]): JsonObject {
  let result: unknown;
  try {
    result = applyPatch(deepClone(state), ops as Operation[], true, false).newDocument;
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new DbxError('validation_failed', `failed to apply patch: ${message}`, [
      { path: 'patch', message: message ?? 'patch failed' },
    ]);
  }
  if (result === null || typeof result !== 'object' || Array.isArray(result)) {
    throw new DbxError('validation_failed', 'a patch must leave the state a JSON object');
  }
  return result as JsonObject;
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
