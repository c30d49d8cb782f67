/**
 * The checks a tenant move (tenant-move.ts) makes of its copy before the flip: a full verification
 * of each copied aggregate against the source's root at its version, then incremental checks of
 * what later catch-up passes copied, grown from the Merkle frontier verified before (O(new events)).
 * Any failure is `integrity_failed`, and the move rolls back.
 */
import { DbxError, appendLeaf, canonicalize, frontierRoot, leafHash, shardName } from '../core/index.js';
import type { ShardStore, StoredHead } from '../shard-worker/index.js';
import type { CopySide } from './tenant-copy.js';
import { verifyAggregate } from './verify.js';

/** A copied aggregate as verified: its version and the Merkle frontier of events 1..version. */
export interface Verified {
  version: number;
  frontier: string[];
}

/** Verified aggregates by `verifiedKey(type, id)`. */
export type VerifiedCopies = Map<string, Verified>;

/** What the checks need of a move: whose copy, from where, to where. */
export interface MoveSides {
  tenant: string;
  source: CopySide;
  target: CopySide;
}

export const verifiedKey = (type: string, id: string): string => `${type}\u0000${id}`;

/** One aggregate of the copy: verify.ts's full check on the target, then its root against the source's. */
export async function verifyCopied(move: MoveSides, verified: VerifiedCopies, type: string, id: string): Promise<void> {
  const { source, target, tenant } = move;
  const head = target.store.getHead(tenant, type, id) as StoredHead;
  const result = await verifyAggregate(target.store, tenant, type, id, head);
  if (!result.valid) {
    const problem = result.problems?.[0];
    throw new DbxError('integrity_failed', `the copy of ${type}/${id} on ${shardName(target.shard)} failed verification at version ${result.first_invalid_version}: ${problem?.message ?? 'invalid'}`);
  }
  const sourceRoot = rootAt(source.store, tenant, type, id, head.version);
  if (sourceRoot !== head.merkle_root) {
    throw new DbxError('integrity_failed', `the copy of ${type}/${id} v${head.version} has root ${head.merkle_root}, the source ${sourceRoot ?? 'has no such version'}`);
  }
  verified.set(verifiedKey(type, id), { version: head.version, frontier: [...head.frontier] });
}

/**
 * Incremental check of one aggregate's copied delta: every event past the verified version has
 * the hash of its body and the root of the tree grown from the verified frontier, and the result
 * equals the target's head and the source's root at that version (its head, when `paused`).
 * O(new events); records the new verified version.
 */
export function verifyTail(move: MoveSides, type: string, id: string, verified: VerifiedCopies, paused: boolean): void {
  const { source, target, tenant } = move;
  const key = verifiedKey(type, id);
  const from = verified.get(key);
  const head = target.store.getHeadMeta(tenant, type, id);
  const fail = (why: string): never => {
    throw new DbxError('integrity_failed', `the copy of ${type}/${id} on ${shardName(target.shard)} failed verification: ${why}`);
  };
  if (!head) {
    if (source.store.getHeadMeta(tenant, type, id)) fail('the aggregate is missing from the copy');
    verified.delete(key);
    return;
  }
  let frontier = from?.frontier ?? [];
  let size = from?.version ?? 0;
  if (head.version < size) fail(`its version went back from ${size} to ${head.version}`);
  for (const stored of target.store.storedEventRange(tenant, type, id, size)) {
    if (size >= head.version) break;
    const event = target.store.openEvent(stored);
    if (event.version !== size + 1) fail(`event ${size + 1} is missing`);
    const { hash, merkle_root, ...body } = event;
    const leaf = leafHash(canonicalize(body));
    if (hash !== leaf) fail(`event ${event.version}: the hash is not the hash of its content`);
    frontier = appendLeaf(frontier, size, leaf);
    size++;
    if (merkle_root !== frontierRoot(frontier)) fail(`event ${event.version}: merkle_root is not the root of events 1..${event.version}`);
  }
  const root = frontierRoot(frontier);
  if (size !== head.version || root !== head.merkle_root) fail(`the head (v${head.version}) is not the fold of its ${size} copied events`);
  if (paused) {
    const sourceHead = source.store.getHeadMeta(tenant, type, id);
    if (sourceHead?.version !== head.version || sourceHead.merkle_root !== root) fail(`the source is at v${sourceHead?.version ?? 0}, the copy at v${head.version}`);
  } else if (rootAt(source.store, tenant, type, id, head.version) !== root) {
    fail(`the source's root at v${head.version} differs from the copy's`);
  }
  verified.set(key, { version: size, frontier });
}

/** The merkle_root the source's event at `version` carries (readable without the data key). */
function rootAt(store: ShardStore, tenant: string, type: string, id: string, version: number): string | undefined {
  const stored = store.storedEvents.get([tenant, type, id, version]);
  if (stored === undefined) return undefined;
  try {
    const root = (JSON.parse(stored) as { merkle_root?: unknown }).merkle_root;
    return typeof root === 'string' ? root : undefined;
  } catch {
    return undefined;
  }
}

