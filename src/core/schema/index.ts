/** Public face of src/core/schema: the contract (api.ts) and its implementations. */
export * from './api.js';
export { parseAggregateSchema, canonicalColumnType, parseColumnType, formatColumnType, schemaError, EVENT_NOTE_CHARS_MAX } from './model.js';
export type { SchemaProblem, ParsedColumnType } from './model.js';
export { parseRestrictMode, schemaRequiredViolation, RESTRICT_MODE_ALIASES } from './restrict.js';
export { FORMAT_NAMES, COUNTRY_CODES, isFormatName } from './formats.js';
export { compileSchemaRegex } from './regex.js';
export { compileSchema } from './compile.js';
export { toJsonSchema } from './json-schema.js';
