/**
 * Builds what one plugin receives for one event, per its payload mode (reference §10.2):
 *
 * | mode               | event                    | state | schema             |
 * |--------------------|--------------------------|-------|--------------------|
 * | `all`              | ✓                        | ✓     | ✓ (null when none) |
 * | `event-only`       | ✓                        | –     | –                  |
 * | `state-only`       | –                        | ✓     | –                  |
 * | `schema-only`      | –                        | –     | ✓ (null when none) |
 * | `event-and-schema` | ✓                        | –     | ✓ (null when none) |
 * | `extensions-only`  | ✓ with `payload: null`   | –     | –                  |
 *
 * The ids are always there, so a receiver can deduplicate on `event_id` whatever the mode. "–"
 * means the key is absent (the original sends only the parts present); `extensions-only` "nulls"
 * the state by leaving it out, as the original does.
 *
 * The event is laid out as the extension envelope of /work/shared/seeds/docs-extensions-and-payload-modes.txt
 * ("Example envelope delivered to plugins and event listings"): aggregate_type, aggregate_id,
 * event_type, payload, extensions, metadata, version, hash, merkle_root. In `extensions-only` only
 * `payload` changes (to null); extensions, metadata, ids and hashes stay, so the receiver still
 * gets correlation ids and can check `proof` from `hash` up to `merkle_root`.
 */
import { z } from 'zod';
import { DbxError, type EventRecord, type JsonObject } from '../core/index.js';
import { deliveryProofSchema } from './proof.js';
import { PAYLOAD_MODES, type DeliveryBody, type DeliveryProof, type PayloadMode } from './types.js';

export interface DeliveryInput {
  tenant: string;
  event: EventRecord;
  /** The aggregate state after this event. */
  state: JsonObject | null;
  /** The schema in force for the aggregate type (the registry's AggregateSchema), or null. */
  schema: unknown | null;
  mode: PayloadMode;
  proof?: DeliveryProof;
}

const hashHex = z.string().regex(/^[0-9a-f]{64}$/);

// Only what the body is built from is checked; the rest of the record passes through untouched,
// because a receiver recomputes `hash` over exactly the record the API returned.
const inputSchema = z.object({
  tenant: z.string().min(1),
  event: z.looseObject({
    aggregate_type: z.string().min(1),
    aggregate_id: z.string().min(1),
    event_type: z.string().min(1),
    version: z.int().min(1),
    payload: z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())]),
    extensions: z.record(z.string(), z.unknown()),
    metadata: z.looseObject({ event_id: z.string().min(1) }),
    hash: hashHex,
    merkle_root: hashHex,
  }),
  state: z.record(z.string(), z.unknown()).nullable(),
  schema: z.unknown(),
  mode: z.enum(PAYLOAD_MODES),
  proof: deliveryProofSchema.optional(),
});

/**
 * The delivery body for `input.mode`. Top-level objects are new; nested values (payload, state,
 * schema) are shared with the input, and neither side is modified. Throws DbxError `invalid_input`
 * for a malformed input or a proof that is not of this event (wrong leaf index or leaf hash).
 */
export function buildDeliveryBody(input: DeliveryInput): DeliveryBody {
  const parsed = inputSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new DbxError('invalid_input', `cannot build a delivery body: ${issue ? `${issue.path.join('.') || 'input'}: ${issue.message}` : 'bad input'}`);
  }
  const { tenant, event, state, schema, mode, proof } = input;
  if (proof && (proof.leaf_index !== event.version - 1 || proof.leaf_hash !== event.hash)) {
    throw new DbxError('invalid_input', `the proof is not of ${event.aggregate_type}/${event.aggregate_id} version ${event.version}`);
  }
  const body: DeliveryBody = {
    event_id: event.metadata.event_id,
    tenant,
    aggregate_type: event.aggregate_type,
    aggregate_id: event.aggregate_id,
    version: event.version,
    event_type: event.event_type,
  };
  switch (mode) {
    case 'all':
      body.event = envelope(event);
      body.state = state;
      body.schema = schema ?? null;
      break;
    case 'event-only':
      body.event = envelope(event);
      break;
    case 'state-only':
      body.state = state;
      break;
    case 'schema-only':
      body.schema = schema ?? null;
      break;
    case 'event-and-schema':
      body.event = envelope(event);
      body.schema = schema ?? null;
      break;
    case 'extensions-only':
      body.event = { ...envelope(event), payload: null };
      break;
  }
  if (proof) body.proof = { ...proof, path: [...proof.path] };
  return body;
}

/** The record in the seed's envelope order; fields it does not name follow, so none is lost. */
function envelope(event: EventRecord): EventRecord {
  const { aggregate_type, aggregate_id, event_type, payload, extensions, metadata, version, hash, merkle_root, ...rest } = event;
  return { aggregate_type, aggregate_id, event_type, payload, extensions, metadata, version, hash, merkle_root, ...rest };
}
