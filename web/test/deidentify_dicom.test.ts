// web/src/research/dicom.ts against tests/vectors/deidentify_dicom.json (written by Python,
// tests/research/deidentify_vectors.py, from DICOM files pydicom builds there): every case's
// copy byte for byte Python's deidentify_dicom_for_study output (but the cases marked same_bytes
// false, values pydicom normalises as it reads them, compared in Chromium with pydicom), Python's refusals refused with
// the same field and reason, and the files the page does not read (big endian, deflated, no
// Part 10 header) refused as DicomUnsupported. The same vectors in Chromium, and the page's
// copies parsed back with pydicom: tests/web/test_web_deidentify.py.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { base64ToBytes, bytesToBase64, hexToBytes } from "../src/core/bytes.ts";
import { InputError } from "../src/core/errors.ts";
import { studyKey } from "../src/research/deidentify.ts";
import { deidentifyDicom, DicomUnsupported } from "../src/research/dicom.ts";
import { root } from "./vectors.ts";

type Key = { secret_key: string; study_id: string };
type Case = { name: string; key: number; input: string; output?: string; error?: { field: string; reason: string }; same_bytes?: false };
const keys = (JSON.parse(readFileSync(new URL("tests/vectors/deidentify.json", root), "utf8")) as { keys: Key[] }).keys;
const spec = JSON.parse(readFileSync(new URL("tests/vectors/deidentify_dicom.json", root), "utf8")) as {
  cases: Case[]; page_refusals: Array<{ name: string; input: string }>;
};
const keyOf = (i: number) => studyKey(hexToBytes(keys[i]!.secret_key), hexToBytes(keys[i]!.study_id));

test("the vectors hold copies, a refusal, and files the page does not read", () => {
  assert.ok(spec.cases.filter((c) => c.output).length >= 8);
  assert.ok(spec.cases.some((c) => c.error));
  assert.ok(spec.page_refusals.length >= 3);
});

for (const c of spec.cases) {
  test(`DICOM de-identified as Python does: ${c.name}`, async () => {
    const key = await keyOf(c.key);
    const input = base64ToBytes(c.input);
    if (c.error) {
      assert.throws(() => deidentifyDicom(input, key), (e: unknown) => e instanceof InputError && !(e instanceof DicomUnsupported) &&
        e.field === c.error!.field && e.reason === c.error!.reason);
      return;
    }
    const copy = bytesToBase64(deidentifyDicom(input, key));
    // same_bytes false: pydicom normalises a value as it reads; the page keeps its bytes. The
    // elements and values are compared with pydicom in tests/web/test_web_deidentify_dicom.py.
    if (c.same_bytes === false) assert.notEqual(copy, c.output);
    else assert.equal(copy, c.output);
  });
}

for (const r of spec.page_refusals) {
  test(`DICOM the page does not read is refused by name: ${r.name}`, async () => {
    const key = await keyOf(0);
    assert.throws(() => deidentifyDicom(base64ToBytes(r.input), key), DicomUnsupported);
  });
}

test("a file cut short is refused naming the file, not a crash", async () => {
  const key = await keyOf(0);
  const input = base64ToBytes(spec.cases[0]!.input);
  for (const cut of [140, 400, input.length - 3]) {
    assert.throws(() => deidentifyDicom(input.subarray(0, cut), key), (e: unknown) => e instanceof InputError && e.field === "file", String(cut));
  }
});
