/**
 * The schema contract shared by the registry (coordinator), the enforcement (shard workers) and
 * the CLI. Only types live here; the implementations are in the sibling files:
 * - model.ts    parseAggregateSchema: the original's schema JSON (reference §6.1) → AggregateSchema,
 *               refusing bad types, regexes and range bounds at save time (DbxError validation_failed
 *               whose details list every problem).
 * - compile.ts  compileSchema: one compiled validator per schema version (never interpreted per
 *               write).
 * - json-schema.ts toJsonSchema: a JSON Schema 2020-12 document per event type.
 * - restrict.ts parseRestrictMode: the original's aliases (off|false|0|no|none|unrestricted|dev …).
 */

export type ColumnTypeName = 'integer' | 'float' | 'decimal' | 'boolean' | 'text' | 'timestamp' | 'date' | 'json' | 'binary' | 'object';

export type FormatName =
  | 'email'
  | 'url'
  | 'credit_card'
  | 'country_code'
  | 'iso_8601'
  | 'wgs_84'
  | 'camel_case'
  | 'snake_case'
  | 'kebab_case'
  | 'pascal_case'
  | 'upper_case_snake_case';

/** One column: its type (canonical lower-case; decimal carries precision and scale) and rules. */
export interface ColumnSettings {
  type: string; // canonical text, e.g. "integer", "decimal(8,2)"
  required?: boolean;
  contains?: string[];
  does_not_contain?: string[];
  regex?: string[];
  length?: { min?: number; max?: number };
  range?: { min?: string; max?: string };
  format?: FormatName;
  properties?: Record<string, ColumnSettings>;
}

export interface EventSchema {
  fields: string[];
  notes?: string;
}

/** The original's AggregateSchema (reference §6.1), as stored and as served. */
export interface AggregateSchema {
  aggregate: string;
  snapshot_threshold: number | null;
  locked: boolean;
  field_locks: string[];
  hidden: boolean;
  hidden_fields: string[];
  column_types: Record<string, ColumnSettings>;
  events: Record<string, EventSchema>;
  created_at: string;
  updated_at: string;
}

/** A schema as the registry keeps it: every change is a new numbered version. */
export interface SchemaRecord {
  tenant: string;
  version: number;
  schema: AggregateSchema;
}

export interface Violation {
  /** Dotted path of the field (`address.zip`), or "" for the whole payload. */
  field: string;
  /** The rule that failed: type | required | contains | does_not_contain | regex | format | length | range | locked | field_lock | event_undeclared | field_missing | field_not_permitted | object_payload | schema_required */
  rule: string;
  message: string;
}

export type ValidationOutcome = { ok: true; payload: Record<string, unknown> } | { ok: false; violations: Violation[] };

export interface CompiledSchema {
  readonly version: number;
  readonly schema: AggregateSchema;
  /**
   * Validates one event payload in the order of reference §6.2 (locked → field locks → event declared
   * → the event's `fields` → column types) and returns every violation, not only the first. On
   * success `payload` is the normalised payload (declared types normalise: "42" → 42 for integer,
   * "yes" → true for boolean, timestamps → UTC `Z`, decimals → canonical strings); undeclared fields
   * are passed through untouched. Never throws.
   */
  validatePayload(eventType: string, payload: Record<string, unknown>): ValidationOutcome;
  /**
   * Column-type checks of a whole state (patches are validated on the state they produce): the same
   * rules as for a payload, `required` included, no event rules. Returns the normalised state.
   */
  validateState(state: Record<string, unknown>): ValidationOutcome;
  /**
   * The event's `fields` rule alone, on the top-level keys a write sets (a patch's touched keys: its
   * payload in reference §14.2): every listed field among them and no other. [] when the event
   * lists no fields or is undeclared (validatePayload reports that).
   */
  eventFieldViolations(eventType: string, keys: ReadonlySet<string>): Violation[];
}

export type RestrictMode = 'off' | 'default' | 'strict';
