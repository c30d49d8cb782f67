/** Public face of src/plugins. Only the outbox reader exists so far; delivery is not built yet. */
export { readOutbox, outboxHead } from './outbox.js';
export type { OutboxEntry } from './outbox.js';
