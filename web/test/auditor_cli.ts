// The Node side of tests/web/test_auditor_parity.py: reads {trees: [[leaf hex…]…], receipts:
// [{request_json, signature, served_at, head_block}…]} on stdin and answers, using only
// web/src/core/merkle.ts and receipts.ts, each tree's root, every leaf's proof and whether it
// verifies, and each receipt's recomputed leaf. Hex with 0x everywhere.
import { bytesToHex0x, hexToBytes } from "../src/core/bytes.ts";
import { buildLevels, processProof, proofOf, rootOf } from "../src/core/merkle.ts";
import { receiptLeaf, signedRequest } from "../src/auditor/receipts.ts";

type Input = { trees: string[][]; receipts: { request_json: string; signature: string; served_at: number; head_block: number }[] };

const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Input;

const trees = input.trees.map((hexLeaves) => {
  const leaves = hexLeaves.map((h) => hexToBytes(h, "leaf"));
  const levels = buildLevels(leaves);
  const root = rootOf(levels);
  const proofs = leaves.map((_, i) => proofOf(levels, i));
  return {
    root: bytesToHex0x(root),
    proofs: proofs.map((p) => p.map(bytesToHex0x)),
    verified: proofs.map((p, i) => bytesToHex0x(processProof(p, leaves[i]!)) === bytesToHex0x(root)),
  };
});
const leaves = input.receipts.map((r) => {
  const signed = signedRequest(r.request_json);
  if (typeof signed === "string") return { error: signed };
  return { leaf: bytesToHex0x(receiptLeaf(signed, hexToBytes(r.signature, "signature"), r.served_at, r.head_block)) };
});
process.stdout.write(JSON.stringify({ trees, leaves }));
