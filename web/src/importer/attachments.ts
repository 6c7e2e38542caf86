// Files as records, as kizuna/storage/attachments.py makes them: the file's bytes are a record
// of their own (encrypted as they are), and a FHIR resource describes them — a PDF or image by a
// DocumentReference (content type, size, SHA-1 base64 as Attachment.hash, title, date), DICOM
// files of one study by an ImagingStudy (UIDs, series, modalities, counts; headers only).
import { sha1 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToBase64 } from "../core/bytes.ts";
import { datetimeProblem } from "./dates.ts";
import type { JsonObject } from "./json.ts";
import type { ImportedRecord, Importer } from "./importer.ts";

export const DICOM_CONTENT_TYPE = "application/dicom";
export const DOCUMENT_TYPES = ["application/pdf", "image/png", "image/jpeg", "image/gif", "image/tiff", "image/webp"];
const UNSIGNED_INT_MAX = 2 ** 31 - 1;
const CHUNK = 1 << 20;

const MAGIC: Array<[number, number[], string]> = [
  // DICOM first: its 128-byte preamble may itself hold a TIFF header (dual-format files).
  [128, [0x44, 0x49, 0x43, 0x4d], DICOM_CONTENT_TYPE],
  [0, [0x25, 0x50, 0x44, 0x46, 0x2d], "application/pdf"],
  [0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "image/png"],
  [0, [0xff, 0xd8, 0xff], "image/jpeg"],
  [0, [0x47, 0x49, 0x46, 0x38, 0x37, 0x61], "image/gif"],
  [0, [0x47, 0x49, 0x46, 0x38, 0x39, 0x61], "image/gif"],
  [0, [0x49, 0x49, 0x2a, 0x00], "image/tiff"],
  [0, [0x4d, 0x4d, 0x00, 0x2a], "image/tiff"],
];

/** attachments.sniff_content_type: the media type from a file's first (132+) bytes. */
export function sniffContentType(head: Uint8Array): string | null {
  for (const [offset, magic, type] of MAGIC) {
    if (magic.every((b, i) => head[offset + i] === b)) return type;
  }
  const ascii = (from: number, to: number) => String.fromCharCode(...head.subarray(from, to));
  if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "image/webp";
  return null;
}

/** A problem with a file, naming the field as the Python side does (InputError). */
export class FileProblem extends Error {
  readonly field: string;
  constructor(field: string, reason: string) {
    super(reason);
    this.name = "FileProblem";
    this.field = field;
  }
}

/** `sha256`: the file's SHA-256, the source digest of its record id (core/recordIds.ts). */
export type FileDigest = { size: number; sha1Base64: string; sha256: Uint8Array<ArrayBuffer>; head: Uint8Array };


/** Size, SHA-1 and first bytes of a file, read in 1 MiB slices (memory stays flat). */
export async function digestFile(file: Blob, onProgress?: (read: number, total: number) => void): Promise<FileDigest> {
  const hash = sha1.create();
  const whole = sha256.create(); // streamed too: a 100 MB file is read once, in flat memory
  let head = new Uint8Array(0);
  for (let offset = 0; offset < file.size; offset += CHUNK) {
    const chunk = new Uint8Array(await file.slice(offset, offset + CHUNK).arrayBuffer());
    if (offset === 0) head = chunk.slice(0, 132);
    hash.update(chunk);
    whole.update(chunk);
    onProgress?.(Math.min(offset + CHUNK, file.size), file.size);
  }
  return { size: file.size, sha1Base64: bytesToBase64(hash.digest()), sha256: Uint8Array.from(whole.digest()), head };
}

/** A FHIR instant to the second in UTC, as attachments._instant writes it. */
export function instant(moment: Date): string {
  return `${moment.toISOString().slice(0, 19)}Z`;
}

export type DocumentOptions = {
  subject: string;
  title?: string | null;
  contentType?: string | null;
  date?: Date;
  created?: string | null;
  url?: string | null;
  resourceId?: string;
};

