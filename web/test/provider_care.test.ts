// The pure parts of the provider's care and registry pages: the access request's note (read back
// by the patient's page into the same labels and period), the inbox-key check a provider makes
// before sealing anything to a patient (a statement signed with a real key, then tampered with
// in each way the Python rule refuses), the FHIR a report / prescription / booking form makes
// (valid by the importer's rules), the countdown, and the registry's constants and inputs.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { privateKeyToAccount } from "viem/accounts";
import { bytesToHex0x } from "../src/core/bytes.ts";
import { InputError } from "../src/core/errors.ts";
import { FieldProblem } from "../src/forms/builders.ts";
import { Importer } from "../src/importer/importer.ts";
import { checkRules } from "../src/importer/rules.ts";
import { labelName, suggestedGrant } from "../src/pages/patient/sharing/scopes.ts";
import { inboxKeyTypedData } from "../src/patient/requests.ts";
import { booking, prescription, requestNote, reviewOf, timeLeft, verifiedInboxKey, visitReport } from "../src/provider/care.ts";
import { credentialCommitment, REGISTRAR_ROLE, statusText, umbralKeyOf } from "../src/provider/registry.ts";
import { forViem } from "../src/core/eip712.ts";

const importer = new Importer(checkRules(JSON.parse(readFileSync(new URL("../src/importer/rules.generated.json", import.meta.url), "utf8"))));
const patient = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const stranger = privateKeyToAccount("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a");
const ACCESS_LOG = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const KEY = new Uint8Array(33).fill(7);
KEY[0] = 2;
const ours = { patient: patient.address, chainId: 31337, accessLog: ACCESS_LOG };

async function statement(fields: { signer?: typeof patient; chainId?: number; key?: Uint8Array; named?: string } = {}) {
  const typed = inboxKeyTypedData({ chainId: fields.chainId ?? 31337, accessLog: ACCESS_LOG, patient: patient.address, publicKey: fields.key ?? KEY }) as never;
  const signature = await (fields.signer ?? patient).signTypedData(forViem(typed));
  return { patient: patient.address, public_key: fields.named ?? bytesToHex0x(fields.key ?? KEY), signature, statement: typed as Record<string, unknown> };
}

async function refused(answer: Parameters<typeof verifiedInboxKey>[0], why: RegExp, who = ours) {
  await assert.rejects(verifiedInboxKey(answer, who), (e: unknown) => e instanceof InputError && e.field === "patient" && why.test(e.reason));
}

test("a request's note names the labels and period the patient's page pre-fills its grant with", () => {
  const note = requestNote({ labels: ["Observation:laboratory", "Observation:vital-signs"], days: 14, text: "Before your check-up.", names: labelName });
  assert.deepEqual(suggestedGrant(note), { labels: ["Observation:laboratory", "Observation:vital-signs"], days: 14, until: null });
  assert.match(note, /Before your check-up\.$/);
  // Labels without a category (a bare resource type) are read back too, beside the others.
  const mixed = requestNote({ labels: ["MedicationRequest", "Observation:laboratory", "AllergyIntolerance"], days: 30, text: "", names: labelName });
  assert.deepEqual(new Set(suggestedGrant(mixed).labels), new Set(["MedicationRequest", "Observation:laboratory", "AllergyIntolerance"]));
  assert.throws(() => requestNote({ labels: [], days: 14, text: "", names: labelName }), (e: unknown) => e instanceof InputError && e.field === "scopes");
  assert.throws(() => requestNote({ labels: ["Observation:laboratory"], days: 0, text: "", names: labelName }), (e: unknown) => e instanceof InputError && e.field === "days");
});

test("the inbox key the patient signed is taken; any other is refused, saying why", async () => {
  assert.deepEqual(await verifiedInboxKey(await statement(), ours), KEY);
  await refused(await statement({ signer: stranger }), /signed by 0x/);
  await refused(await statement({ chainId: 1 }), /signed by 0x.*another deployment/); // another deployment's statement
  const swapped = new Uint8Array(KEY);
  swapped[5] = 9;
  await refused(await statement({ named: bytesToHex0x(swapped) }), /the key the patient signed is/);
  await refused(await statement(), /inbox key of/, { ...ours, patient: stranger.address });
  const bad = await statement();
  await refused({ ...bad, signature: `0x${"00".repeat(65)}` }, /not a valid signature|signed by/);
});

const ctx = { subject: "Patient/0xabc", id: "m1", now: new Date("2026-01-10T09:00:00Z") };

