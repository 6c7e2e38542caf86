// The patient's records as the pages show them: listed, downloaded and decrypted in this page
// (never on the service), FHIR JSON parsed. Files (PDF, images, DICOM) are decrypted on demand
// (openRecord), not up front. Kept in memory for the session; reloaded after an upload.

import type { DecryptedRecord, FhirResource } from "../fhir/records.ts";
import type { LabelledRecord, PatientClient } from "../patient/patient.ts";
import { utf8Decode } from "../core/bytes.ts";

/** Content types that hold one FHIR resource as JSON (what the importer and forms write). */
const FHIR_JSON = new Set(["application/fhir+json", "application/json"]);
const PARALLEL = 6;

export type LibraryProgress = { done: number; total: number };

function parsed(bytes: Uint8Array): FhirResource | null {
  try {
    const value: unknown = JSON.parse(utf8Decode(bytes));
    if (value && typeof value === "object" && typeof (value as { resourceType?: unknown }).resourceType === "string") {
      return value as FhirResource;
    }
  } catch {
    // Not JSON after all: shown as a file.
  }
  return null;
}

export function isFhirJson(contentType: string): boolean {
  return FHIR_JSON.has(contentType.split(";")[0]!.trim().toLowerCase());
}

/** Download and decrypt every record (FHIR JSON ones; files stay closed): one listing, then
 * the bulk read (PatientClient.readMany: one chain query for every commitment, the envelopes
 * 64 to a request, `PARALLEL` requests in flight) — not one listing and one chain query
 * per record. */
export async function loadLibrary(client: PatientClient, onProgress?: (p: LibraryProgress) => void): Promise<DecryptedRecord[]> {
  const listed: LabelledRecord[] = await client.records();
  const out: DecryptedRecord[] = listed.map((info) => ({
    recordId: info.id, label: info.label, contentType: info.contentType, createdAt: info.createdAt, resource: null,
  }));
  const fhir = listed.flatMap((info, index) => (isFhirJson(info.contentType) ? [{ info, index }] : []));
  let done = listed.length - fhir.length;
  onProgress?.({ done, total: listed.length });
  await client.readMany(fhir.map((f) => f.info), (i, _record, bytes) => {
    const at = fhir[i]!.index;
    out[at] = { ...out[at]!, resource: parsed(bytes) };
    done += 1;
    onProgress?.({ done, total: listed.length });
  }, PARALLEL);
  return out;
}

/** A file record's content, decrypted, as a Blob of its content type (for an inline view). */
export async function openRecordBlob(client: PatientClient, recordId: string, contentType: string): Promise<Blob> {
  const bytes = await client.readOwn(recordId);
  return new Blob([bytes as BlobPart], { type: contentType });
}
