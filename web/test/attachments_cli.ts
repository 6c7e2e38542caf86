// The page's file descriptions for tests/web/test_import_parity.py: reads jobs on stdin
// ({kind: "document", path, subject, title, date (ISO), url, resourceId} or
// {kind: "dicom", paths, subject, resourceId}) and prints each record (or the refusal).
import { readFileSync } from "node:fs";
import { digestFile, documentReference, FileProblem, imagingStudy, readDicomHeader } from "../src/importer/attachments.ts";
import { Importer } from "../src/importer/importer.ts";
import { checkRules } from "../src/importer/rules.ts";

const importer = new Importer(checkRules(JSON.parse(readFileSync(new URL("../src/importer/rules.generated.json", import.meta.url), "utf8"))));
type Job = { kind: string; path?: string; paths?: string[]; subject: string; title?: string; date?: string; url?: string; resourceId: string };
const jobs = JSON.parse(readFileSync(0, "utf8")) as Job[];
const out = [];
for (const job of jobs) {
  try {
    let record;
    if (job.kind === "document") {
      const digest = await digestFile(new Blob([readFileSync(job.path as string)]));
      record = documentReference(importer, digest, { subject: job.subject, title: job.title, date: job.date ? new Date(job.date) : undefined, url: job.url, resourceId: job.resourceId }).record;
    } else {
      const headers = (job.paths ?? []).map((p) => readDicomHeader(new Uint8Array(readFileSync(p))));
      record = imagingStudy(importer, headers, { subject: job.subject, resourceId: job.resourceId });
    }
    out.push({ ok: true, content: Buffer.from(record.content).toString("base64"), label: record.scopeLabel, contentType: record.contentType });
  } catch (error) {
    if (!(error instanceof FileProblem)) throw error;
    out.push({ ok: false, field: error.field, reason: error.message });
  }
}
process.stdout.write(JSON.stringify(out));
