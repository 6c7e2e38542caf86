// The auditor page's pure parts: the consent replay (history.ts, the rule of
// kizuna/services/audit/history.py), the verification over receipts made here (verify.ts), and
// the log explorer's filters, links and series (log.ts). The chain and API paths run in the
// browser test tests/web/test_web_auditor.py against a real stack; the Merkle rule's parity with
// Python is tests/web/test_auditor_parity.py.

import assert from "node:assert/strict";
import { test } from "node:test";
import { bytesToHex0x } from "../src/core/bytes.ts";
import { ConsentHistory, type ChainEvent } from "../src/auditor/history.ts";
import {
  anchoringLag, EMPTY_FILTER, eventFilter, filterEntries, filterFromHash, filterProblems, grantsAndRevocations,
  hashFor, type LogEntry,
} from "../src/auditor/log.ts";
import { buildLevels, proofOf, rootOf } from "../src/core/merkle.ts";
import { receiptLeaf, signedRequest, type ServiceReceipt } from "../src/auditor/receipts.ts";
import { verifyReceipts } from "../src/auditor/verify.ts";
import { readRequestTypedData } from "../src/provider/reads.ts";
import { privateKeyToAccount } from "viem/accounts";
import type { Hex } from "viem";

const PATIENT = "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65";
const PROVIDER = "0x976ea74026e726554db657fa54763abd0c3a0aa9";
const SCOPE = "0x" + "ab".repeat(32);
const OTHER_SCOPE = "0x" + "cd".repeat(32);

let logIndex = 0;
function event(name: string, blockNumber: number, args: Record<string, unknown>): ChainEvent {
  return { name, blockNumber, logIndex: logIndex++, txHash: "0x" + blockNumber.toString(16).padStart(64, "0"), args };
}
const pair = { patient: PATIENT, provider: PROVIDER };

test("a grant is live until it expires, is revoked, or a revokeAll in its block or later ends it", () => {
  const history = new ConsentHistory([
    event("AccessGranted", 10, { ...pair, scopeId: SCOPE, expiresAt: 5000 }),
    event("AccessRevoked", 20, { ...pair, scopeId: SCOPE }),
    event("AccessGrantedBatch", 30, { ...pair, scopeIds: [SCOPE, OTHER_SCOPE], expiresAt: 9000 }),
    event("AllAccessRevoked", 30, pair), // same block: revokeAll wins
    event("AccessGranted", 40, { ...pair, scopeId: SCOPE, expiresAt: 9000 }),
  ]);
  assert.equal(history.accessAt(PATIENT, PROVIDER, SCOPE, 9, 100).reason, "no grant was ever made for this scope");
  assert.equal(history.accessAt(PATIENT, PROVIDER, SCOPE, 10, 100).via, "grant");
  assert.match(history.accessAt(PATIENT, PROVIDER, SCOPE, 15, 5000).reason, /expired at 5000/);
  assert.match(history.accessAt(PATIENT, PROVIDER, SCOPE, 25, 100).reason, /revoked in block 20/);
  assert.match(history.accessAt(PATIENT, PROVIDER, OTHER_SCOPE, 35, 100).reason, /ended by revokeAll in block 30/);
  assert.equal(history.accessAt(PATIENT.toUpperCase().replace("0X", "0x"), PROVIDER, SCOPE, 40, 100).allowed, true);
});

test("an emergency access allows reads until it ends, is closed or a revokeAll closes it", () => {
  const history = new ConsentHistory([
    event("EmergencyAccessOpened", 5, { ...pair, until: 1000, reasonCode: 1, flaggedForReview: true }),
    event("EmergencyAccessClosed", 8, { ...pair, closedBy: PATIENT, flaggedForReview: true }),
    event("EmergencyAccessOpened", 12, { ...pair, until: 2000, reasonCode: 1, flaggedForReview: true }),
    event("AllAccessRevoked", 14, pair),
  ]);
  assert.equal(history.accessAt(PATIENT, PROVIDER, SCOPE, 6, 900).via, "emergency");
  assert.equal(history.accessAt(PATIENT, PROVIDER, SCOPE, 6, 1000).allowed, false);
  assert.equal(history.accessAt(PATIENT, PROVIDER, SCOPE, 9, 900).allowed, false);
  assert.equal(history.accessAt(PATIENT, PROVIDER, SCOPE, 13, 900).via, "emergency");
  assert.equal(history.accessAt(PATIENT, PROVIDER, SCOPE, 14, 900).allowed, false);
});

