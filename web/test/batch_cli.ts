// The Node side of tests/web/test_batch_parity.py: reads {batches: [[{record_id, scope_id,
// commitment}…]…], manifests: [{data, root?}…]} on stdin and answers, using only
// web/src/core/batch.ts, each batch's root, manifest bytes, every leaf's proof (packed) and
// whether it leads to the root — or the error (field, reason) — and for each manifest decoded,
// its root and count or the error. Hex with 0x everywhere.
import { bytesToHex0x, hexToBytes } from "../src/core/bytes.ts";
import { BatchLeaf, BatchManifest, packProof, proofLeadsTo, unpackProof } from "../src/core/batch.ts";
import { InputError } from "../src/core/errors.ts";

type LeafIn = { record_id: string; scope_id: string; commitment: string };
type Input = { batches: LeafIn[][]; manifests: { data: string; root?: string }[] };

const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Input;

function refused(error: unknown): { error: { field: string; reason: string } } {
  if (error instanceof InputError) return { error: { field: error.field, reason: error.reason } };
  throw error;
}

const batches = input.batches.map((leaves) => {
  try {
    const manifest = BatchManifest.of(leaves.map((l) => new BatchLeaf(
      hexToBytes(l.record_id), hexToBytes(l.scope_id), hexToBytes(l.commitment))));
    const proofs = manifest.leaves.map((_, i) => packProof(manifest.proof(i)));
    return {
      root: bytesToHex0x(manifest.root),
      count: manifest.count,
      manifest: bytesToHex0x(manifest.encode()),
      proofs: proofs.map(bytesToHex0x),
      verified: manifest.leaves.map((leaf, i) => proofLeadsTo(manifest.root, leaf, unpackProof(proofs[i]!))),
      indexes: manifest.leaves.map((leaf) => manifest.indexOf(leaf.recordId)),
    };
  } catch (error) {
    return refused(error);
  }
});
const manifests = input.manifests.map((m) => {
  try {
    const manifest = BatchManifest.decode(hexToBytes(m.data), m.root === undefined ? undefined : hexToBytes(m.root));
    return { root: bytesToHex0x(manifest.root), count: manifest.count };
  } catch (error) {
    return refused(error);
  }
});
process.stdout.write(JSON.stringify({ batches, manifests }));
