// The cohort's data as FHIR Bulk Data NDJSON, as kizuna/research/export.py writes it (and
// kizuna/research/studies.py export_study feeds it): one file per resource type
// (`Observation.ndjson`), in the order the resources were read, one resource per line as
// Python's json.dumps(resource, ensure_ascii=False, separators=(",", ":")) of json.loads(content)
// — so the page's files are Python's byte for byte for the same cohort. A DICOM copy (bytes
// 128-131 "DICM") is its own file, dicom/<sha256>.dcm, as in Python.

import { bytesToHex } from "../core/bytes.ts";
import { InputError } from "../core/errors.ts";
import { isObject, JsonNumber, loadJson, type Json } from "../importer/json.ts";

/** kizuna/jsondepth.py's limit, as the importer reads FHIR JSON. */
const MAX_DEPTH = 100;

/** repr() of the Python float a JSON decimal literal reads as: the shortest round-trip digits,
 * fixed notation while the decimal point falls within 16 digits (".0" when integral), else
 * d.ddde±XX with at least two exponent digits. */
export function pyFloatRepr(literal: string): string {
  const x = Number(literal);
  if (Number.isNaN(x)) throw new InputError("content", `${literal} is not a JSON number`);
  if (!Number.isFinite(x)) return x > 0 ? "Infinity" : "-Infinity"; // json.dumps of inf
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const [mantissa = "", exponent = "0"] = Math.abs(x).toExponential().split("e");
  const digits = mantissa.replace(".", "");
  const point = Number(exponent) + 1; // x = 0.d1d2... × 10^point
  if (point <= -4 || point > 16) {
    const e = point - 1;
    return `${sign}${digits[0]}${digits.length > 1 ? `.${digits.slice(1)}` : ""}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${"0".repeat(point - digits.length)}.0`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** json.dumps(value, ensure_ascii=False, separators=(",", ":")) of what json.loads read:
 * strings escaped as Python escapes them (the same set JSON.stringify escapes, lower-case
 * \u00xx), integers with every digit, decimals as Python floats, keys in their order. */
export function pythonJsonLine(value: Json): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "string") return JSON.stringify(value);
  if (value instanceof JsonNumber) return value.isInteger ? String(BigInt(value.text)) : pyFloatRepr(value.text);
  if (Array.isArray(value)) return `[${value.map(pythonJsonLine).join(",")}]`;
  return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${pythonJsonLine(v)}`).join(",")}}`;
}

export type BulkFile = { name: string; type: string; count: number; content: Uint8Array<ArrayBuffer> };

export function isDicom(content: Uint8Array): boolean {
  return content.length >= 132 && content[128] === 0x44 && content[129] === 0x49 && content[130] === 0x43 && content[131] === 0x4d;
}

/** The Bulk Data files of `contents` (each a record's plaintext, in read order): one NDJSON
 * file per resource type in first-seen order, then the DICOM files. A content that is neither
 * FHIR JSON with a resource type nor DICOM is refused, naming its position. */
export async function bulkFiles(contents: readonly Uint8Array[]): Promise<BulkFile[]> {
  const lines = new Map<string, string[]>();
  const dicoms: BulkFile[] = [];
  const encoder = new TextEncoder();
  for (const [i, content] of contents.entries()) {
    if (isDicom(content)) {
      const copy = new Uint8Array(content);
      const digest = bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-256", copy)));
      dicoms.push({ name: `dicom/${digest}.dcm`, type: "dicom", count: 1, content: copy });
      continue;
    }
    const resource = loadJson(content, MAX_DEPTH);
    const kind = isObject(resource) ? resource.resourceType : undefined;
    if (typeof kind !== "string" || !/^[A-Za-z]+$/.test(kind)) {
      throw new InputError("resourceType", `record ${i + 1} of the cohort is not a resource type: ${JSON.stringify(kind ?? null)}`);
    }
    const list = lines.get(kind) ?? [];
    list.push(pythonJsonLine(resource) + "\n");
    lines.set(kind, list);
  }
  const files: BulkFile[] = [...lines].map(([type, list]) => ({ name: `${type}.ndjson`, type, count: list.length, content: encoder.encode(list.join("")) }));
  return [...files, ...dicoms];
}