/** attachments.document_reference: a PDF or image described as a DocumentReference record. */
export function documentReference(importer: Importer, digest: FileDigest, o: DocumentOptions): { record: ImportedRecord; resource: JsonObject; contentType: string } {
  const sniffed = sniffContentType(digest.head);
  const chosen = o.contentType ?? sniffed;
  if (chosen === null) throw new FileProblem("content_type", "not a PDF or image Kizuna recognises; name its type");
  if (chosen === DICOM_CONTENT_TYPE || sniffed === DICOM_CONTENT_TYPE) throw new FileProblem("content_type", "a DICOM file: describe it with imaging_study()");
  if (sniffed !== null && o.contentType && sniffed !== o.contentType) throw new FileProblem("content_type", `the bytes are ${sniffed}, not ${o.contentType}`);
  if (!DOCUMENT_TYPES.includes(chosen)) throw new FileProblem("content_type", `${chosen} is not one of ${[...DOCUMENT_TYPES].sort().join(", ")}`);
  const attachment: Record<string, unknown> = { contentType: chosen, hash: digest.sha1Base64 };
  if (digest.size <= UNSIGNED_INT_MAX) attachment.size = digest.size;
  if (o.title) attachment.title = o.title;
  if (o.created) attachment.creation = o.created;
  if (o.url) attachment.url = o.url;
  const resource: Record<string, unknown> = {
    resourceType: "DocumentReference",
    id: o.resourceId ?? crypto.randomUUID(),
    status: "current",
    subject: { reference: o.subject },
    date: instant(o.date ?? new Date()),
    content: [{ attachment }],
  };
  if (o.title) resource.description = o.title;
  const validated = importer.validator.validate(JSON.stringify(resource));
  return { record: importer.recordFor(validated), resource: validated, contentType: chosen };
}

// --- DICOM --------------------------------------------------------------------------------------

/** The header attributes an ImagingStudy needs, by keyword (attachments.imaging_study_resource). */
const TAGS: Record<string, string> = {
  "00080016": "SOPClassUID", "00080018": "SOPInstanceUID", "00080020": "StudyDate", "00080030": "StudyTime",
  "00080050": "AccessionNumber", "00080060": "Modality", "00080201": "TimezoneOffsetFromUTC",
  "00081030": "StudyDescription", "0008103E": "SeriesDescription", "00180015": "BodyPartExamined",
  "0020000D": "StudyInstanceUID", "0020000E": "SeriesInstanceUID", "00200011": "SeriesNumber", "00200013": "InstanceNumber",
};
const LONG_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]);
const UNDEFINED = 0xffffffff;

export type DicomHeader = Record<string, string>;

/** Read the attributes of TAGS from a DICOM Part 10 file's first bytes (until the pixel data).
 * Explicit and implicit VR little endian (what nearly every file uses); others are refused. */
export function readDicomHeader(bytes: Uint8Array): DicomHeader {
  if (sniffContentType(bytes.subarray(0, 132)) !== DICOM_CONTENT_TYPE) throw new FileProblem("file", "not a DICOM file (no DICM preamble)");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = (at: number, length: number) => new TextDecoder("latin1").decode(bytes.subarray(at, at + length));
  const found: DicomHeader = {};
  let pos = 132;
  let syntax = "";
  // File meta information: always explicit VR little endian.
  while (pos + 8 <= bytes.length && view.getUint16(pos, true) === 0x0002) {
    const element = view.getUint16(pos + 2, true);
    const vr = text(pos + 4, 2);
    let length: number, start: number;
    if (LONG_VRS.has(vr)) { length = view.getUint32(pos + 8, true); start = pos + 12; }
    else { length = view.getUint16(pos + 6, true); start = pos + 8; }
    if (element === 0x0010) syntax = clean(text(start, length));
    pos = start + length;
  }
  if (syntax === "1.2.840.10008.1.2.2") throw new FileProblem("file", "big-endian DICOM is not read in the page");
  if (syntax === "1.2.840.10008.1.2.1.99") throw new FileProblem("file", "deflated DICOM is not read in the page");
  const implicit = syntax === "1.2.840.10008.1.2";
  const end = readDataset(bytes, view, pos, implicit, found, 0);
  if (end < 0) throw new FileProblem("file", "the DICOM header is cut short (the file is incomplete)");
  return found;
}

