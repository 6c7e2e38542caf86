// The auditor's verification, run in the page over the service's receipts and the chain's
// events (docs/audit.md "What is verified", checks 1 and 2): each receipt's leaf recomputed
// from what the provider signed, its Merkle proof folded up to a root that must be the one
// anchored on-chain (the root is the chain's, never the service's), each batch's anchored count,
// and each read allowed at its head block by a live grant or open emergency access replayed
// from the consent events. The service is relied on only for the receipts and their proofs —
// which is what is being checked.

import { recoverTypedDataAddress, type Hex } from "viem";
import { bytesToHex0x, equalBytes, hexToBytes } from "../core/bytes.ts";
import { readRequestTypedData } from "../provider/reads.ts";
import type { Anchor, ConsentHistory } from "./history.ts";
import { processProof } from "../core/merkle.ts";
import { receiptLeaf, signedRequest, type ServiceReceipt, type SignedRequest } from "./receipts.ts";

/** One failed check: which, of what (a request id or a root), why, and the evidence. */
export type Finding = { check: string; subject: string; reason: string; evidence: Record<string, string> };

export type Verification = {
  checked: number;
  passed: number;
  pending: number;
  proofsChecked: number;
  byGrant: number;
  byEmergency: number;
  batches: number;
  findings: Finding[];
};

export type Progress = { done: number; total: number };

/** The read requests' EIP-712 domain: the chain and its AccessLog. */
export type ProxyDomain = { chainId: number; accessLog: string };

/** Why the provider's EIP-712 signature of `request` does not hold, or null when it does. */
export async function signatureProblem(request: SignedRequest, signature: string, domain: ProxyDomain): Promise<string | null> {
  try {
    const typed = readRequestTypedData({
      provider: request.provider as Hex, patient: request.patient as Hex, recordId: bytesToHex0x(request.recordId),
      requestId: bytesToHex0x(request.requestId), issuedAt: request.issuedAt,
    }, domain);
    // The domain's own type is implied (viem derives EIP712Domain from the domain's fields).
    const signer = await recoverTypedDataAddress({
      domain: typed.domain, types: { ReadRequest: typed.types.ReadRequest }, primaryType: "ReadRequest",
      message: { ...typed.message, issuedAt: BigInt(request.issuedAt) }, signature: signature as Hex,
    });
    return signer.toLowerCase() === request.provider.toLowerCase() ? null : `signed by ${signer}, not by the provider ${request.provider}`;
  } catch {
    return "the signature recovers to no key";
  }
}

const YIELD_EVERY = 100;

/** The anchors that are the service's, the rule of kizuna/services/audit/receipts.py
 * `_own_anchors`: each anchorer (the service, each threshold proxy node) keeps its own batches
 * in AccessLog, so only these count — every root the service's receipts claim, whoever anchored
 * it (two nodes' identical batches make one root), and every root its anchorer anchored.
 * `anchorer` is the service's anchorer address (GET /version); null takes the anchorers of the
 * claimed roots. */
export function ownAnchors(history: ConsentHistory, claimed: ReadonlySet<string>, anchorer: string | null): Map<string, Anchor> {
  const mine = anchorer !== null ? new Set([anchorer.toLowerCase()])
    : new Set([...claimed].flatMap((root) => { const a = history.anchors.get(root); return a ? [a.anchoredBy] : []; }));
  return new Map([...history.anchors].filter(([root, a]) => claimed.has(root) || mine.has(a.anchoredBy)));
}

