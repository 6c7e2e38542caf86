// The researcher's NDJSON lines (web/src/researcher/ndjson.ts) are Python's
// json.dumps(json.loads(content), ensure_ascii=False, separators=(",", ":")) byte for byte:
// checked against the venv's Python for decimals at every notation boundary, integers beyond
// 2^53, escapes and non-ASCII text, and for the files of a real Synthea patient's canonical
// records (kizuna/research/export.py write_bulk_ndjson on the same contents); DICOM copies as
// their own files; a new study's fields checked as StudyRegistry.registerStudy checks them.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import type { InputError } from "../src/core/errors.ts";
import { canonicalJson } from "../src/importer/canonical.ts";
import { loadJson } from "../src/importer/json.ts";
import { bulkFiles, pythonJsonLine } from "../src/researcher/ndjson.ts";
import { checkedStudy } from "../src/researcher/studies.ts";
import { fixtures, PYTHON } from "./fhir_fixtures.ts";

function python(script: string, input: string, ...args: string[]): string {
  const run = spawnSync(PYTHON, ["-c", script, ...args], { input, encoding: "utf8", maxBuffer: 1 << 28 });
  assert.equal(run.status, 0, run.stderr);
  return run.stdout;
}

test("numbers, escapes and text as Python's json.dumps writes them", () => {
  const numbers = ["0.0", "0", "-0.0", "72.0", "72.5", "1.50", "100.0", "0.1", "0.0001", "0.00001", "0.0000001",
    "1234567890123456.0", "12345678901234567.0", "10000000000000000.5", "3.141592653589793238", "-2.5", "0.30000000000000004",
    "123456789012345678901234567890", "-9007199254740993", "1.7976931348623157e308", "5e-324", "1e-400", "2.0e21", "0.000123"];
  const doc = `{"resourceType":"Observation","n":[${numbers.join(",")}],"s":"tab\\there \\"q\\" \\\\ \\u0001 \\u007f é 山田 😀 \\u2028"}`;
  const expected = python("import json,sys; print(json.dumps(json.loads(sys.stdin.read()), ensure_ascii=False, separators=(',', ':')), end='')", doc);
  assert.equal(pythonJsonLine(loadJson(doc, 100)), expected);
});

test("a Synthea patient's records export as Python's write_bulk_ndjson files", async () => {
  const contents = fixtures().synthea.map((f) => canonicalJson(loadJson(JSON.stringify(f.resource), 100)));
  const files = await bulkFiles(contents);
  const dir = mkdtempSync(join(tmpdir(), "kizuna-ndjson-"));
  const script = `
import json, sys
from kizuna.research.export import write_bulk_ndjson
lines = sys.stdin.read().split("\\n")
write_bulk_ndjson((json.loads(l) for l in lines if l), sys.argv[1])`;
  python(script, contents.map((c) => new TextDecoder().decode(c)).join("\n"), dir);
  const names = readdirSync(dir).sort();
  assert.deepEqual(files.map((f) => f.name).sort(), names);
  for (const file of files) assert.deepEqual(Buffer.from(file.content), readFileSync(join(dir, file.name)), file.name);
  assert.ok(files.length > 5 && files.reduce((n, f) => n + f.count, 0) === contents.length);
});

test("a DICOM copy is its own file, named by its SHA-256 as Python names it", async () => {
  const dicom = new Uint8Array(200);
  dicom.set(new TextEncoder().encode("DICM"), 128);
  dicom[199] = 7;
  const observation = canonicalJson(loadJson('{"resourceType":"Observation","id":"o","valueQuantity":{"value":1.0}}', 100));
  const files = await bulkFiles([dicom, observation]);
  const digest = createHash("sha256").update(dicom).digest("hex");
  assert.deepEqual(files.map((f) => f.name), ["Observation.ndjson", `dicom/${digest}.dcm`]);
  assert.deepEqual(Buffer.from(files[1]!.content), Buffer.from(dicom));
  assert.equal(new TextDecoder().decode(files[0]!.content), '{"id":"o","resourceType":"Observation","valueQuantity":{"value":1.0}}\n'); // canonical: keys sorted
  await assert.rejects(bulkFiles([new TextEncoder().encode('{"resourceType":"../x"}')]), /record 1 of the cohort is not a resource type/);
});

test("a new study is checked as the registry checks it, each failure naming its field", () => {
  const ok = { purpose: "  Sleep and heart rate ", scopes: ["Observation:vital-signs", "Observation:vital-signs", "Condition"], endsAt: 2000 };
  assert.deepEqual(checkedStudy(ok, 1000), { purpose: "Sleep and heart rate", scopes: ["Observation:vital-signs", "Condition"], endsAt: 2000 });
  const field = (study: Partial<typeof ok>, now = 1000) => {
    try {
      checkedStudy({ ...ok, ...study }, now);
    } catch (error) {
      return (error as InputError).field;
    }
    return null;
  };
  assert.equal(field({ purpose: " " }), "purpose");
  assert.equal(field({ purpose: "é".repeat(513) }), "purpose"); // 1,026 bytes
  assert.equal(field({ scopes: [] }), "scopes");
  assert.equal(field({ scopes: ["observation"] }), "scopes");
  assert.equal(field({ scopes: Array.from({ length: 65 }, () => "Condition") }), "scopes");
  assert.equal(field({ endsAt: 1000 }), "endsAt");
  assert.equal(field({}, 1999), null);
});
