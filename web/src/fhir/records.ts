// The records the patient's pages show, after the page has downloaded and decrypted them.
// One definition shared by the app shell (which decrypts) and the pages (which render).

/** A FHIR resource as parsed JSON: only `resourceType` is known to be there. */
export interface FhirResource {
  readonly resourceType: string;
  readonly [element: string]: unknown;
}

export interface DecryptedRecord {
  /** The record id, 0x-prefixed hex (as the API writes it). */
  readonly recordId: string;
  /** The record's scope label (`Observation:vital-signs`, `DocumentReference`, ...), or null
   *  when this browser could not recover it from the blinded scope id. */
  readonly label: string | null;
  /** The content type the record was sealed with (`application/fhir+json`, `application/pdf`...). */
  readonly contentType: string;
  /** When the record was registered (Unix seconds, as the API's `created_at`). */
  readonly createdAt: number;
  /** The parsed FHIR resource, or null for a file (PDF, image, DICOM) or unreadable JSON. */
  readonly resource: FhirResource | null;
  /** The decrypted bytes, when the shell kept them (small files). */
  readonly bytes?: Uint8Array;
}

/** Downloads and decrypts one record's content on demand (a document's PDF or image). */
export type OpenRecord = (recordId: string) => Promise<Blob | Uint8Array>;

/** The record id that a `urn:kizuna:record:0x…` attachment URL points at (the file of a
 *  DocumentReference is its own record: kizuna/client/patient.py `add_document`), or null. */
export function recordIdFromUrl(url: unknown): string | null {
  if (typeof url !== "string") return null;
  const match = /^urn:kizuna:record:(0x[0-9a-fA-F]{64})$/.exec(url);
  return match ? match[1]!.toLowerCase() : null;
}
