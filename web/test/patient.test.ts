// The PatientClient's pure parts, without a network: the scope vocabulary and label rule
// generated from Python, the wire it builds (upload headers, the ScopeKeys statement, the
// gasless authorization), and the checks that refuse bad input naming the field.
// tests/web/test_patient_parity.py runs the whole client against anvil and the real API.
import { test } from "node:test";
import assert from "node:assert/strict";
import { recoverTypedDataAddress } from "viem";
import { createApi } from "../src/api/client.ts";
import { bytesToHex0x, hexToBytes } from "../src/core/bytes.ts";
import { InputError } from "../src/core/errors.ts";
import { blindScope } from "../src/core/scopes.ts";
import { deriveWalletKeys, type WalletKeys } from "../src/core/walletKeys.ts";
import type { Deployment } from "../src/wallet/connection.ts";
import { ChainReader, checkedAddress } from "../src/patient/chain.ts";
import { PatientContext } from "../src/patient/context.ts";
import { recordIdOf, uploadHeaders } from "../src/patient/records.ts";
import { labelForPeople, scopeKeysTypedData } from "../src/patient/scopes.ts";
import { MAX_CATEGORY_LENGTH, RESOURCE_TYPES, scopeLabel, VOCABULARY } from "../src/patient/vocabulary.ts";
import { forViem } from "../src/core/eip712.ts";
import { KeySigner } from "./patient_signer.ts";
import { walletSpec } from "./vectors.ts";

const vector = walletSpec.vectors[0]!;
const domain = { chainId: vector.typed_data.domain.chainId, verifyingContract: vector.typed_data.domain.verifyingContract };

async function keys(): Promise<WalletKeys> {
  return deriveWalletKeys(vector.signature, vector.account, domain);
}

function refused(call: () => unknown, field: string, reason?: RegExp): void {
  assert.throws(call, (error: unknown) => {
    assert.ok(error instanceof InputError, String(error));
    assert.equal(error.field, field);
    if (reason) assert.match(error.reason, reason);
    return true;
  });
}

test("the vocabulary is Python's: resource types, categories, every label valid", () => {
  assert.ok(RESOURCE_TYPES.has("Observation") && RESOURCE_TYPES.has("SubscriptionTopic"));
  assert.ok(VOCABULARY.includes("Observation:laboratory") && VOCABULARY.includes("Condition:problem-list-item"));
  assert.deepEqual([...VOCABULARY].sort(), [...VOCABULARY]);
  for (const label of VOCABULARY) assert.equal(scopeLabel(label), label);
});

test("scope labels are refused with parse_scope_label's field and reason", () => {
  refused(() => scopeLabel(""), "scope", /is empty/);
  refused(() => scopeLabel("observation", "labels[0]"), "labels[0]", /did you mean 'Observation'\? names are case-sensitive/);
  refused(() => scopeLabel("Observation:"), "scope", /empty category after 'Observation':/);
  refused(() => scopeLabel(`Observation:${"a".repeat(MAX_CATEGORY_LENGTH + 1)}`), "scope", /at most 64/);
  refused(() => scopeLabel("Observation:-lab"), "scope", /is not a code/);
  refused(() => scopeLabel("Observation:lab oratory"), "scope", /is not a code/);
  assert.equal(scopeLabel("Observation:vital-signs"), "Observation:vital-signs");
  assert.equal(labelForPeople("Observation:laboratory"), "Observation (laboratory)");
});

test("the scope ids the page blinds are the Python vectors'", async () => {
  const k = await keys();
  for (const [label, expected] of Object.entries(vector.scope_ids)) {
    assert.equal(bytesToHex0x(await blindScope(k.scopeKey, scopeLabel(label))), expected, label);
  }
});

test("upload headers are the ones kizuna/client/http.py sends", () => {
  const scopeId = new Uint8Array(32).fill(7);
  const registration = { signed: { typed_data: { primaryType: "RegisterRecord" }, signature: "0xab" } };
  const headers = uploadHeaders({ scopeId, epoch: 3, registration, supersedes: new Uint8Array(32).fill(1) });
  assert.equal(headers.get("Content-Type"), "application/octet-stream");
  assert.equal(headers.get("X-Kizuna-Scope-Id"), `0x${"07".repeat(32)}`);
  assert.equal(headers.get("X-Kizuna-Scope-Epoch"), "3");
  assert.deepEqual(JSON.parse(headers.get("X-Kizuna-Registration")!), registration);
  assert.equal(headers.get("X-Kizuna-Supersedes"), `0x${"01".repeat(32)}`);
  assert.equal(uploadHeaders({ scopeId, epoch: 0, registration: { tx_hash: `0x${"22".repeat(32)}` } }).get("X-Kizuna-Supersedes"), null);
});

