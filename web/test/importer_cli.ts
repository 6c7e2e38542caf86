// The page's importer run from Python (tests/web/test_import_parity.py): reads a JSON list of
// {name, mode: "bundle" | "resource" | "ndjson", path} on stdin and prints, per file, whether
// it was accepted, its issues, and its records (base64 content, content type, scope label).
import { readFileSync } from "node:fs";
import { FhirValidationError } from "../src/importer/json.ts";
import { Importer, type ImportedRecord } from "../src/importer/importer.ts";
import { checkRules } from "../src/importer/rules.ts";

const rules = checkRules(JSON.parse(readFileSync(new URL("../src/importer/rules.generated.json", import.meta.url), "utf8")));
const importer = new Importer(rules);
const jobs = JSON.parse(readFileSync(0, "utf8")) as { name: string; mode: string; path: string }[];

const results = jobs.map(({ name, mode, path }) => {
  const bytes = new Uint8Array(readFileSync(path));
  try {
    let records: ImportedRecord[];
    if (mode === "bundle") records = importer.importBundle(bytes);
    else if (mode === "ndjson") records = importer.importNdjson(name, bytes);
    else records = [importer.importResource(bytes)];
    return {
      name, ok: true, issues: [],
      records: records.map((r) => ({ content: Buffer.from(r.content).toString("base64"), contentType: r.contentType, label: r.scopeLabel, date: r.date, fullUrl: r.fullUrl })),
    };
  } catch (error) {
    if (!(error instanceof FhirValidationError)) throw error;
    return { name, ok: false, issues: error.issues, records: [] };
  }
});
process.stdout.write(JSON.stringify(results));
