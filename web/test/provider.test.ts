// The provider's pure parts (web/src/provider): the ReadRequest typed data (pinned to Python's
// digest, kizuna/receipts/request.py), opening a read's envelope from capsule fragments (real
// Umbral re-encryption, no service), and the fold of the chain's consent events into grant
// states and refusal explanations.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as umbral from "@nucypher/umbral-pre";
import { hashTypedData, recoverTypedDataAddress, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { bytesToHex0x, utf8Encode } from "../src/core/bytes.ts";
import { commitmentOf, encryptBytes, readHeader } from "../src/core/envelope.ts";
import { IntegrityError } from "../src/core/errors.ts";
import { grantOf, grantStates, refusalReason, type GrantEvent } from "../src/provider/grants.ts";
import { formatTime } from "../src/ui/format.ts";
import { openGrant, readRequestTypedData, type ReadGrant } from "../src/provider/reads.ts";
import { forViem } from "../src/core/eip712.ts";

const KEY: Hex = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
const PATIENT: Hex = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65";
const OTHER: Hex = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc";

test("the ReadRequest typed data hashes and signs as Python's ReadRequest", async () => {
  const account = privateKeyToAccount(KEY);
  const typed = readRequestTypedData({
    provider: account.address, patient: PATIENT,
    recordId: bytesToHex0x(Uint8Array.from({ length: 32 }, (_, i) => i)),
    requestId: bytesToHex0x(new Uint8Array(32).fill(7)), issuedAt: 1796595352,
  }, { chainId: 31337, accessLog: "0x5FbDB2315678afecb367f032d93F642f64180aa3" });
  const viemTyped = forViem(typed as never);
  // ReadRequest(...).digest(proxy_domain(chain_id=31337, access_log=...)) in Python:
  assert.equal(hashTypedData(viemTyped), "0x2846d030143cf9ce02859d27e1cf2008cd43eec643a7cc39ab888fc02eb84c6e");
  const signature = await account.signTypedData(viemTyped);
  assert.equal(signature, "0x72844dd294878ef97140308f78e4b53cd9c439d02215a64742889b6e6624140639450744e46ffd96f2ab5cbadef73ed48fcc46e5d759357620f1cac427f9da971c");
  assert.equal(await recoverTypedDataAddress({ ...viemTyped, signature } as never), account.address);
  // Another record id is another digest (what the receipt binds).
  const other = forViem(readRequestTypedData({ ...typed.message, recordId: bytesToHex0x(new Uint8Array(32)) }, { chainId: 31337, accessLog: "0x5FbDB2315678afecb367f032d93F642f64180aa3" }) as never);
  assert.notEqual(hashTypedData(other), hashTypedData(viemTyped));
});

/** A record sealed to a scope key, re-encrypted for `receiver` by a real kfrag: a ReadGrant. */
async function served(plaintext: Uint8Array, receiver: umbral.PublicKey) {
  const scope = umbral.SecretKey.random();
  const signing = umbral.SecretKey.random();
  const recordId = crypto.getRandomValues(new Uint8Array(32));
  const envelope = await encryptBytes(plaintext, { ownerKey: scope.publicKey(), recordId, contentType: "application/fhir+json", segmentSize: 64 });
  const [kfrag] = umbral.generateKFrags(scope, receiver, new umbral.Signer(signing), 1, 1, true, true);
  const header = await readHeader(envelope);
  const cfrag = umbral.reencrypt(header.capsule(), kfrag!);
  const grant = {
    record_id: bytesToHex0x(recordId), patient: PATIENT, scope_id: bytesToHex0x(new Uint8Array(32)), cid: "bafy", content_type: "application/fhir+json",
    size: envelope.length, capsule: bytesToHex0x(header.capsuleBytes), cfrags: [bytesToHex0x(cfrag.toBytes())],
    delegating_key: bytesToHex0x(scope.publicKey().toCompressedBytes()), verifying_key: bytesToHex0x(signing.publicKey().toCompressedBytes()),
    receipt_seq: 1, request_id: bytesToHex0x(new Uint8Array(32)), head_block: 1, served_at: 1, leaf: "0x", envelope_base64: null,
  } as ReadGrant;
  return { envelope, grant, commitment: await commitmentOf(envelope) };
}

test("a read opens with the provider's key from verified capsule fragments, against the commitment", async () => {
  const provider = umbral.SecretKey.random();
  const text = utf8Encode(JSON.stringify({ resourceType: "Observation", id: "x".repeat(300) }));
  const { envelope, grant, commitment } = await served(text, provider.publicKey());
  assert.deepEqual(await openGrant(grant, envelope, provider, commitment), text);
  // Another commitment (the chain registered another envelope): refused.
  await assert.rejects(openGrant(grant, envelope, provider, new Uint8Array(32)), IntegrityError);
  // Fragments made for another provider's key do not verify for this one.
  await assert.rejects(openGrant(grant, envelope, umbral.SecretKey.random(), commitment), /capsule fragment 1 does not verify/);
  // A fragment altered on the way: refused before any decryption.
  const bad = { ...grant, cfrags: [grant.cfrags[0]!.slice(0, -2) + (grant.cfrags[0]!.endsWith("00") ? "01" : "00")] };
  await assert.rejects(openGrant(bad, envelope, provider, commitment), IntegrityError);
  // The envelope of another record than the one read.
  await assert.rejects(openGrant({ ...grant, record_id: bytesToHex0x(new Uint8Array(32)) }, envelope, provider, commitment), /another record/);
});

const S1: Hex = `0x${"11".repeat(32)}`;
const S2: Hex = `0x${"22".repeat(32)}`;
const PROVIDER: Hex = "0x976EA74026E726554dB657fA54763abd0C3a0aa9";
const event = (e: Partial<GrantEvent> & Pick<GrantEvent, "kind" | "block">): GrantEvent => ({
  patient: PATIENT, provider: PROVIDER, scopeIds: [], logIndex: 0, time: e.block * 10, ...e,
});

test("grant states follow the ledger: revoke, revoke-all, re-grant, expiry", () => {
  const events = [
    event({ kind: "granted", block: 1, scopeIds: [S1, S2], expiresAt: 1000 }),
    event({ kind: "granted", block: 2, scopeIds: [S1], expiresAt: 50, patient: OTHER }),
    event({ kind: "revoked", block: 5, scopeIds: [S2] }),
  ];
  let states = grantStates(events, 100);
  assert.equal(grantOf(states, PATIENT, S1)?.state, "live");
  assert.deepEqual([grantOf(states, PATIENT, S2)?.state, grantOf(states, PATIENT, S2)?.endedBlock, grantOf(states, PATIENT, S2)?.endedAt], ["revoked", 5, 50]);
  assert.equal(grantOf(states, OTHER, S1)?.state, "expired"); // expiresAt 50 <= now 100
  assert.equal(grantOf(states, OTHER, S2), null);
  // revokeAll ends every grant of the pair made at or before its block; a later grant is live.
  states = grantStates([...events, event({ kind: "revoked-all", block: 7 }), event({ kind: "granted", block: 9, scopeIds: [S2], expiresAt: 2000 })].reverse(), 100);
  assert.equal(grantOf(states, PATIENT, S1)?.state, "revoked-all");
  assert.equal(grantOf(states, PATIENT, S2)?.state, "live");
  assert.equal(grantOf(states, OTHER, S1)?.state, "expired"); // another patient's pair
  // Expired before a revocation: it ended by expiry.
  states = grantStates([event({ kind: "granted", block: 1, scopeIds: [S1], expiresAt: 20 }), event({ kind: "revoked", block: 5, scopeIds: [S1] })], 100);
  assert.deepEqual([grantOf(states, PATIENT, S1)?.state, grantOf(states, PATIENT, S1)?.endedAt], ["expired", 20]);
});

test("a refusal names the scope, what happened and since when", () => {
  const states = grantStates([
    event({ kind: "granted", block: 1, scopeIds: [S1, S2], expiresAt: 1_800_000_000 }),
    event({ kind: "revoked", block: 3, scopeIds: [S2], time: 1_796_595_352 }),
  ], 1_796_600_000);
  assert.equal(refusalReason(grantOf(states, PATIENT, S1), S1), null);
  // Times in the reader's own time zone and language, as on every other page (ui/format.ts).
  assert.equal(refusalReason(grantOf(states, PATIENT, S2), S2), `The patient revoked scope 0x2222…2222 on ${formatTime(1_796_595_352)} (block 3).`);
  assert.equal(refusalReason(null, S1), "The patient never granted you scope 0x1111…1111.");
  const expired = grantStates([event({ kind: "granted", block: 1, scopeIds: [S1], expiresAt: 1_796_595_352, time: 1_790_000_000 })], 1_800_000_000);
  assert.equal(refusalReason(grantOf(expired, PATIENT, S1), S1), `Your grant of scope 0x1111…1111 expired on ${formatTime(1_796_595_352)} (it was granted on ${formatTime(1_790_000_000)}).`);
});
