/**
 * The RFC 6962 inclusion proof a `with_proof` plugin receives with each delivery (DESIGN §4, §8):
 * event v is leaf v−1, and the tree is the aggregate's history 1..v, so the proof's root is that
 * event's own `merkle_root` and a receiver can check the delivery against the event alone.
 *
 * The hashing is src/core/merkle.ts's (the same code the server builds roots and `GET …/proof`
 * with), so a delivery proof and a route proof of the same leaf and size are identical.
 */
import { z } from 'zod';
import { DbxError, inclusionProof, rootOf } from '../core/index.js';
import type { Reader } from '../coordinator/reader.js';
import type { DeliveryProof } from './types.js';

const hashHex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a 64-digit lowercase hex hash');

/** The shape of `DeliveryProof`: the body builder checks what the dispatcher hands it with this. */
export const deliveryProofSchema = z.strictObject({
  leaf_hash: hashHex,
  leaf_index: z.int().min(0),
  tree_size: z.int().min(1),
  root: hashHex,
  path: z.array(hashHex).max(64),
});

const forInput = z
  .object({
    leafHashes: z.array(hashHex).min(1),
    version: z.int().min(1),
    treeSize: z.int().min(1),
  })
  .refine((v) => v.version <= v.treeSize && v.treeSize <= v.leafHashes.length, 'need 1 <= version <= treeSize <= leafHashes.length');

/**
 * Inclusion proof of `version` (1-based) in the tree of the first `treeSize` leaves of
 * `leafHashes` (hex leaf hashes of versions 1..n in order, e.g. the `hash` of each event).
 * Throws DbxError `invalid_input` for a malformed hash or an out-of-range version or size.
 */
export function inclusionProofFor(leafHashes: string[], version: number, treeSize: number): DeliveryProof {
  const parsed = forInput.safeParse({ leafHashes, version, treeSize });
  if (!parsed.success) throw new DbxError('invalid_input', `cannot build an inclusion proof: ${parsed.error.issues[0]?.message ?? 'bad input'}`);
  const leaves = leafHashes.slice(0, treeSize);
  return {
    leaf_hash: leaves[version - 1] as string,
    leaf_index: version - 1,
    tree_size: treeSize,
    root: rootOf(leaves),
    path: inclusionProof(leaves, version - 1),
  };
}

/** What `Reader.inclusionProof` answers (the `GET …/proof?version&size` body). */
const readerProof = z.object({
  version: z.int().min(1),
  tree_size: z.int().min(1),
  leaf_hash: hashHex,
  root: hashHex,
  proof: z.array(hashHex),
});

/**
 * The delivery proof of event `version` of an aggregate, read from the store through the same
 * Reader method the proof route uses, at tree size = version (so `root` equals that event's
 * `merkle_root`). Reads the stored leaf hashes of versions 1..version (no decryption).
 * Throws DbxError `not_found` for a missing aggregate, `invalid_input` for a version beyond its head.
 */
export function deliveryProof(reader: Reader, tenant: string, type: string, id: string, version: number): DeliveryProof {
  if (!Number.isInteger(version) || version < 1) throw new DbxError('invalid_input', 'version must be a positive integer');
  const got = readerProof.safeParse(reader.inclusionProof(tenant, type, id, version, version));
  // The reader builds this itself; a mismatch is a bug there, not bad input.
  if (!got.success) throw new Error(`inclusion proof of ${type}/${id} v${version} has an unexpected shape`);
  return { leaf_hash: got.data.leaf_hash, leaf_index: version - 1, tree_size: got.data.tree_size, root: got.data.root, path: got.data.proof };
}