function receipts(count: number, headBlock: number): ServiceReceipt[] {
  const made = Array.from({ length: count }, (_, i) => {
    const recordId = "0x" + (i + 1).toString(16).padStart(64, "0");
    const requestId = "0x" + (i + 1000).toString(16).padStart(64, "0");
    const requestJson = JSON.stringify({ provider: PROVIDER, patient: PATIENT, recordId, requestId, issuedAt: 1000 + i });
    const signature = "0x" + "11".repeat(65);
    const signed = signedRequest(requestJson);
    assert.ok(typeof signed !== "string");
    const leaf = bytesToHex0x(receiptLeaf(signed, new Uint8Array(65).fill(0x11), 1001 + i, headBlock));
    return {
      seq: i + 1, request_id: requestId, provider: PROVIDER, patient: PATIENT, record_id: recordId, scope_id: SCOPE,
      request_json: requestJson, signature, leaf, served_at: 1001 + i, head_block: headBlock, batch_root: null as string | null,
      leaf_index: i as number | null, proof: [] as string[],
    };
  });
  const levels = buildLevels(made.map((r) => Uint8Array.from(Buffer.from(r.leaf.slice(2), "hex"))));
  const root = bytesToHex0x(rootOf(levels));
  return made.map((r, i) => ({ ...r, batch_root: root, proof: proofOf(levels, i).map(bytesToHex0x) }));
}

function chainFor(rs: ServiceReceipt[], anchoredCount = rs.length): ConsentHistory {
  return new ConsentHistory([
    event("AccessGranted", 3, { ...pair, scopeId: SCOPE, expiresAt: 1_000_000 }),
    event("ReceiptRootAnchored", 9, { batchIndex: 0, root: rs[0]!.batch_root, anchoredBy: PROVIDER, count: anchoredCount, fromTime: 1000, toTime: 2000 }),
  ]);
}

test("every honest receipt of an odd-sized batch verifies, with progress", async () => {
  const rs = receipts(7, 5);
  const seen: number[] = [];
  const result = await verifyReceipts(rs, chainFor(rs), new Map([[5, 1000]]), 9, (p) => seen.push(p.done));
  assert.deepEqual(result.findings, []);
  assert.equal(result.passed, 7);
  assert.equal(result.proofsChecked, 7);
  assert.equal(result.byGrant, 7);
  assert.equal(seen.at(-1), 7);
});

test("a receipt altered in the database is flagged with its evidence, the others pass", async () => {
  const rs = receipts(5, 5);
  rs[2] = { ...rs[2]!, served_at: rs[2]!.served_at + 60 };
  const result = await verifyReceipts(rs, chainFor(rs), new Map([[5, 1000]]), 9);
  assert.equal(result.passed, 4);
  const checks = result.findings.map((f) => f.check).sort();
  assert.deepEqual(checks, ["receipt.leaf", "receipt.proof"]);
  const proof = result.findings.find((f) => f.check === "receipt.proof")!;
  assert.equal(proof.subject, rs[2]!.request_id);
  assert.equal(proof.evidence["anchored root"], rs[0]!.batch_root);
  assert.notEqual(proof.evidence["proof leads to"], rs[0]!.batch_root);
});

test("reads without a grant, unanchored roots and dropped receipts are findings", async () => {
  const rs = receipts(3, 2); // decided at block 2: before the grant of block 3
  const result = await verifyReceipts(rs, chainFor(rs, 4), new Map([[2, 900]]), 9);
  assert.equal(result.findings.filter((f) => f.check === "access.no_grant").length, 3);
  assert.match(result.findings.find((f) => f.check === "access.no_grant")!.reason, /no grant was ever made/);
  assert.match(result.findings.find((f) => f.check === "batch.count")!.reason, /4 receipts but the service has 3 \(receipts dropped\)/);
  const foreign = await verifyReceipts(rs, new ConsentHistory([]), new Map([[2, 900]]), 9);
  assert.equal(foreign.findings.filter((f) => f.check === "batch.not_anchored").length, 3);
});

