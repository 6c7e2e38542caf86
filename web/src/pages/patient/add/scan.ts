// What the patient dropped, checked in the page before anything leaves it: each file is read
// and validated by the Python importer's rules (web/src/importer), and becomes a plan of
// records — FHIR resources (one record each), PDFs and images (the file plus its
// DocumentReference), DICOM studies (each file plus one ImagingStudy per study). Refused files
// say which field and why. Nothing here talks to the network.
import { DICOM_CONTENT_TYPE, digestFile, documentReference, FileProblem, imagingStudy, readDicomHeader, sniffContentType, type DicomHeader } from "../../../importer/attachments.ts";
import type { ImportedRecord, Importer } from "../../../importer/importer.ts";
import { FhirValidationError, loadJson, type Issue } from "../../../importer/json.ts";
import { bytesToHex0x, concatBytes, type Bytes } from "../../../core/bytes.ts";
import { ndjsonDigest, sourceDigest, type RecordIds } from "../../../core/recordIds.ts";

/** The reference imported files and forms use for the patient (the CLI's default subject). */
export const SUBJECT = "Patient/self";
/** DICOM headers are read from the first bytes of a file, never the pixel data. */
const DICOM_HEADER_BYTES = 4 << 20;

/** Where a resource came from: its file's digest and its index there — what names its record
 * (core/recordIds.ts: the same file imported again names the same records). A file added on
 * its own (docs/keys.md "Single files"): its SHA-256, index 0 for the file or the lone
 * resource, index 1 for a document's DocumentReference; a DICOM study's ImagingStudy: the
 * SHA-256 of its files' SHA-256s in the order dropped, index 0. */
export type Source = { digest: Bytes; index: number };

export type Upload =
  | { kind: "record"; record: ImportedRecord; source?: Source }
  | { kind: "file"; file: File; label: string; contentType: string; recordId: Uint8Array<ArrayBuffer> };

export type Found = {
  name: string;
  size: number;
  /** What the file was read as. */
  what: "FHIR Bundle" | "FHIR resource" | "FHIR NDJSON" | "Document" | "DICOM" | "Unknown";
  /** Records to add, in order (a file before the resource that describes it). */
  uploads: Upload[];
  /** Refusals: (field, reason); a refused file adds nothing. */
  issues: Issue[];
  /** The source digest (0x hex) of a Bundle or of NDJSON files dropped together: the same
   * file twice in the list is one. */
  digest?: string;
};

export function isRefused(found: Found): boolean {
  return found.issues.length > 0;
}

