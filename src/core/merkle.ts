/**
 * RFC 6962 hashing: leaf = SHA-256(0x00 || bytes), node = SHA-256(0x01 || left || right), the tree
 * splits at the largest power of two below n and never duplicates an odd node.
 *
 * An aggregate keeps only its right frontier: the roots of the perfect subtrees that make up its
 * current size, largest first (one per set bit of n, so ≤ 64). Appending a leaf merges equal-sized
 * subtrees, so an append costs O(log n) hashes whatever the length of the history.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';

const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

/** Root of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1). */
export const EMPTY_ROOT = bytesToHex(sha256(new Uint8Array(0)));

export function leafHash(canonicalJson: string): string {
  const body = utf8ToBytes(canonicalJson);
  const input = new Uint8Array(body.length + 1);
  input[0] = LEAF_PREFIX;
  input.set(body, 1);
  return bytesToHex(sha256(input));
}

export function nodeHash(leftHex: string, rightHex: string): string {
  const input = new Uint8Array(65);
  input[0] = NODE_PREFIX;
  input.set(hexToBytes(leftHex), 1);
  input.set(hexToBytes(rightHex), 33);
  return bytesToHex(sha256(input));
}

/** Frontier of a tree of `size` leaves: subtree roots for each set bit of size, largest first. */
export type Frontier = string[];

/** Appends one leaf; returns the new frontier (the input is not modified). */
export function appendLeaf(frontier: Frontier, size: number, leaf: string): Frontier {
  const next = frontier.slice();
  let carry = leaf;
  // Each trailing one-bit of `size` is a subtree of the same size as the carry: merge them.
  let bits = size;
  while (bits % 2 === 1) {
    const left = next.pop();
    if (left === undefined) throw new Error('merkle frontier shorter than its size');
    carry = nodeHash(left, carry);
    bits = Math.floor(bits / 2);
  }
  next.push(carry);
  return next;
}

export function frontierRoot(frontier: Frontier): string {
  if (frontier.length === 0) return EMPTY_ROOT;
  let root = frontier[frontier.length - 1] as string;
  for (let i = frontier.length - 2; i >= 0; i--) root = nodeHash(frontier[i] as string, root);
  return root;
}

/** Root over a full list of leaves (used by verify and by proofs). */
export function rootOf(leaves: readonly string[]): string {
  if (leaves.length === 0) return EMPTY_ROOT;
  return subtreeRoot(leaves, 0, leaves.length);
}

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function subtreeRoot(leaves: readonly string[], start: number, end: number): string {
  const n = end - start;
  if (n === 1) return leaves[start] as string;
  const k = largestPowerOfTwoBelow(n);
  return nodeHash(subtreeRoot(leaves, start, start + k), subtreeRoot(leaves, start + k, end));
}

/** RFC 6962 §2.1.1 audit path for leaf `index` (0-based) in the tree over `leaves`. */
export function inclusionProof(leaves: readonly string[], index: number): string[] {
  return path(leaves, index, 0, leaves.length);
}

function path(leaves: readonly string[], m: number, start: number, end: number): string[] {
  const n = end - start;
  if (n <= 1) return [];
  const k = largestPowerOfTwoBelow(n);
  if (m < k) return [...path(leaves, m, start, start + k), subtreeRoot(leaves, start + k, end)];
  return [...path(leaves, m - k, start + k, end), subtreeRoot(leaves, start, start + k)];
}

/** RFC 6962 §2.1.2 consistency proof that the tree of the first `m` leaves is a prefix of all of them. */
export function consistencyProof(leaves: readonly string[], m: number): string[] {
  if (m <= 0 || m >= leaves.length) return [];
  return subproof(leaves, m, 0, leaves.length, true);
}

function subproof(leaves: readonly string[], m: number, start: number, end: number, complete: boolean): string[] {
  const n = end - start;
  if (m === n) return complete ? [] : [subtreeRoot(leaves, start, end)];
  const k = largestPowerOfTwoBelow(n);
  if (m <= k) return [...subproof(leaves, m, start, start + k, complete), subtreeRoot(leaves, start + k, end)];
  return [...subproof(leaves, m - k, start + k, end, false), subtreeRoot(leaves, start, start + k)];
}

/** Checks an inclusion proof (RFC 9162 §2.1.3.2 algorithm); needs no server. */
export function verifyInclusion(leaf: string, index: number, size: number, proof: readonly string[], root: string): boolean {
  if (index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r === root;
}

/** Checks a consistency proof (RFC 9162 §2.1.4.2 algorithm); needs no server. */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: string,
  newRoot: string,
  proof: readonly string[],
): boolean {
  if (oldSize === newSize) return oldRoot === newRoot && proof.length === 0;
  if (oldSize === 0) return proof.length === 0;
  if (oldSize > newSize || proof.length === 0) return false;
  const nodes = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : [...proof];
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = nodes[0] as string;
  let sr = nodes[0] as string;
  for (const c of nodes.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && fr === oldRoot && sr === newRoot;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}