test("record ids: bytes or 0x hex of 32 bytes, else refused naming record_id", () => {
  assert.equal(recordIdOf(`0x${"ab".repeat(32)}`).length, 32);
  refused(() => recordIdOf("0x1234"), "record_id", /32 bytes/);
  refused(() => recordIdOf("not hex"), "record_id");
});

test("the ScopeKeys statement is signed and recovered like any EIP-712 document", async () => {
  const k = await keys();
  const scopeId = hexToBytes(Object.values(vector.scope_ids)[0]!);
  const delegating = (await k.scopeDelegatingKey(scopeId, 2)).publicKey().toCompressedBytes();
  const typed = scopeKeysTypedData({
    chainId: 31337, accessLog: "0x5FbDB2315678afecb367f032d93F642f64180aa3", patient: vector.account,
    scopeId, epoch: 2, delegatingKey: delegating, verifyingKey: k.verifyingKey.toCompressedBytes(),
  }) as Parameters<typeof forViem>[0];
  assert.equal(typed.primaryType, "ScopeKeys");
  assert.deepEqual(typed.domain, { name: "Kizuna Proxy", version: "1", chainId: 31337, verifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3" });
  assert.deepEqual(typed.types["ScopeKeys"]!.map((f) => `${f.type} ${f.name}`),
    ["address patient", "bytes32 scopeId", "uint64 epoch", "bytes delegatingKey", "bytes verifyingKey"]);
  assert.equal(typed.message["delegatingKey"], bytesToHex0x(delegating));
  const signer = new KeySigner(vector.private_key, "http://127.0.0.1:1", 31337);
  const signature = await signer.signTypedData(typed, { title: "t", why: "w" });
  assert.equal(await recoverTypedDataAddress({ ...forViem(typed), signature }), vector.account);
  assert.throws(() => scopeKeysTypedData({ ...{ chainId: 1, accessLog: vector.account, patient: vector.account, scopeId, delegatingKey: delegating, verifyingKey: delegating }, epoch: -1 }),
    (e: unknown) => e instanceof InputError && e.field === "epoch");
});

function context(k: WalletKeys, signer: KeySigner, extra: { patient?: string; gasless?: boolean } = {}): PatientContext {
  const deployment: Deployment = { version: "t", chainId: 31337, contracts: { AccessLog: vector.account }, walletRpcUrl: "http://127.0.0.1:1" };
  const apiOptions = { token: () => null, baseUrl: "http://127.0.0.1:1" };
  return new PatientContext({
    api: createApi(apiOptions), apiOptions, signer, keys: k, deployment,
    chain: ChainReader.forDeployment(deployment), gasless: extra.gasless ?? true, patient: extra.patient,
  });
}

test("the context refuses keys of another account, a bad ward, and own-only actions for a ward", async () => {
  const k = await keys();
  const own = new KeySigner(vector.private_key, "http://127.0.0.1:1", 31337);
  const other = new KeySigner(`0x${"11".repeat(32)}`, "http://127.0.0.1:1", 31337);
  refused(() => context(k, other), "keys", /not the signer's/);
  refused(() => context(k, own, { patient: "0x12" }), "patient", /not an Ethereum address/);
  assert.equal(context(k, own, { patient: vector.account }).ward, null);  // oneself is no ward
  const ward = context(k, own, { patient: other.address });
  assert.deepEqual(ward.acting(), { patient: other.address });
  refused(() => ward.ownOnly("Sharing"), "patient", /not possible yet/);
  refused(() => checkedAddress("provider", "0xnope"), "provider");
});

test("gasless: the prepared typed data is signed and sent as {signed}; the purpose is shown", async () => {
  const k = await keys();
  const signer = new KeySigner(vector.private_key, "http://127.0.0.1:1", 31337);
  const typed = scopeKeysTypedData({ chainId: 31337, accessLog: vector.account, patient: vector.account, scopeId: new Uint8Array(32), epoch: 0, delegatingKey: new Uint8Array(33), verifyingKey: new Uint8Array(33) });
  const purpose = { title: "Share Observation with Dr Tanaka", why: "Lets them read it until Friday." };
  const authorization = await context(k, signer).authorize({ action: "grant", transaction: { to: vector.account, data: "0x" }, typed_data: typed as Record<string, unknown> }, purpose);
  assert.deepEqual(Object.keys(authorization), ["signed"]);
  assert.equal(authorization.signed!.typed_data, typed);
  assert.equal(await recoverTypedDataAddress({ ...forViem(typed as Parameters<typeof forViem>[0]), signature: authorization.signed!.signature as `0x${string}` }), vector.account);
  assert.deepEqual(signer.asked, [{ kind: "typed", purpose, primaryType: "ScopeKeys" }]);
});
