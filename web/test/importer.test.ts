// The page's file checks (web/src/pages/patient/add/scan.ts over web/src/importer): what a
// drop of several files becomes before anything is uploaded. Python parity of the same rules is
// tests/web/test_import_parity.py; this checks the page's grouping and refusals.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { canonicalNumber } from "../src/importer/canonical.ts";
import { Importer } from "../src/importer/importer.ts";
import { FhirValidationError, loadJson, nestingExceeds } from "../src/importer/json.ts";
import { checkRules } from "../src/importer/rules.ts";
import { countByType, isRefused, scanFiles } from "../src/pages/patient/add/scan.ts";
import { RecordIds, sourceDigest } from "../src/core/recordIds.ts";

/** A test patient's record ids (a fixed import id key): scanning names single files by them. */
const ids = await RecordIds.fromKey(new Uint8Array(32).fill(1));

const importer = new Importer(checkRules(JSON.parse(readFileSync(new URL("../src/importer/rules.generated.json", import.meta.url), "utf8"))));
const patient = { resourceType: "Patient", id: "p1", gender: "female", birthDate: "1970-01-01" };
const obs = (id: string, extra: object = {}) => ({
  resourceType: "Observation", id, status: "final", code: { text: "weight" }, subject: { reference: "Patient/p1" },
  effectiveDateTime: "2024-01-02T10:00:00Z", valueQuantity: { value: 70.50, unit: "kg" }, ...extra,
});
const file = (name: string, body: string | Uint8Array<ArrayBuffer>) => new File([body], name);
const pdf = new TextEncoder().encode("%PDF-1.4\n%%EOF\n");

test("a drop is read into records by type, refusals name the field and why", async () => {
  const bundle = { resourceType: "Bundle", type: "collection", entry: [{ fullUrl: "urn:uuid:11111111-1111-1111-1111-111111111111", resource: patient }] };
  const found = await scanFiles(importer, [
    file("bundle.json", JSON.stringify(bundle)),
    file("weight.json", JSON.stringify(obs("o1"))),
    file("bad.json", JSON.stringify(obs("o2", { status: "done", effectiveDateTime: "2024-02-30" }))),
    file("letter.pdf", pdf),
    file("Patient.ndjson", `${JSON.stringify(patient)}\n`),
    file("Observation.ndjson", `${JSON.stringify(obs("o3"))}\n\n${JSON.stringify(obs("o4"))}\n`),
    file("photo.heic", new Uint8Array([0, 0, 0, 24, 102, 116, 121, 112])),
  ], ids);
  assert.deepEqual(found.map((f) => [f.name, f.what, isRefused(f), f.uploads.length]), [
    ["bundle.json", "FHIR Bundle", false, 1], ["weight.json", "FHIR resource", false, 1], ["bad.json", "FHIR resource", true, 0],
    ["letter.pdf", "Document", false, 2], ["Patient.ndjson", "FHIR NDJSON", false, 1], ["Observation.ndjson", "FHIR NDJSON", false, 2],
    ["photo.heic", "Unknown", true, 0],
  ]);
  assert.deepEqual(found[2]?.issues, [
    ["Observation.effectiveDateTime", "'2024-02-30' is not a calendar date: 2024-02 has no day 30 (it has 29 days)"],
    ["Observation.status", "'done' is not in the required value set (amended, cancelled, corrected, entered-in-error, final, preliminary, registered, unknown)"],
  ]);
  assert.deepEqual(found[6]?.issues, [["file", "not a FHIR JSON, NDJSON, PDF, image or DICOM file"]]);
  assert.deepEqual(countByType(found), [["Observation", 3], ["Patient", 2], ["DocumentReference", 1], ["File", 1]]);
  const letter = found[3]?.uploads;
  assert.equal(letter?.[0]?.kind, "file");
  assert.equal(letter?.[1]?.kind === "record" && letter[1].record.scopeLabel, "DocumentReference");
  // A single file's records are named by its SHA-256 (docs/keys.md): the file index 0, its
  // DocumentReference index 1; dropped again, the same ids (so it is found in the record).
  const digest = await sourceDigest(pdf);
  assert.deepEqual(letter?.[0]?.kind === "file" && [...letter[0].recordId], [...await ids.of(digest, 0)]);
  assert.deepEqual(letter?.[1]?.kind === "record" && letter[1].source, { digest, index: 1 });
  const again = await scanFiles(importer, [file("copy of letter.pdf", pdf)], ids);
  assert.deepEqual(again[0]?.uploads[0]?.kind === "file" && [...again[0].uploads[0].recordId], [...await ids.of(digest, 0)]);
  assert.equal(again[0]?.digest, found[3]?.digest);
});

test("NDJSON files dropped together are checked together", async () => {
  const alone = await scanFiles(importer, [file("Observation.ndjson", `${JSON.stringify(obs("o3"))}\n`)], ids);
  assert.deepEqual(alone[0]?.issues, [["Observation.ndjson:1:Observation.subject.reference", "'Patient/p1' names no resource in these files"]]);
});

test("decimals keep their written precision in the canonical bytes", () => {
  const record = importer.importResource('{"resourceType":"Observation","status":"final","code":{"text":"t"},"valueQuantity":{"value":1.50E1}}');
  assert.match(new TextDecoder().decode(record.content), /"value":15\.0\}/);
  assert.equal(canonicalNumber("-0.0"), "0.0");
  assert.equal(canonicalNumber("1E-7"), "0.0000001");
});

test("JSON the Python side refuses is refused here, with the same reason", () => {
  const reason = (text: string) => {
    try {
      loadJson(text, 1000);
    } catch (error) {
      assert.ok(error instanceof FhirValidationError);
      return error.issues[0]?.[1];
    }
    return "accepted";
  };
  assert.equal(reason('{"a":1,"a":2}'), "duplicate JSON key 'a'");
  assert.equal(reason('{"a":NaN}'), "not valid JSON: NaN is not a JSON number FHIR allows");
  assert.equal(reason("[1]"), "expected a JSON object, got list");
  assert.equal(reason(`${"[".repeat(1001)}${"]".repeat(1001)}`), "JSON nested too deeply");
  assert.ok(!nestingExceeds('{"a":"[[[[["}', 2));
});