test("the provider's EIP-712 signature is checked when the domain is given", async () => {
  const provider = privateKeyToAccount(("0x" + "42".repeat(32)) as Hex);
  const stranger = privateKeyToAccount(("0x" + "43".repeat(32)) as Hex);
  const domain = { chainId: 31337, accessLog: "0x5FbDB2315678afecb367f032d93F642f64180aa3" };
  const made: ServiceReceipt[] = [];
  for (const [i, signer] of [provider, stranger].entries()) {
    const request = { provider: provider.address, patient: PATIENT as Hex, recordId: ("0x" + "0".repeat(63) + (i + 1)) as Hex,
      requestId: ("0x" + "9".repeat(63) + i) as Hex, issuedAt: 1000 };
    const typed = readRequestTypedData(request, domain);
    const signature = await signer.signTypedData({ domain: typed.domain, types: { ReadRequest: typed.types.ReadRequest },
      primaryType: "ReadRequest", message: { ...request, issuedAt: 1000n } });
    const requestJson = JSON.stringify(request);
    const signed = signedRequest(requestJson);
    assert.ok(typeof signed !== "string");
    made.push({ seq: i + 1, request_id: request.requestId, provider: provider.address, patient: PATIENT, record_id: request.recordId,
      scope_id: SCOPE, request_json: requestJson, signature, served_at: 1001, head_block: 5, batch_root: null, leaf_index: null, proof: [],
      leaf: bytesToHex0x(receiptLeaf(signed, Uint8Array.from(Buffer.from(signature.slice(2), "hex")), 1001, 5)) });
  }
  const history = new ConsentHistory([event("AccessGranted", 3, { patient: PATIENT, provider: provider.address, scopeId: SCOPE, expiresAt: 1e9 })]);
  const result = await verifyReceipts(made, history, new Map([[5, 1000]]), 9, () => {}, domain);
  assert.equal(result.pending, 1);
  assert.deepEqual(result.findings.map((f) => [f.check, f.subject]), [["receipt.signature", made[1]!.request_id]]);
  assert.match(result.findings[0]!.reason, new RegExp(`signed by ${stranger.address}, not by the provider`));
});

function entry(kind: string, time: number, extra: Partial<LogEntry> = {}): LogEntry {
  return {
    kind, event: kind, block_number: 1, log_index: 0, tx_hash: "0x" + "aa".repeat(32), time, patient: PATIENT, provider: PROVIDER,
    scope_ids: [], record_id: null, flags: [], expires_at: null, actor: null, details: {}, ...extra,
  };
}

test("filters round-trip through the hash route's query and select entries", () => {
  const filter = { ...EMPTY_FILTER, patient: PATIENT, kind: "access-granted", from: "2026-01-02" };
  const hash = hashFor("audit", filter);
  assert.equal(hash, `#/audit?patient=${PATIENT}&kind=access-granted&from=2026-01-02`);
  assert.deepEqual(filterFromHash(hash), filter);
  const day = Date.parse("2026-01-02T00:00:00Z") / 1000;
  const entries = [entry("access-granted", day - 1), entry("access-granted", day), entry("access-revoked", day + 5),
    entry("access-granted", day + 10, { patient: PROVIDER })];
  assert.deepEqual(filterEntries(entries, filter).map((e) => e.time), [day]);
  assert.deepEqual(filterEntries(entries, { ...EMPTY_FILTER, to: "2026-01-01" }).map((e) => e.time), [day - 1]);
  const one = eventFilter({ ...entries[2]!, log_index: 3 });
  assert.equal(hashFor("audit", one), `#/audit?tx=0x${"aa".repeat(32)}&log=3`);
  assert.deepEqual(filterProblems({ ...EMPTY_FILTER, patient: "0x12", from: "yesterday" }), {
    patient: "not an Ethereum address (0x and 40 hex digits)", from: "not a date (YYYY-MM-DD)",
  });
  assert.deepEqual(filterProblems({ ...EMPTY_FILTER, from: "2026-02-01", to: "2026-01-01" }), { to: "before the start of the period" });
});

