// The ledger's liveness rule as the page replays it (core/consent.ts), once: the provider's
// grant states (provider/grants.ts) and the auditor's hasAccess at a block (auditor/history.ts)
// both answer from it. The Python side of the same rule is tests/chain/test_liveness.py.

import assert from "node:assert/strict";
import { test } from "node:test";
import { ConsentLedgerHistory, type ConsentEvent } from "../src/core/consent.ts";

const PATIENT = "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65";
const PROVIDER = "0x976ea74026e726554db657fa54763abd0c3a0aa9";
const OTHER_PROVIDER = "0x9965507d1a55bcc2695c58ba16fb37d819b0a4dc";
const S1 = "0x" + "11".repeat(32);
const S2 = "0x" + "22".repeat(32);

let logIndex = 0;
/** An event of the pair (PATIENT, PROVIDER) in `block`, whose time is block * 10. */
const ev = (kind: ConsentEvent["kind"], block: number, extra: Partial<ConsentEvent> = {}): ConsentEvent => ({
  kind, patient: PATIENT, provider: PROVIDER, scopeIds: [], block, logIndex: logIndex++, time: block * 10, txHash: `0x${block}`, ...extra,
});
const live = (h: ConsentLedgerHistory, scope: string, block: number, time = block * 10) => h.grantAt(PATIENT, PROVIDER, scope, block, time).live;

test("revokeAll wins inside its block, whatever the order of the transactions", () => {
  const grantFirst = new ConsentLedgerHistory([ev("granted", 5, { scopeIds: [S1], expiresAt: 1e9 }), ev("revoked-all", 5)]);
  const revokeFirst = new ConsentLedgerHistory([ev("revoked-all", 5), ev("granted", 5, { scopeIds: [S1], expiresAt: 1e9 })]);
  for (const h of [grantFirst, revokeFirst]) {
    assert.equal(live(h, S1, 4), false);
    assert.equal(live(h, S1, 5), false);
    assert.equal(live(h, S1, 50), false);
    assert.deepEqual(h.latestGrants(100).map((g) => g.end), [{ kind: "revoked-all", block: 5, time: 50 }]);
  }
  // A grant of a later block is live again; a revokeAll ends only its own pair.
  const later = new ConsentLedgerHistory([
    ev("revoked-all", 5), ev("granted", 6, { scopeIds: [S1], expiresAt: 1e9 }),
    ev("granted", 2, { provider: OTHER_PROVIDER, scopeIds: [S1], expiresAt: 1e9 }),
  ]);
  assert.equal(live(later, S1, 6), true);
  assert.equal(later.grantAt(PATIENT, OTHER_PROVIDER, S1, 6, 60).live, true);
});

test("a re-grant after a revocation is the stored grant; events in any order", () => {
  const events = [
    ev("granted", 1, { scopeIds: [S1, S2], expiresAt: 1e9 }),
    ev("revoked", 3, { scopeIds: [S1] }),
    ev("granted", 7, { scopeIds: [S1], expiresAt: 2e9 }),
  ];
  const h = new ConsentLedgerHistory([...events].reverse());
  assert.deepEqual([live(h, S1, 2), live(h, S1, 3), live(h, S1, 6), live(h, S1, 7), live(h, S2, 7)], [true, false, false, true, true]);
  assert.equal(h.grantAt(PATIENT, PROVIDER, S1, 4, 40).revokedBy?.block, 3);
  assert.equal(h.grantAt(PATIENT, PROVIDER, S1, 7, 70).grant?.expiresAt, 2e9);
  // Addresses and ids of any case name the same triple.
  assert.equal(h.grantAt(PATIENT.toUpperCase().replace("0X", "0x"), PROVIDER, S1.toUpperCase().replace("0X", "0x"), 7, 70).live, true);
  const latest = h.latestGrants(100);
  assert.deepEqual(latest.map((g) => [g.grant.scopeId, g.grant.block, g.end]), [[S1, 7, null], [S2, 1, null]]);
});

test("expiry: not live from expiresAt on; an expiry before a revocation ended the grant first", () => {
  const h = new ConsentLedgerHistory([ev("granted", 1, { scopeIds: [S1], expiresAt: 35 }), ev("revoked", 5, { scopeIds: [S1] })]);
  assert.equal(h.grantAt(PATIENT, PROVIDER, S1, 3, 34).live, true);
  assert.equal(h.grantAt(PATIENT, PROVIDER, S1, 3, 35).live, false);
  assert.deepEqual(h.latestGrants(100)[0]?.end, { kind: "expired", block: null, time: 35 });
  // Revoked while still live: it ended by the revocation; unrevoked, by its expiry at `now`.
  const revoked = new ConsentLedgerHistory([ev("granted", 1, { scopeIds: [S1], expiresAt: 1000 }), ev("revoked", 5, { scopeIds: [S1] })]);
  assert.deepEqual(revoked.latestGrants(100)[0]?.end, { kind: "revoked", block: 5, time: 50 });
  const expiring = new ConsentLedgerHistory([ev("granted", 1, { scopeIds: [S1], expiresAt: 1000 })]);
  assert.equal(expiring.latestGrants(999)[0]?.end, null);
  assert.deepEqual(expiring.latestGrants(1000)[0]?.end, { kind: "expired", block: null, time: 1000 });
});

test("access: a live grant or an emergency access open later than the block's time, and why not", () => {
  const h = new ConsentLedgerHistory([
    ev("emergency-opened", 5, { until: 1000 }),
    ev("emergency-closed", 8),
    ev("emergency-opened", 12, { until: 2000 }),
    ev("revoked-all", 14),
    ev("granted", 20, { scopeIds: [S1], expiresAt: 5000 }),
    ev("revoked", 30, { scopeIds: [S1] }),
  ]);
  const at = (block: number, time: number) => h.accessAt(PATIENT, PROVIDER, S1, block, time);
  assert.deepEqual([at(6, 900).via, at(6, 1000).allowed, at(9, 900).allowed, at(13, 900).via, at(14, 900).allowed], ["emergency", false, false, "emergency", false]);
  assert.equal(at(4, 10).reason, "no grant was ever made for this scope");
  assert.equal(at(20, 200).via, "grant");
  assert.equal(at(20, 200).reason, "grant of block 20 (tx 0x20) live until 5000");
  assert.equal(at(25, 5000).reason, "grant of block 20 expired at 5000 (block time 5000)");
  assert.equal(at(30, 300).reason, "grant revoked in block 30 (tx 0x30)");
  const ended = new ConsentLedgerHistory([ev("granted", 3, { scopeIds: [S2], expiresAt: 5000 }), ev("revoked-all", 4)]);
  assert.equal(ended.accessAt(PATIENT, PROVIDER, S2, 4, 40).reason, "grant of block 3 was ended by revokeAll in block 4");
});
