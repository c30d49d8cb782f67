/**
 * Checks a plugin delivery that carries an RFC 6962 proof (`with_proof`), for a read model that
 * wants to know the event it was sent is the one the server committed (DESIGN §4, §8).
 *
 * With the full event: the leaf hash is recomputed from the record (RFC 8785 canonical JSON of the
 * record minus `hash` and `merkle_root`, then SHA-256(0x00 || bytes)) and must equal `event.hash`
 * and `proof.leaf_hash`; the audit path must fold to `proof.root`, which must equal
 * `event.merkle_root` (tree size = version) and `trustedRoot` when given.
 * In `extensions-only` the payload is withheld, so the leaf cannot be recomputed: only the path from
 * `proof.leaf_hash` to the root is checked (`checked: 'path-only'`), and the extensions are not
 * bound by it.
 *
 * A proof alone shows only that its hashes lead to the root written inside it: whoever can forge
 * the delivery can forge a matching root. `root_trusted` is true only when `trustedRoot` (a root the
 * caller got some other way, e.g. from the server) was given and matched.
 *
 * Hashing uses @noble/hashes and the canonical JSON module has no imports, so this runs in a
 * browser or any JS runtime. The fold is RFC 9162 §2.1.3.2 as in src/core/merkle.ts, which cannot
 * be imported here because it hashes with node:crypto.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { z } from 'zod';
import { canonicalize } from '../core/canonical-json.js';

export interface DeliveryVerdict {
  valid: boolean;
  /** Why the delivery was rejected. */
  reason?: string;
  /** What was checked: the event's own hash and the path, or the path alone (no full event). */
  checked?: 'event' | 'path-only';
  /** True when `trustedRoot` was given and the proof's root equals it. */
  root_trusted?: boolean;
  /** What a valid verdict could not cover. */
  note?: string;
}

export interface VerifyDeliveryOptions {
  /** A root the caller trusts for this aggregate at tree size `proof.tree_size` (hex). */
  trustedRoot?: string;
}

const hashHex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a 64-digit lowercase hex hash');
const proofShape = z.object({
  leaf_hash: hashHex,
  leaf_index: z.int().min(0),
  tree_size: z.int().min(1),
  root: hashHex,
  path: z.array(hashHex).max(64),
});
const eventShape = z.looseObject({
  aggregate_type: z.string(),
  aggregate_id: z.string(),
  event_type: z.string(),
  version: z.int().min(1),
  payload: z.unknown(),
  metadata: z.looseObject({ event_id: z.string() }),
  hash: hashHex,
  merkle_root: hashHex,
});
const bodyShape = z.looseObject({
  event_id: z.string(),
  aggregate_type: z.string(),
  aggregate_id: z.string(),
  version: z.int().min(1),
  event_type: z.string(),
  event: eventShape.optional(),
  proof: proofShape.optional(),
});
const optionsShape = z.strictObject({ trustedRoot: z.string().regex(/^[0-9a-fA-F]{64}$/, 'trustedRoot must be a 64-digit hex hash').optional() });

type Proof = z.infer<typeof proofShape>;

/** Checks `body` (a delivery body as a plugin received it, parsed from JSON). Never throws. */
export function verifyDelivery(body: unknown, options: VerifyDeliveryOptions = {}): DeliveryVerdict {
  const opts = optionsShape.safeParse(options);
  if (!opts.success) return invalid(opts.error.issues[0]?.message ?? 'bad options');
  const parsed = bodyShape.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return invalid(`not a delivery body: ${issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'bad shape'}`);
  }
  const { proof, event } = parsed.data;
  if (!proof) return invalid('the delivery carries no proof (enable with_proof on the plugin)');
  if (proof.leaf_index >= proof.tree_size) return invalid('proof.leaf_index is outside the tree');
  if (proof.leaf_index !== parsed.data.version - 1) return invalid('proof.leaf_index is not version - 1');

  let checked: DeliveryVerdict['checked'] = 'path-only';
  const notes: string[] = [];
  if (event) {
    const mismatch = idMismatch(parsed.data, event);
    if (mismatch) return invalid(`event.${mismatch} does not match the delivery's ${mismatch === 'metadata.event_id' ? 'event_id' : mismatch}`);
    if (event.hash !== proof.leaf_hash) return invalid('event.hash does not equal proof.leaf_hash');
    if (event.payload === null) {
      notes.push('extensions-only delivery: the payload is withheld, so the leaf hash was not recomputed and the extensions are not covered; only the path from proof.leaf_hash to the root was checked');
    } else {
      let leaf: string;
      try {
        leaf = recordLeafHash((body as { event: Record<string, unknown> }).event);
      } catch {
        return invalid('the event cannot be put in canonical JSON');
      }
      if (leaf !== event.hash) return invalid('the event does not hash to event.hash: the record was altered');
      checked = 'event';
    }
  } else {
    notes.push('no event in this payload mode: only the path from proof.leaf_hash to the root was checked');
  }
  if (!foldsToRoot(proof)) return invalid('the audit path does not lead from proof.leaf_hash to proof.root');
  if (event) {
    if (proof.tree_size === event.version) {
      if (proof.root !== event.merkle_root) return invalid('proof.root does not equal event.merkle_root');
    } else {
      notes.push(`the proof is for tree size ${proof.tree_size}, so its root was not compared with event.merkle_root (the root at version ${event.version})`);
    }
  }
  const trusted = opts.data.trustedRoot?.toLowerCase();
  if (trusted !== undefined && proof.root !== trusted) return invalid('proof.root is not the trusted root');
  if (trusted === undefined) notes.push('no trusted root given: the delivery is consistent with itself, which a forger can also achieve');
  return { valid: true, checked, root_trusted: trusted !== undefined, ...(notes.length ? { note: notes.join('; ') } : {}) };
}

function invalid(reason: string): DeliveryVerdict {
  return { valid: false, reason };
}

function idMismatch(ids: z.infer<typeof bodyShape>, event: z.infer<typeof eventShape>): string | undefined {
  if (event.aggregate_type !== ids.aggregate_type) return 'aggregate_type';
  if (event.aggregate_id !== ids.aggregate_id) return 'aggregate_id';
  if (event.version !== ids.version) return 'version';
  if (event.event_type !== ids.event_type) return 'event_type';
  if (event.metadata.event_id !== ids.event_id) return 'metadata.event_id';
  return undefined;
}

/** DESIGN §4: SHA-256(0x00 || RFC 8785 bytes of the record minus `hash` and `merkle_root`). */
export function recordLeafHash(record: Record<string, unknown>): string {
  const { hash: _hash, merkle_root: _root, ...rest } = record;
  const bytes = utf8ToBytes(canonicalize(rest));
  const input = new Uint8Array(bytes.length + 1);
  input[0] = 0x00;
  input.set(bytes, 1);
  return bytesToHex(sha256(input));
}

function nodeHash(leftHex: string, rightHex: string): string {
  const input = new Uint8Array(65);
  input[0] = 0x01;
  input.set(hexToBytes(leftHex), 1);
  input.set(hexToBytes(rightHex), 33);
  return bytesToHex(sha256(input));
}

/** RFC 9162 §2.1.3.2: folds the audit path from the leaf and compares with the root. */
function foldsToRoot(proof: Proof): boolean {
  let fn = proof.leaf_index;
  let sn = proof.tree_size - 1;
  let r = proof.leaf_hash;
  for (const p of proof.path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r === proof.root;
}