test("the report, prescription and booking forms make FHIR the importer accepts; empty fields are named", () => {
  for (const resource of [
    visitReport({ title: "Check-up", text: "All well.", provider: "0xdoc" }, ctx),
    prescription({ name: "Amlodipine 5 mg", rxnorm: "197361", dosage: "once a day", provider: "0xdoc" }, ctx),
    booking({ start: "2026-02-01T10:30", minutes: "30", what: "Follow-up", provider: "0xdoc" }, ctx),
  ]) {
    assert.ok(importer.importResource(JSON.stringify(resource)), JSON.stringify(resource));
  }
  const fields = (run: () => unknown) => {
    try {
      run();
    } catch (error) {
      assert.ok(error instanceof FieldProblem);
      return error.problems.map((p) => p.field);
    }
    return assert.fail("expected a FieldProblem");
  };
  assert.deepEqual(fields(() => visitReport({ title: "", text: " ", provider: "0xdoc" }, ctx)), ["text"]);
  assert.deepEqual(fields(() => prescription({ name: "", rxnorm: "x1", dosage: "", provider: "0xdoc" }, ctx)), ["name", "rxnorm"]);
  assert.deepEqual(fields(() => booking({ start: "2025-01-01T10:00", minutes: "2", what: "", provider: "0xdoc" }, ctx)), ["start", "minutes"]);
});

test("the time box counts down in words", () => {
  assert.equal(timeLeft(4 * 3600), "4 h 00 min");
  assert.equal(timeLeft(3 * 3600 + 59 * 60 + 30), "3 h 59 min");
  assert.equal(timeLeft(245), "4 min 05 s");
  assert.equal(timeLeft(0), "expired");
});

test("registry: the registrar role and a credential's commitment as Python computes them; inputs checked", () => {
  assert.equal(REGISTRAR_ROLE, "0x0ba255d32f976b9b903285d7aa3ccbb929fc7a683dd6935ae158539bde5b379b");
  assert.equal(credentialCommitment("kizuna demo licence of dr-sato"), "0x1c0ad0aee42e4d4602cc74514766288b1f1d28b5a141f201d907d0c0835423bc");
  assert.throws(() => credentialCommitment("  "), (e: unknown) => e instanceof InputError && e.field === "credential");
  assert.equal(umbralKeyOf(` ${bytesToHex0x(KEY).toUpperCase().replace("0X", "0x")} `), bytesToHex0x(KEY));
  assert.throws(() => umbralKeyOf("0x04" + "11".repeat(32)), (e: unknown) => e instanceof InputError && e.field === "public_key");
  const entry = { address: patient.address, umbralPublicKey: KEY, credentialCommitment: "0x01" as const, active: true, verified: true, registeredAt: 1 };
  assert.match(statusText({ derivedKey: bytesToHex0x(KEY), entry: null, keyMatches: false }), /^Not registered/);
  assert.match(statusText({ derivedKey: bytesToHex0x(KEY), entry: { ...entry, active: false }, keyMatches: true }), /^Suspended/);
  assert.match(statusText({ derivedKey: bytesToHex0x(KEY), entry, keyMatches: false }), /another public key/);
  assert.match(statusText({ derivedKey: bytesToHex0x(KEY), entry, keyMatches: true }), /verified/);
});

test("an emergency access's review: by whom and when, awaiting, or unknown when the service was not asked", () => {
  const tx = "0x" + "ab".repeat(32);
  const listed = [
    { patient: "0x" + "11".repeat(20), provider: "0x" + "22".repeat(20), until: 10, reason_code: 1, block_number: 5,
      tx_hash: tx.toUpperCase().replace("0X", "0x"), log_index: 2, closed_by: null, closed_block: null,
      reviewed: true, reviewed_by: "0x" + "33".repeat(20), reviewed_at: 1_800_000_000 },
    { patient: "0x" + "11".repeat(20), provider: "0x" + "22".repeat(20), until: 10, reason_code: 1, block_number: 5,
      tx_hash: tx, log_index: 3, closed_by: null, closed_block: null, reviewed: false, reviewed_by: null, reviewed_at: null },
  ];
  assert.deepEqual(reviewOf(listed, "", tx, 2), { state: "reviewed", by: "0x" + "33".repeat(20), at: 1_800_000_000 });
  assert.deepEqual(reviewOf(listed, "", tx, 3), { state: "awaiting" });
  assert.deepEqual(reviewOf(listed, "", tx, 4), { state: "awaiting" }); // not indexed yet
  assert.deepEqual(reviewOf(null, "the service is down", tx, 2), { state: "unknown", why: "the service is down" });
});
