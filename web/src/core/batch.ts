// A batch of records registered under one Merkle root, byte for byte kizuna/batch.py
// (docs/contracts.md "Batches"). The chain stores the root of a tree over the batch's leaves,
// the count and the patient; the leaves live off-chain in the batch's *manifest*.
//
// - Leaf: keccak256(keccak256(recordId ‖ scopeId ‖ commitment)), folded with OpenZeppelin's
//   MerkleProof rules (core/merkle.ts, the one tree of the page: receipts use it too).
// - Manifest: "KZBATCH\x01", the count (4 bytes, big-endian), then each leaf's three words.
// - A record id appears at most once in a batch; a batch holds 1..MAX_BATCH_RECORDS.
// The errors are Python's, field and reason (tests/web/test_batch_parity.py compares them).

import { asciiBytes, bytesToHex0x, concatBytes, type Bytes } from "./bytes.ts";
import { InputError } from "./errors.ts";
import { buildLevels, leafHash, processProof, proofOf, rootOf } from "./merkle.ts";

export const MANIFEST_MAGIC: Bytes = concatBytes(asciiBytes("KZBATCH", "magic"), new Uint8Array([1]));
const COUNT_SIZE = 4;
const LEAF_SIZE = 96;
const HEADER_SIZE = MANIFEST_MAGIC.length + COUNT_SIZE;

/** Records in one batch (a manifest of 9.6 MB; a proof of 17 words). A larger import is
 * several batches. */
export const MAX_BATCH_RECORDS = 100_000;

