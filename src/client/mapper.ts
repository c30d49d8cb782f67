/**
 * The one place where the client renames keys between the HTTP API (snake_case, DESIGN §6) and
 * TypeScript (camelCase). The transport runs every JSON answer through `fromWire` and every JSON
 * body and query through `bodyToWire`; methods never rename a field by hand.
 *
 * User data is never re-cased: the values under an opaque key are copied as they are (an event's
 * `payload`, an aggregate's `state`, `extensions`, a plugin's `headers`/`env`, a delivery `body`,
 * and in requests the `metadata` extension bag and a `patch`). Under a keyed key (`events`,
 * `column_types`, `properties` of a schema) the object's own keys are names the user chose (event
 * types, field names) and stay as they are, while the values below them are mapped; an array there
 * (an aggregate's `events`) is mapped element by element.
 *
 * Only keys that look like the API's own are renamed: lowercase snake_case on the way in, camelCase
 * with no underscore on the way out. `toWire` is the exact inverse of `fromWire` for every key the
 * API sends, so code that prints the API's JSON (the CLI) can turn a result back.
 *
 * The type-level `Camel<T>` / `Wire<T>` follow the same rules, so a result type is derived from the
 * server's own record type (src/core/types.ts) and cannot drift from it.
 */

/** Values copied as they are when an answer is mapped (and when a result is mapped back). */
const RESULT_OPAQUE = new Set(['payload', 'state', 'extensions', 'headers', 'env', 'body']);
/** In request bodies the extension bag and RFC 6902 operations are user data too. */
const BODY_OPAQUE = new Set([...RESULT_OPAQUE, 'metadata', 'patch']);
/** Objects whose keys are user-chosen names; their values are mapped. */
const KEYED = new Set(['events', 'column_types', 'properties']);

const WIRE_KEY = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$/;
const CAMEL_KEY = /^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+$/;

export function camelKey(key: string): string {
  return WIRE_KEY.test(key) ? key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()) : key;
}

export function wireKey(key: string): string {
  return CAMEL_KEY.test(key) ? key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : key;
}

type Rename = (key: string) => string;

function mapValue(value: unknown, rename: Rename, opaque: Set<string>, keyedValues: boolean): unknown {
  if (Array.isArray(value)) return value.map((v) => mapValue(v, rename, opaque, false));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (keyedValues) {
      out[key] = mapValue(v, rename, opaque, false);
      continue;
    }
    const wire = rename === camelKey ? key : wireKey(key);
    if (v === undefined) continue;
    out[rename(key)] = opaque.has(wire) ? v : mapValue(v, rename, opaque, KEYED.has(wire));
  }
  return out;
}

/** An answer of the API in TypeScript's naming. */
export function fromWire<T>(value: T): Camel<T> {
  return mapValue(value, camelKey, RESULT_OPAQUE, false) as Camel<T>;
}

/** A result turned back into the API's JSON (the inverse of `fromWire`), e.g. to print it. */
export function toWire<T>(value: T): Wire<T> {
  return mapValue(value, wireKey, RESULT_OPAQUE, false) as Wire<T>;
}

/** A request body or query in the API's naming; `undefined` fields are dropped. */
export function bodyToWire(value: unknown): unknown {
  return mapValue(value, wireKey, BODY_OPAQUE, false);
}

// ---- the same rules at the type level ----

type ResultOpaque = 'payload' | 'state' | 'extensions' | 'headers' | 'env' | 'body';
type Keyed = 'events' | 'column_types' | 'properties';

export type CamelKey<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<CamelKey<T>>}` : S;
export type WireKey<S extends string> = S extends `${infer C}${infer R}` ? `${C extends Uppercase<C> ? (C extends Lowercase<C> ? C : `_${Lowercase<C>}`) : C}${WireKey<R>}` : S;

/** `T` (an API type, snake_case) as the client returns it. */
export type Camel<T> = T extends readonly (infer U)[]
  ? Camel<U>[]
  : T extends object
    ? { [K in keyof T as K extends string ? CamelKey<K> : K]: K extends ResultOpaque ? T[K] : K extends Keyed ? CamelValues<T[K]> : Camel<T[K]> }
    : T;
type CamelValues<T> = T extends readonly (infer U)[] ? Camel<U>[] : T extends object ? { [K in keyof T]: Camel<T[K]> } : T;

/** A client result type back in the API's naming (the inverse of `Camel`). */
export type Wire<T> = T extends readonly (infer U)[]
  ? Wire<U>[]
  : T extends object
    ? {
        [K in keyof T as K extends string ? WireKey<K> : K]: K extends string
          ? WireKey<K> extends ResultOpaque
            ? T[K]
            : WireKey<K> extends Keyed
              ? WireValues<T[K]>
              : Wire<T[K]>
          : Wire<T[K]>;
      }
    : T;
type WireValues<T> = T extends readonly (infer U)[] ? Wire<U>[] : T extends object ? { [K in keyof T]: Wire<T[K]> } : T;
