// web/src/research/deidentify.ts against tests/vectors/deidentify.json (written by Python,
// tests/research/deidentify_vectors.py): the study key (offset and pseudonym key) from the
// secret key and study id, pseudonyms, DICOM UIDs, and every resource's de-identified copy as
// canonical JSON, byte for byte. The same vectors in Chromium: tests/web/test_web_deidentify.py.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { bytesToHex0x, hexToBytes, utf8Decode } from "../src/core/bytes.ts";
import { InputError } from "../src/core/errors.ts";
import { canonicalJson } from "../src/importer/canonical.ts";
import { loadJson } from "../src/importer/json.ts";
import { Deidentifier, pyFloatLiteral, studyKey } from "../src/research/deidentify.ts";
import { root } from "./vectors.ts";

type Key = { secret_key: string; study_id: string; offset_days: number; pseudonym_key: string; pseudonyms: Record<string, string>; uids: Record<string, string> };
type Case = { name: string; key: number; types: Record<string, string>; input: string; output: string | null };
const spec = JSON.parse(readFileSync(new URL("tests/vectors/deidentify.json", root), "utf8")) as {
  as_of: string; keys: Key[]; cases: Case[]; errors: Array<{ name: string; input: string; field: string }>;
};

const keyOf = (k: Key) => studyKey(hexToBytes(k.secret_key), hexToBytes(k.study_id));

test("the vectors cover both directions of the date shift", () => {
  assert.ok(spec.keys.some((k) => k.offset_days < 0) && spec.keys.some((k) => k.offset_days > 0));
  assert.ok(spec.cases.length >= 15);
});

for (const [i, k] of spec.keys.entries()) {
  test(`study key ${i}: offset, pseudonym key, pseudonyms and DICOM UIDs are Python's`, async () => {
    const key = await keyOf(k);
    assert.equal(key.offsetDays, k.offset_days);
    assert.equal(bytesToHex0x(key.revealPseudonymKey()), k.pseudonym_key);
    assert.equal(String(key), "StudyKey(<secret>)");
    assert.equal(JSON.stringify({ key }), '{"key":"StudyKey(<secret>)"}');
    const deid = new Deidentifier(key);
    for (const [original, pseudonym] of Object.entries(k.pseudonyms)) assert.equal(deid.pseudonym(original), pseudonym, original);
    for (const [uid, copy] of Object.entries(k.uids)) assert.equal(deid.uid(uid), copy, uid);
  });
}

for (const c of spec.cases) {
  test(`de-identified as Python does: ${c.name}`, async () => {
    const deid = new Deidentifier(await keyOf(spec.keys[c.key]!), { types: c.types, asOf: spec.as_of });
    const copy = deid.resource(loadJson(c.input, 1000));
    assert.equal(copy === null ? null : utf8Decode(canonicalJson(copy)), c.output);
  });
}

for (const e of spec.errors) {
  test(`refused as Python refuses: ${e.name}`, async () => {
    const deid = new Deidentifier(await keyOf(spec.keys[0]!), { asOf: spec.as_of });
    assert.throws(() => deid.resource(loadJson(e.input, 1000)), (err: unknown) => err instanceof InputError && err.field === e.field);
  });
}

test("a study id of the wrong length and a bad as-of date are refused naming the field", async () => {
  await assert.rejects(studyKey(new Uint8Array(32).fill(7), new Uint8Array(31)), (e: unknown) => e instanceof InputError && e.field === "study_id");
  const key = await studyKey(new Uint8Array(32).fill(7), new Uint8Array(32).fill(1));
  assert.throws(() => new Deidentifier(key, { asOf: "7 Dec 2026" }), (e: unknown) => e instanceof InputError && e.field === "as_of");
  assert.throws(() => pyFloatLiteral("1e400", "valueDecimal"), (e: unknown) => e instanceof InputError && e.field === "valueDecimal");
});

test("Python's float repr at its notation boundaries", () => {
  const cases: Array<[string, string]> = [
    ["72.0", "72.0"], ["1.50", "1.5"], ["1e-4", "0.0001"], ["1e-5", "1e-5"], ["1e15", "1000000000000000.0"],
    ["1e16", "1e16"], ["-0.0", "-0.0"], ["0.1e1", "1.0"], ["123.456e-2", "1.23456"],
  ];
  for (const [literal, repr] of cases) assert.equal(pyFloatLiteral(literal, "x").text, repr, literal);
});
