// The pure parts of the Sharing and Requests pages: the vocabulary grouped for people (every
// label in exactly one group, the raw labels kept), what a request's note pre-fills, dates of
// the expiry input, and the InboxKey statement (signed and recovered with viem, as a wallet
// would; tests/web/test_web_sharing.py proves the Python service accepts the page's signature).
import assert from "node:assert/strict";
import { test } from "node:test";
import { recoverTypedDataAddress, type TypedDataDefinition } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { InputError } from "../src/core/errors.ts";
import { inboxKeyTypedData } from "../src/patient/requests.ts";
import { VOCABULARY } from "../src/patient/vocabulary.ts";
import { dateInputValue, expiryOf, labelName, peopleList, scopeGroups, suggestedGrant } from "../src/pages/patient/sharing/scopes.ts";

test("every vocabulary label is in exactly one group: its main label first, then the vocabulary's order", () => {
  const groups = scopeGroups();
  const all = groups.flatMap((g) => g.labels);
  assert.equal(all.length, VOCABULARY.length);
  assert.deepEqual(new Set(all), new Set(VOCABULARY));
  for (const g of groups) {
    const order = g.labels.slice(1).map((l) => VOCABULARY.indexOf(l));
    assert.deepEqual(order, [...order].sort((a, b) => a - b), g.id);
  }
  const titles = groups.map((g) => g.title);
  assert.deepEqual(titles.slice(0, 4), ["Lab results", "Vital signs", "Conditions", "Medications"]);
  assert.equal(titles.at(-1), "Everything else");
  assert.ok(groups[0]!.labels.includes("Observation:laboratory"));
  assert.deepEqual(groups[1]!.labels, ["Observation:vital-signs"]);
  // The main label leads its group.
  assert.equal(groups[0]!.labels[0], "Observation:laboratory");
  assert.equal(groups.find((g) => g.id === "medications")!.labels[0], "MedicationRequest");
});

test("labels in words: named ones, report sections, the rest split into words", () => {
  assert.equal(labelName("Observation:laboratory"), "Lab results");
  assert.equal(labelName("Condition:problem-list-item"), "Problem list");
  assert.equal(labelName("DiagnosticReport:HM"), "Blood count (hematology) reports");
  assert.equal(labelName("DiagnosticReport:XRC"), "Reports (XRC)");
  assert.equal(labelName("FamilyMemberHistory"), "Family member history");
  assert.equal(labelName("Observation:made-up"), "Observation (made up)");
  for (const label of VOCABULARY) assert.ok(labelName(label).length > 0, label);
  assert.equal(peopleList(["Observation:laboratory"]), "Lab results (Observation:laboratory)");
  assert.equal(peopleList(["Observation:laboratory", "Immunization", "Procedure"]),
    "Lab results (Observation:laboratory), Vaccinations (Immunization) and Procedures (Procedure)");
});

test("a note's exact labels win; otherwise its words pick the groups' main labels", () => {
  assert.deepEqual(suggestedGrant("Please share Observation:vital-signs and Observation:laboratory for 14 days"),
    { labels: ["Observation:vital-signs", "Observation:laboratory"], days: 14, until: null });
  assert.deepEqual(suggestedGrant("Referral: cardiology, please share vitals and your lab results").labels,
    ["Observation:laboratory", "Observation:vital-signs"]);
  assert.deepEqual(suggestedGrant("allergies and medications, 2 weeks"),
    { labels: ["MedicationRequest", "AllergyIntolerance"], days: 14, until: null });
  assert.equal(suggestedGrant("for 3 months").days, 90);
  assert.equal(suggestedGrant("until 2027-01-31").until, "2027-01-31");
  assert.deepEqual(suggestedGrant("Hello"), { labels: [], days: 30, until: null });
  // A made-up label is not suggested (only the vocabulary's).
  assert.deepEqual(suggestedGrant("Observation:nonsense").labels, []);
});

test("the expiry input: a local day's end, invalid dates refused", () => {
  const end = expiryOf("2027-03-05")!;
  const d = new Date(end * 1000);
  assert.deepEqual([d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes()], [2027, 2, 5, 23, 59]);
  assert.equal(expiryOf("2027-02-30"), null);
  assert.equal(expiryOf("tomorrow"), null);
  assert.equal(expiryOf(""), null);
  const now = Math.floor(new Date(2026, 11, 6, 12, 0, 0).getTime() / 1000);
  assert.equal(dateInputValue(now, 30), "2027-01-05");
  assert.equal(expiryOf(dateInputValue(now, 1))! > now, true);
});

test("the InboxKey statement is EIP-712 in the proxy domain and a wallet's signature recovers", async () => {
  const account = privateKeyToAccount(`0x${"11".repeat(32)}`);
  const publicKey = new Uint8Array(33).fill(7);
  publicKey[0] = 2;
  const typed = inboxKeyTypedData({
    chainId: 31337, accessLog: "0x5fbdb2315678afecb367f032d93f642f64180aa3", patient: account.address.toLowerCase(), publicKey,
  }) as TypedDataDefinition & { domain: Record<string, unknown>; message: Record<string, unknown> };
  assert.deepEqual(typed.domain, {
    name: "Kizuna Proxy", version: "1", chainId: 31337, verifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
  });
  assert.deepEqual(typed.message, { patient: account.address, publicKey: `0x02${"07".repeat(32)}` });
  const signature = await account.signTypedData(typed);
  assert.equal(await recoverTypedDataAddress({ ...typed, signature }), account.address);
  assert.throws(() => inboxKeyTypedData({ chainId: 1, accessLog: account.address, patient: account.address, publicKey: new Uint8Array(32) }),
    (e: unknown) => e instanceof InputError && e.field === "public_key");
  assert.throws(() => inboxKeyTypedData({ chainId: 1, accessLog: "0x12", patient: account.address, publicKey }),
    (e: unknown) => e instanceof InputError && e.field === "accessLog");
});