test("charts count per day; the anchoring lag pairs a batch's first read with its anchor", () => {
  const root = "0x" + "cc".repeat(32);
  const entries = [
    entry("access-granted", 86_400 + 5), entry("access-granted", 86_400 + 50), entry("all-access-revoked", 2 * 86_400),
    entry("read", 1000, { details: { batchRoot: root } }), entry("read", 1010, { details: { batchRoot: root } }),
    entry("receipt-root-anchored", 1090, { details: { root } }),
  ];
  const consent = grantsAndRevocations(entries);
  assert.deepEqual(consent.lines.map((l) => l.points.map((p) => [p.t / 1000, p.v])), [[[86_400, 2]], [[2 * 86_400, 1]]]);
  assert.deepEqual(anchoringLag(entries).lines[0]!.points.map((p) => p.v), [90]);
});

test("only the service's own anchors count: a proxy node's batches are not its missing ones", async () => {
  const rs = receipts(3, 5);
  const NODE = "0x" + "77".repeat(20);
  const SERVICE = "0x" + "88".repeat(20);
  const node = (batchIndex: number, root: string) =>
    event("ReceiptRootAnchored", 9, { batchIndex, root, anchoredBy: NODE, count: 2, fromTime: 1000, toTime: 3000 });
  const history = new ConsentHistory([
    event("AccessGranted", 3, { ...pair, scopeId: SCOPE, expiresAt: 1_000_000 }),
    event("ReceiptRootAnchored", 9, { batchIndex: 0, root: rs[0]!.batch_root, anchoredBy: SERVICE, count: 3, fromTime: 1000, toTime: 2000 }),
    node(0, "0x" + "ee".repeat(32)),
  ]);
  for (const anchorer of [null, SERVICE]) {
    const result = await verifyReceipts(rs, history, new Map([[5, 1000]]), 9, () => {}, null, anchorer);
    assert.deepEqual(result.findings, [], `anchorer ${anchorer}`);
  }
  // The service's anchorer anchored a root no receipt claims: dropped, whoever is asked.
  const dropped = new ConsentHistory([
    event("AccessGranted", 3, { ...pair, scopeId: SCOPE, expiresAt: 1_000_000 }),
    event("ReceiptRootAnchored", 9, { batchIndex: 0, root: rs[0]!.batch_root, anchoredBy: SERVICE, count: 3, fromTime: 1000, toTime: 2000 }),
    event("ReceiptRootAnchored", 9, { batchIndex: 1, root: "0x" + "dd".repeat(32), anchoredBy: SERVICE, count: 2, fromTime: 2000, toTime: 2500 }),
    node(0, "0x" + "ee".repeat(32)),
  ]);
  for (const anchorer of [null, SERVICE]) {
    const result = await verifyReceipts(rs, dropped, new Map([[5, 1000]]), 9, () => {}, null, anchorer);
    assert.deepEqual(result.findings.map((f) => [f.check, f.subject]), [["batch.missing", "0x" + "dd".repeat(32)]]);
  }
  // A node's root claimed by the service counts (identical batches), yet the node's others do not.
  const shared = await verifyReceipts(rs, new ConsentHistory([
    event("AccessGranted", 3, { ...pair, scopeId: SCOPE, expiresAt: 1_000_000 }),
    event("ReceiptRootAnchored", 9, { batchIndex: 3, root: rs[0]!.batch_root, anchoredBy: NODE, count: 3, fromTime: 1000, toTime: 2000 }),
    node(4, "0x" + "ee".repeat(32)),
  ]), new Map([[5, 1000]]), 9, () => {}, null, SERVICE);
  assert.deepEqual(shared.findings, []);
});