/** Resource types of the records a file will add (a described file counts with its resource). */
export function countByType(found: Found[]): Array<[string, number]> {
  const counts = new Map<string, number>();
  for (const f of found) {
    if (isRefused(f)) continue;
    for (const u of f.uploads) {
      const type = u.kind === "record" ? u.record.resourceType : u.contentType === DICOM_CONTENT_TYPE ? "DICOM file" : "File";
      counts.set(type, (counts.get(type) ?? 0) + 1);
    }
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function refused(file: File, what: Found["what"], issues: Issue[]): Found {
  return { name: file.name, size: file.size, what, uploads: [], issues };
}

function problemOf(error: unknown): Issue[] {
  if (error instanceof FhirValidationError) return error.issues;
  if (error instanceof FileProblem) return [[error.field, error.message]];
  throw error;
}

/** Read and check dropped files. DICOM files of one study are described together. */
export async function scanFiles(importer: Importer, files: File[], ids: RecordIds, onFile?: (name: string) => void): Promise<Found[]> {
  const found: Found[] = [];
  const dicom: Array<{ file: File; header: DicomHeader; at: number; recordId: Bytes; digest: Bytes }> = [];
  const ndjson: Array<{ name: string; bytes: Uint8Array; at: number }> = [];
  for (const file of files) {
    onFile?.(file.name);
    const head = new Uint8Array(await file.slice(0, 132).arrayBuffer());
    const sniffed = sniffContentType(head);
    try {
      if (sniffed === DICOM_CONTENT_TYPE) {
        const header = readDicomHeader(new Uint8Array(await file.slice(0, DICOM_HEADER_BYTES).arrayBuffer()));
        const { sha256 } = await digestFile(file);
        dicom.push({ file, header, at: found.length, recordId: await ids.of(sha256, 0), digest: sha256 });
        found.push({ name: file.name, size: file.size, what: "DICOM", uploads: [], issues: [] });
      } else if (sniffed !== null) {
        found.push(await scanDocument(importer, file, ids));
      } else if (/\.(ndjson|jsonl)$/i.test(file.name)) {
        ndjson.push({ name: file.name, bytes: new Uint8Array(await file.arrayBuffer()), at: found.length });
        found.push({ name: file.name, size: file.size, what: "FHIR NDJSON", uploads: [], issues: [] });
      } else {
        const bytes = new Uint8Array(await file.arrayBuffer());
        found.push(scanJson(importer, file, bytes, await sourceDigest(bytes)));
      }
    } catch (error) {
      found.push(refused(file, sniffed === DICOM_CONTENT_TYPE ? "DICOM" : /\.(ndjson|jsonl)$/i.test(file.name) ? "FHIR NDJSON" : "Unknown", problemOf(error)));
    }
  }
  await describeStudies(importer, dicom, found);
  await importNdjson(importer, ndjson, found);
  return found;
}

/** NDJSON files dropped together are one bulk export: references may cross files. */
async function importNdjson(importer: Importer, files: Array<{ name: string; bytes: Uint8Array; at: number }>, found: Found[]): Promise<void> {
  if (!files.length) return;
  // One source, as kizuna/client/importer.py ndjson_source: the digest of the files' digests in
  // the order dropped, each resource's index counted across the files.
  const digest = await ndjsonDigest(files.map((f) => f.bytes));
  const tag = bytesToHex0x(digest);
  try {
    let index = 0;
    importer.importNdjson(files).forEach((records, i) => {
      const slot = found[(files[i] as { at: number }).at] as Found;
      slot.digest = `${tag}:${i}`; // the same set dropped again is the same list, file by file
      slot.uploads.push(...records.map((record): Upload => ({ kind: "record", record, source: { digest, index: index++ } })));
    });
  } catch (error) {
    const issues = problemOf(error);
    for (const file of files) {
      const own = issues.filter(([path]) => path.startsWith(`${file.name}:`));
      // Every file of the export is refused with it (as import_ndjson refuses them together).
      (found[file.at] as Found).issues.push(...(own.length ? own : [["", "refused with the other NDJSON files dropped with it (see their problems)"] as Issue]));
    }
  }
}

function scanJson(importer: Importer, file: File, bytes: Uint8Array, digest: Bytes): Found {
  let data;
  try {
    data = loadJson(bytes, importer.rules.limits.jsonDepth);
  } catch (error) {
    const issues = problemOf(error);
    const looksBinary = bytes.subarray(0, 512).some((b) => b === 0);
    return refused(file, "Unknown", looksBinary ? [["file", "not a FHIR JSON, NDJSON, PDF, image or DICOM file"]] : issues);
  }
  try {
    if (data.resourceType === "Bundle") {
      const records = importer.importBundle(data);
      return {
        name: file.name, size: file.size, what: "FHIR Bundle", issues: [], digest: bytesToHex0x(digest),
        uploads: records.map((record, index) => ({ kind: "record", record, source: { digest, index } })),
      };
    }
    return {
      name: file.name, size: file.size, what: "FHIR resource", issues: [], digest: bytesToHex0x(digest),
      uploads: [{ kind: "record", record: importer.importResource(data), source: { digest, index: 0 } }],
    };
  } catch (error) {
    return refused(file, data.resourceType === "Bundle" ? "FHIR Bundle" : "FHIR resource", problemOf(error));
  }
}

async function scanDocument(importer: Importer, file: File, ids: RecordIds): Promise<Found> {
  const digest = await digestFile(file);
  const recordId = await ids.of(digest.sha256, 0); // the same file added again: the same record
  // As PatientClient.add_document: the description points at the file's record by its id.
  const described = documentReference(importer, digest, { subject: SUBJECT, title: file.name, url: `urn:kizuna:record:0x${hex(recordId)}` });
  return {
    name: file.name, size: file.size, what: "Document", issues: [], digest: bytesToHex0x(digest.sha256),
    uploads: [
      { kind: "file", file, label: described.record.scopeLabel, contentType: described.contentType, recordId },
      { kind: "record", record: described.record, source: { digest: digest.sha256, index: 1 } },
    ],
  };
}

async function describeStudies(importer: Importer, dicom: Array<{ file: File; header: DicomHeader; at: number; recordId: Bytes; digest: Bytes }>, found: Found[]): Promise<void> {
  const studies = new Map<string, typeof dicom>();
  for (const item of dicom) {
    const uid = item.header.StudyInstanceUID ?? "";
    studies.set(uid, [...(studies.get(uid) ?? []), item]);
  }
  for (const members of studies.values()) {
    try {
      const study = imagingStudy(importer, members.map((m) => m.header), { subject: SUBJECT });
      const studyDigest = await sourceDigest(concatBytes(...members.map((m) => m.digest)));
      members.forEach((m, i) => {
        const slot = found[m.at] as Found;
        slot.uploads.push({ kind: "file", file: m.file, label: study.scopeLabel, contentType: DICOM_CONTENT_TYPE, recordId: m.recordId });
        // The study's ImagingStudy goes with the last file of the study.
        if (i === members.length - 1) slot.uploads.push({ kind: "record", record: study, source: { digest: studyDigest, index: 0 } });
      });
    } catch (error) {
      for (const m of members) (found[m.at] as Found).issues.push(...problemOf(error));
    }
  }
}