/** Check every receipt; `onProgress` after each (the page yields to redraw every 100). */
export async function verifyReceipts(
  receipts: readonly ServiceReceipt[],
  history: ConsentHistory,
  blockTimes: ReadonlyMap<number, number>,
  headBlock: number,
  onProgress: (p: Progress) => void = () => {},
  domain: ProxyDomain | null = null,
  anchorer: string | null = null,
): Promise<Verification> {
  const out: Verification = { checked: 0, passed: 0, pending: 0, proofsChecked: 0, byGrant: 0, byEmergency: 0, batches: 0, findings: [] };
  const claimed = new Map<string, number>();
  const anchors = ownAnchors(history, new Set(receipts.flatMap((r) => (r.batch_root ? [r.batch_root.toLowerCase()] : []))), anchorer);
  const lastAnchoredTo = Math.max(0, ...[...anchors.values()].map((a) => a.toTime));
  const lastAnchoredSeq = Math.max(0, ...receipts.filter((r) => r.batch_root).map((r) => r.seq));
  for (const [i, r] of receipts.entries()) {
    let problems = checkOne(r, history, blockTimes, headBlock, out, lastAnchoredTo, lastAnchoredSeq);
    const signed = domain ? signedRequest(r.request_json) : null;
    const bad = signed && typeof signed !== "string" ? await signatureProblem(signed, r.signature, domain!) : null;
    if (bad) {
      const finding = { check: "receipt.signature", subject: r.request_id, reason: bad, evidence: { "receipt seq": String(r.seq), signature: r.signature } };
      problems = problems === "pending" ? [finding] : [...problems, finding];
    }
    if (r.batch_root) claimed.set(r.batch_root.toLowerCase(), (claimed.get(r.batch_root.toLowerCase()) ?? 0) + 1);
    out.checked++;
    if (problems === "pending") out.pending++;
    else if (problems.length === 0) out.passed++;
    else out.findings.push(...problems);
    if ((i + 1) % YIELD_EVERY === 0) {
      onProgress({ done: i + 1, total: receipts.length });
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
  for (const [root, anchor] of anchors) {
    const count = claimed.get(root) ?? 0;
    if (count !== anchor.count) {
      out.findings.push({
        check: count === 0 ? "batch.missing" : "batch.count", subject: root,
        reason: `anchored on-chain with ${anchor.count} receipts but the service has ${count} (receipts ${count < anchor.count ? "dropped" : "added"})`,
        evidence: { "anchored in block": String(anchor.blockNumber), "anchoring transaction": anchor.txHash, "batch index": String(anchor.batchIndex) },
      });
    }
  }
  out.batches = claimed.size;
  onProgress({ done: receipts.length, total: receipts.length });
  return out;
}

function checkOne(
  r: ServiceReceipt, history: ConsentHistory, blockTimes: ReadonlyMap<number, number>, headBlock: number,
  out: Verification, lastAnchoredTo: number, lastAnchoredSeq: number,
): Finding[] | "pending" {
  const findings: Finding[] = [];
  const fail = (check: string, reason: string, evidence: Record<string, string> = {}) =>
    findings.push({ check, subject: r.request_id, reason, evidence: { "receipt seq": String(r.seq), ...evidence } });
  const signed = signedRequest(r.request_json);
  if (typeof signed === "string") {
    fail("receipt.request", signed, { "request_json": r.request_json.slice(0, 200) });
    return findings;
  }
  const columns: string[] = [];
  if (signed.provider.toLowerCase() !== r.provider.toLowerCase()) columns.push(`provider column ${r.provider} ≠ signed ${signed.provider}`);
  if (signed.patient.toLowerCase() !== r.patient.toLowerCase()) columns.push(`patient column ${r.patient} ≠ signed ${signed.patient}`);
  if (bytesToHex0x(signed.recordId) !== r.record_id.toLowerCase()) columns.push("record_id column differs from the signed recordId");
  if (bytesToHex0x(signed.requestId) !== r.request_id.toLowerCase()) columns.push("request_id column differs from the signed requestId");
  if (columns.length) fail("receipt.fields", columns.join("; "));

  let leaf: Uint8Array;
  try {
    leaf = receiptLeaf(signed, hexToBytes(r.signature, "signature"), r.served_at, r.head_block);
  } catch (error) {
    fail("receipt.leaf", `the receipt's fields cannot be encoded (${String(error)})`);
    return findings;
  }
  const stored = hexToBytes(r.leaf, "leaf");
  if (!equalBytes(leaf, stored)) {
    fail("receipt.leaf", "the stored leaf is not the hash of the stored receipt fields (receipt altered)", {
      "recomputed leaf": bytesToHex0x(leaf), "stored leaf": r.leaf, "served at": String(r.served_at), "head block": String(r.head_block),
    });
  }

  if (!r.batch_root) {
    if (r.seq > lastAnchoredSeq && r.served_at >= lastAnchoredTo) return findings.length ? findings : "pending";
    fail("receipt.unanchored", `not in any batch although served at ${r.served_at}, before receipts that are anchored`);
  } else {
    const anchor = history.anchors.get(r.batch_root.toLowerCase());
    if (!anchor) {
      fail("batch.not_anchored", "no ReceiptRootAnchored event on-chain for the root this receipt claims", { "claimed root": r.batch_root });
    } else if (r.proof.length === 0 && anchor.count > 1) {
      fail("receipt.proof", "the service gave no Merkle proof for this receipt (its batch's leaf indices are not 0..n-1)", { "anchored root": anchor.root });
    } else {
      out.proofsChecked++;
      const reached = bytesToHex0x(processProof(r.proof.map((p) => hexToBytes(p, "proof")), leaf));
      if (reached !== anchor.root) {
        fail("receipt.proof", "the Merkle proof from the recomputed leaf does not lead to the root anchored on-chain", {
          "proof leads to": reached, "anchored root": anchor.root, "anchored in block": String(anchor.blockNumber),
          "anchoring transaction": anchor.txHash, "leaf index": String(r.leaf_index),
        });
      }
    }
  }

  if (r.head_block > headBlock) {
    fail("access.head_block", `head block ${r.head_block} is beyond the chain head ${headBlock}`);
  } else {
    const now = blockTimes.get(r.head_block);
    if (now === undefined) {
      fail("access.head_block", `the time of head block ${r.head_block} could not be read`);
    } else {
      const decision = history.accessAt(r.patient, r.provider, r.scope_id, r.head_block, now);
      if (!decision.allowed) {
        fail("access.no_grant", `no live grant or open emergency access at head block ${r.head_block}: ${decision.reason}`, {
          patient: r.patient, provider: r.provider, scope: r.scope_id, "head block time": String(now),
        });
      } else if (decision.via === "grant") out.byGrant++;
      else out.byEmergency++;
    }
  }
  return findings;
}