function clean(value: string): string {
  return value.replace(/[\0 ]+$/, "").trim();
}

/** Walk one dataset (top level, or an item); returns where it ended, -1 if cut short. */
function readDataset(bytes: Uint8Array, view: DataView, start: number, implicit: boolean, found: DicomHeader | null, depth: number, limit = bytes.length): number {
  if (depth > 32) throw new FileProblem("file", "DICOM sequences nested too deeply");
  let pos = start;
  while (pos < limit) {
    if (pos + 8 > bytes.length) return -1;
    const group = view.getUint16(pos, true), element = view.getUint16(pos + 2, true);
    if (group === 0xfffe && element === 0xe00d) return pos + 8; // item delimiter
    if (group === 0x7fe0 && element === 0x0010 && depth === 0) return pos; // pixel data: stop
    let vr = "", length: number, valueStart: number;
    if (implicit) {
      length = view.getUint32(pos + 4, true);
      valueStart = pos + 8;
    } else {
      vr = String.fromCharCode(bytes[pos + 4] as number, bytes[pos + 5] as number);
      if (LONG_VRS.has(vr)) {
        if (pos + 12 > bytes.length) return -1;
        length = view.getUint32(pos + 8, true);
        valueStart = pos + 12;
      } else {
        length = view.getUint16(pos + 6, true);
        valueStart = pos + 8;
      }
    }
    if (length === UNDEFINED) {
      pos = skipSequence(bytes, view, valueStart, implicit, depth);
      if (pos < 0) return -1;
      continue;
    }
    if (valueStart + length > bytes.length) return -1;
    if (found !== null && depth === 0) {
      const tag = (group.toString(16).padStart(4, "0") + element.toString(16).padStart(4, "0")).toUpperCase();
      const keyword = TAGS[tag];
      if (keyword) found[keyword] = clean(new TextDecoder("latin1").decode(bytes.subarray(valueStart, valueStart + length)));
    }
    pos = valueStart + length;
  }
  return pos;
}

/** Skip a sequence of undefined length: items until the sequence delimiter. */
function skipSequence(bytes: Uint8Array, view: DataView, start: number, implicit: boolean, depth: number): number {
  let pos = start;
  for (;;) {
    if (pos + 8 > bytes.length) return -1;
    const group = view.getUint16(pos, true), element = view.getUint16(pos + 2, true);
    const length = view.getUint32(pos + 4, true);
    if (group === 0xfffe && element === 0xe0dd) return pos + 8;
    if (group !== 0xfffe || element !== 0xe000) throw new FileProblem("file", "a DICOM sequence is malformed");
    if (length === UNDEFINED) {
      pos = readDataset(bytes, view, pos + 8, implicit, null, depth + 1);
      if (pos < 0) return -1;
    } else pos += 8 + length;
  }
}

function number(header: DicomHeader, keyword: string): number | null {
  const value = header[keyword];
  return value && /^[+-]?\d+$/.test(value) ? Number(value) : null;
}

function started(header: DicomHeader): string | null {
  const day = header.StudyDate;
  if (!day || !/^\d{8}$/.test(day)) return null;
  let value = `${day.slice(0, 4)}-${day.slice(4, 6)}-${day.slice(6)}`;
  const time = (header.StudyTime ?? "").split(".")[0] ?? "";
  const zone = header.TimezoneOffsetFromUTC;
  if (/^\d+$/.test(time) && [2, 4, 6].includes(time.length) && zone && zone.length === 5) {
    value = `${value}T${time.slice(0, 2)}:${time.slice(2, 4) || "00"}:${time.slice(4, 6) || "00"}${zone.slice(0, 3)}:${zone.slice(3)}`;
  }
  return value;
}