function word(name: string, value: Uint8Array): Bytes {
  if (!(value instanceof Uint8Array) || value.length !== 32) throw new InputError(name, "must be 32 bytes");
  return Uint8Array.from(value) as Bytes;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** One record of a batch: what the chain would have said of it, registered alone. */
export class BatchLeaf {
  readonly recordId: Bytes;
  readonly scopeId: Bytes;
  readonly commitment: Bytes;
  #hash: Bytes | null = null;

  constructor(recordId: Uint8Array, scopeId: Uint8Array, commitment: Uint8Array) {
    this.recordId = word("record_id", recordId);
    this.scopeId = word("scope_id", scopeId);
    this.commitment = word("commitment", commitment);
    if (!this.recordId.some((b) => b !== 0)) throw new InputError("record_id", "must not be zero");
  }

  /** abi.encode(recordId, scopeId, commitment). */
  encoded(): Bytes {
    return concatBytes(this.recordId, this.scopeId, this.commitment);
  }

  /** The Merkle leaf (double keccak of the encoding). */
  get hash(): Bytes {
    this.#hash ??= leafHash(this.encoded());
    return this.#hash;
  }
}

/** True when `leaf` is in the batch of `root` by `proof` (MerkleProof.verify). */
export function proofLeadsTo(root: Uint8Array, leaf: BatchLeaf, proof: readonly Uint8Array[]): boolean {
  return equal(processProof(proof, leaf.hash), root);
}

/** A proof as stored: its sibling words concatenated. */
export function packProof(proof: readonly Uint8Array[]): Bytes {
  return concatBytes(...proof);
}

/** The sibling words of a packed proof (InputError when it is not whole words). */
export function unpackProof(packed: Uint8Array): Bytes[] {
  if (packed.length % 32) throw new InputError("proof", "must be a whole number of 32-byte words");
  const out: Bytes[] = [];
  for (let i = 0; i < packed.length; i += 32) out.push(Uint8Array.from(packed.subarray(i, i + 32)) as Bytes);
  return out;
}

/** A batch's leaves in order, their tree and root. */
export class BatchManifest {
  readonly leaves: readonly BatchLeaf[];
  readonly #levels: Bytes[][];
  readonly #positions: Map<string, number>;

  private constructor(leaves: readonly BatchLeaf[], levels: Bytes[][], positions: Map<string, number>) {
    this.leaves = leaves;
    this.#levels = levels;
    this.#positions = positions;
  }

  /** The manifest of `leaves` (InputError naming the leaf for an empty or too large batch or a
   * record id given twice). */
  static of(leaves: Iterable<BatchLeaf>): BatchManifest {
    const ordered = [...leaves];
    if (!ordered.length) throw new InputError("leaves", "a batch needs at least one record");
    if (ordered.length > MAX_BATCH_RECORDS) {
      throw new InputError("leaves", `a batch holds at most ${MAX_BATCH_RECORDS} records, got ${ordered.length}`);
    }
    const positions = new Map<string, number>();
    ordered.forEach((leaf, index) => {
      const key = bytesToHex0x(leaf.recordId);
      const before = positions.get(key);
      if (before !== undefined) {
        throw new InputError(`leaves[${index}].record_id`, `${key} is in the batch already (leaves[${before}])`);
      }
      positions.set(key, index);
    });
    return new BatchManifest(ordered, buildLevels(ordered.map((leaf) => leaf.hash)), positions);
  }

  get root(): Bytes {
    return rootOf(this.#levels);
  }

  get count(): number {
    return this.leaves.length;
  }

  /** The position of `recordId` (InputError when it is not in the batch). */
  indexOf(recordId: Uint8Array): number {
    const found = this.#positions.get(bytesToHex0x(recordId));
    if (found === undefined) {
      throw new InputError("record_id", `${bytesToHex0x(recordId)} is not in the batch ${bytesToHex0x(this.root)}`);
    }
    return found;
  }

  /** The proof of the leaf at `index`. */
  proof(index: number): Bytes[] {
    return proofOf(this.#levels, index);
  }

  /** The manifest's bytes (see the head of this file). */
  encode(): Bytes {
    const out = new Uint8Array(HEADER_SIZE + this.count * LEAF_SIZE);
    out.set(MANIFEST_MAGIC, 0);
    new DataView(out.buffer).setUint32(MANIFEST_MAGIC.length, this.count);
    this.leaves.forEach((leaf, i) => {
      const at = HEADER_SIZE + i * LEAF_SIZE;
      out.set(leaf.recordId, at);
      out.set(leaf.scopeId, at + 32);
      out.set(leaf.commitment, at + 64);
    });
    return out;
  }

  /** A manifest from its bytes; with `root`, it must be that batch's (InputError naming
   * `manifest` otherwise, or for any malformed byte). */
  static decode(data: Uint8Array, root?: Uint8Array): BatchManifest {
    if (data.length < MANIFEST_MAGIC.length || !equal(data.subarray(0, MANIFEST_MAGIC.length), MANIFEST_MAGIC)) {
      throw new InputError("manifest", "is not a Kizuna batch manifest (bad magic)");
    }
    if (data.length < HEADER_SIZE) throw new InputError("manifest", "is truncated");
    const count = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(MANIFEST_MAGIC.length);
    if (count < 1 || count > MAX_BATCH_RECORDS) {
      throw new InputError("manifest", `declares ${count} records (1 to ${MAX_BATCH_RECORDS} allowed)`);
    }
    if (data.length !== HEADER_SIZE + count * LEAF_SIZE) {
      throw new InputError("manifest", `declares ${count} records but holds ${data.length - HEADER_SIZE} bytes of leaves, not ${count * LEAF_SIZE}`);
    }
    const leaves: BatchLeaf[] = [];
    for (let i = 0; i < count; i++) {
      const at = HEADER_SIZE + i * LEAF_SIZE;
      leaves.push(new BatchLeaf(data.subarray(at, at + 32), data.subarray(at + 32, at + 64), data.subarray(at + 64, at + 96)));
    }
    const manifest = BatchManifest.of(leaves);
    if (root !== undefined && !equal(manifest.root, root)) {
      throw new InputError("manifest", `its leaves lead to root ${bytesToHex0x(manifest.root)}, not ${bytesToHex0x(root)}`);
    }
    return manifest;
  }
}
