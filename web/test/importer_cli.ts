// The page's importer run from Python (tests/web/test_import_parity.py): reads a JSON list of
// {name, mode: "bundle" | "resource" | "ndjson", path (several for ndjson)} on stdin and prints, per file, whether
// it was accepted, its issues, and its records (base64 content, content type, scope label).
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { FhirValidationError } from "../src/importer/json.ts";
import { Importer, type ImportedRecord } from "../src/importer/importer.ts";
import { checkRules } from "../src/importer/rules.ts";

const rules = checkRules(JSON.parse(readFileSync(new URL("../src/importer/rules.generated.json", import.meta.url), "utf8")));
const importer = new Importer(rules);
const jobs = JSON.parse(readFileSync(0, "utf8")) as { name: string; mode: string; path: string | string[] }[];

const results = jobs.map(({ name, mode, path }) => {
  const paths = Array.isArray(path) ? path : [path];
  const bytes = new Uint8Array(readFileSync(paths[0] as string));
  try {
    let records: ImportedRecord[];
    if (mode === "bundle") records = importer.importBundle(bytes);
    else if (mode === "ndjson") records = importer.importNdjson(paths.map((p) => ({ name: basename(p), bytes: new Uint8Array(readFileSync(p)) }))).flat();
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
