// The Merkle rule of receipts and record batches, byte for byte kizuna/merkle.py (OpenZeppelin's MerkleProof:
// commutative keccak256 of two 32-byte words, smaller first; a level with an odd number of nodes
// carries its last node up unchanged; leaves are keccak256(keccak256(encoded))). Parity with
// Python: tests/web/test_auditor_parity.py over generated trees of odd and even sizes.

import { keccak256 } from "viem";
import type { Bytes } from "./bytes.ts";
import { concatBytes } from "./bytes.ts";
import { InputError } from "./errors.ts";

const WORD = 32;

export function keccak(data: Uint8Array): Bytes {
  return keccak256(data, "bytes") as Bytes;
}

/** keccak256(bytes.concat(keccak256(encoded))): the leaf for ABI-encoded data. */
export function leafHash(encoded: Uint8Array): Bytes {
  return keccak(keccak(encoded));
}

function less(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length && i < b.length; i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]!;
  }
  return a.length < b.length;
}

/** OpenZeppelin's commutative keccak256 of two 32-byte words. */
export function hashPair(a: Uint8Array, b: Uint8Array): Bytes {
  return less(a, b) ? keccak(concatBytes(a, b)) : keccak(concatBytes(b, a));
}

/** The root that `proof` and `leaf` lead to (MerkleProof.processProof). */
export function processProof(proof: readonly Uint8Array[], leaf: Uint8Array): Bytes {
  let computed: Bytes = Uint8Array.from(leaf) as Bytes;
  for (const sibling of proof) computed = hashPair(computed, sibling);
  return computed;
}

/** The levels of the tree over `leaves`: levels[0] the leaves, the last [root]. */
export function buildLevels(leaves: readonly Uint8Array[]): Bytes[][] {
  if (leaves.length === 0) throw new InputError("leaves", "a Merkle tree needs at least one leaf");
  leaves.forEach((leaf, i) => {
    if (leaf.length !== WORD) throw new InputError(`leaves[${i}]`, `must be 32 bytes, got ${leaf.length}`);
  });
  let level = leaves.map((leaf) => Uint8Array.from(leaf) as Bytes);
  const levels = [level];
  while (level.length > 1) {
    const parents: Bytes[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) parents.push(hashPair(level[i]!, level[i + 1]!));
    if (level.length % 2) parents.push(level[level.length - 1]!);
    level = parents;
    levels.push(level);
  }
  return levels;
}

export function rootOf(levels: Bytes[][]): Bytes {
  return levels[levels.length - 1]![0]!;
}

/** The sibling hashes from leaf `index` up to the root. */
export function proofOf(levels: Bytes[][], index: number): Bytes[] {
  const size = levels[0]!.length;
  if (!Number.isInteger(index) || index < 0 || index >= size) {
    throw new InputError("index", `no leaf ${index} in a tree of ${size}`);
  }
  const proof: Bytes[] = [];
  for (const level of levels.slice(0, -1)) {
    const sibling = index ^ 1;
    if (sibling < level.length) proof.push(level[sibling]!);
    index = Math.floor(index / 2);
  }
  return proof;
}
