/** Public face of src/core: what the other parts may import. */
export * from './errors.js';
export * from './canonical-json.js';
export * from './merkle.js';
export * from './snowflake.js';
export * from './types.js';
export * from './state.js';
export * from './limits.js';
export * from './validation.js';
export * from './config.js';
export * from './durable-file.js';
export * from './encryption.js';
export * from './key-registry.js';
export * from './tokens.js';
export * from './placement.js';
export * from './schema/index.js';
export * from './token-input.js';
export * from './json-text.js';