const DCM = "http://dicom.nema.org/resources/ontology/DCM";

/** attachments.imaging_study: the DICOM files of one study as an ImagingStudy record. */
export function imagingStudy(importer: Importer, headers: DicomHeader[], o: { subject: string; resourceId?: string }): ImportedRecord {
  if (!headers.length) throw new FileProblem("files", "no DICOM files given");
  const studies = new Set(headers.map((h) => h.StudyInstanceUID || null));
  if (studies.size !== 1 || studies.has(null)) {
    throw new FileProblem("files", `expected the files of one study, got StudyInstanceUIDs ${[...studies].map(String).sort().join(", ")}`);
  }
  const studyUid = [...studies][0] as string;
  const series = new Map<string, DicomHeader[]>();
  for (const h of headers) {
    if (!h.SeriesInstanceUID || !h.SOPInstanceUID) throw new FileProblem("files", "a DICOM file without SeriesInstanceUID or SOPInstanceUID");
    const members = series.get(h.SeriesInstanceUID) ?? [];
    members.push(h);
    series.set(h.SeriesInstanceUID, members);
  }
  const cmp = (a: [number, string], b: [number, string]) => (a[0] - b[0]) || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
  const ordered = [...series.entries()].sort((a, b) => cmp([number(a[1][0] as DicomHeader, "SeriesNumber") ?? 0, a[0]], [number(b[1][0] as DicomHeader, "SeriesNumber") ?? 0, b[0]]));
  const modalities: string[] = [];
  const seriesJson = ordered.map(([uid, members]) => {
    const first = members[0] as DicomHeader;
    const entry: Record<string, unknown> = { uid };
    const n = number(first, "SeriesNumber");
    if (n !== null) entry.number = n;
    const modality = first.Modality || "OT";
    if (!modalities.includes(modality)) modalities.push(modality);
    entry.modality = { system: DCM, code: modality };
    if (first.SeriesDescription) entry.description = first.SeriesDescription;
    entry.numberOfInstances = members.length;
    if (first.BodyPartExamined) entry.bodySite = { display: first.BodyPartExamined };
    entry.instance = [...members]
      .sort((a, b) => cmp([number(a, "InstanceNumber") ?? 0, a.SOPInstanceUID ?? ""], [number(b, "InstanceNumber") ?? 0, b.SOPInstanceUID ?? ""]))
      .map((h) => {
        const instance: Record<string, unknown> = { uid: h.SOPInstanceUID, sopClass: { system: "urn:ietf:rfc:3986", code: `urn:oid:${h.SOPClassUID ?? "None"}` } };
        const k = number(h, "InstanceNumber");
        if (k !== null) instance.number = k;
        return instance;
      });
    return entry;
  });
  const first = headers[0] as DicomHeader;
  const identifier: unknown[] = [{ system: "urn:dicom:uid", value: `urn:oid:${studyUid}` }];
  if (first.AccessionNumber) {
    identifier.push({ type: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v2-0203", code: "ACSN" }] }, value: first.AccessionNumber });
  }
  const resource: Record<string, unknown> = {
    resourceType: "ImagingStudy", id: o.resourceId ?? crypto.randomUUID(), identifier, status: "available",
    modality: modalities.map((m) => ({ system: DCM, code: m })), subject: { reference: o.subject },
    numberOfSeries: seriesJson.length, numberOfInstances: headers.length, series: seriesJson,
  };
  const when = started(first);
  if (when && datetimeProblem(when) === null) resource.started = when;
  if (first.StudyDescription) resource.description = first.StudyDescription;
  return importer.recordFor(importer.validator.validate(JSON.stringify(resource)));
}
