// The patient's data requests to providers in the page (kizuna/client/data_requests.py ask and
// receive; kizuna/api/routes/data_requests.py):
//
// * ask: the provider must be active in the registry (read from the chain before anything is
//   sent); the note is sealed HERE to the provider's registry key (the same envelope as
//   encrypt_bytes(note, owner_key=provider key, record_id=random, content_type="text/plain"));
//   the request's commitment (services/data_requests.request_commitment, byte for byte) is
//   logged by the patient's OWN transaction (logCareEvent DataRequested), then the service
//   records the request once it finds that event.
// * receive: every delivered file is checked against the commitment the provider's answer
//   names, the answer against its own on-chain CareEventLogged event (recomputed here from what
//   the service says), decrypted with the patient's key, and taken in as the patient's records
//   — ONE batch (importRecords), with a Provenance per resource naming the provider and the
//   request (client/data_requests.provenance, the same ids). Each entry's record id is
//   Python's (client/data_requests.received_record_ids): the import id key over the delivered
//   file's commitment and the entry's position in that file (resource k at 2k, its Provenance
//   at 2k + 1). So a file taken in twice is registered once, and the page can tell, from one
//   id per file, which files are in the record already (filesLeft).

import * as umbral from "@nucypher/umbral-pre";
import { encodeFunctionData, parseAbi, parseEventLogs, type Hex } from "viem";
import { ok, rawFetch, type Schemas } from "../api/client.ts";
import { bytesToBase64, bytesToHex0x, concatBytes, hexToBytes, utf8Decode, utf8Encode, type Bytes } from "../core/bytes.ts";
import { commitmentOf, decryptBytes, encryptBytes } from "../core/envelope.ts";
import { InputError, IntegrityError } from "../core/errors.ts";
import { dateProblem } from "../importer/dates.ts";
import { Importer } from "../importer/importer.ts";
import { FhirValidationError, type JsonObject } from "../importer/json.ts";
import { loadRules } from "../importer/rules.ts";
import type { BatchOut, ImportProgress } from "./batches.ts";
import { checkedAddress } from "./chain.ts";
import type { PatientClient } from "./patient.ts";

export type DataRequest = Schemas["DataRequestOut"];
export type DataRequestAnswer = Schemas["DataRequestAnswerOut"];

// services/data_requests.py's limits and vocabulary.
export const DEFAULT_DEADLINE_DAYS = 30;
export const MAX_DEADLINE_DAYS = 365;
export const MAX_TYPES = 64;
export const MAX_NOTE_BYTES = 64 << 10;

/** CareEventKind values (kizuna/chain/models.py, Ids.sol). */
export const DATA_REQUESTED = 8;
export const ANSWER_KINDS: Readonly<Record<string, number>> = {
  acknowledged: 9, "fulfilled-in-part": 10, fulfilled: 11, declined: 12,
};

/** A request's status (its state, or overdue past the deadline) in words. */
export const STATUS_TEXT: Readonly<Record<string, string>> = {
  open: "Open", acknowledged: "Acknowledged", "fulfilled-in-part": "Fulfilled in part",
  fulfilled: "Fulfilled", declined: "Declined", overdue: "Overdue",
};

/** The record types a patient usually asks for (any FHIR R4 type is accepted by the service). */
export const COMMON_TYPES: ReadonlyArray<{ type: string; text: string }> = [
  { type: "Observation", text: "Lab results and measurements" },
  { type: "DiagnosticReport", text: "Test and imaging reports" },
  { type: "Condition", text: "Diagnoses and problems" },
  { type: "MedicationRequest", text: "Prescriptions" },
  { type: "AllergyIntolerance", text: "Allergies" },
  { type: "Immunization", text: "Vaccinations" },
  { type: "Procedure", text: "Procedures and operations" },
  { type: "Encounter", text: "Visits and hospital stays" },
  { type: "DocumentReference", text: "Documents (letters, discharge summaries)" },
  { type: "ImagingStudy", text: "Imaging studies" },
  { type: "CarePlan", text: "Care plans" },
];

const LEDGER_ABI = parseAbi([
  "function logCareEvent(address patient, uint8 kind, bytes32 ref, address provider, bytes32 scopeId)",
  "event CareEventLogged(address indexed patient, address indexed provider, uint8 indexed kind, address actor, bytes32 ref, bool flaggedForReview)",
]);
const ZERO32: Hex = `0x${"0".repeat(64)}`;

// --- the committed documents (services/data_requests._digest) --------------------------------

/** json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True) for the plain
 * documents committed here (strings, whole numbers, null, lists, objects). */
export function pythonJson(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") {
    let s = '"';
    for (const ch of value) {
      const code = ch.codePointAt(0) as number;
      if (ch === '"') s += '\\"';
      else if (ch === "\\") s += "\\\\";
      else if (ch === "\n") s += "\\n";
      else if (ch === "\r") s += "\\r";
      else if (ch === "\t") s += "\\t";
      else if (ch === "\b") s += "\\b";
      else if (ch === "\f") s += "\\f";
      else if (code < 0x20 || code > 0x7e) {
        // ensure_ascii: \uXXXX, astral characters as their surrogate pair
        for (let i = 0; i < ch.length; i++) s += `\\u${ch.charCodeAt(i).toString(16).padStart(4, "0")}`;
      } else s += ch;
    }
    return s + '"';
  }
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new InputError("number", `${value} is not a whole number`);
    return String(value);
  }
  if (typeof value === "boolean") return value ? "true" : "false";
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(",")}]`;
  if (typeof value === "object") {
    // Python sorts str keys by code point; the keys here are ASCII, where UTF-16 order agrees.
    const keys = Object.keys(value as object).sort();
    return `{${keys.map((k) => `${pythonJson(k)}:${pythonJson((value as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  throw new InputError("value", `${typeof value} cannot be committed`);
}

async function digest(document: object): Promise<Bytes> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", utf8Encode(pythonJson(document))));
}

export type AskFields = { types: string[]; since: string | null; until: string | null; deadlineDays: number };

/** The request's fields as the service checks them (checked_fields): types sorted and
 * de-duplicated, FHIR dates, since ≤ until, a deadline of 1..365 days; InputError names the
 * field. (The service also checks each type against FHIR R4's resource types.) */
export function checkedFields(o: { types: readonly string[]; since?: string | null; until?: string | null; deadlineDays?: number | null }): AskFields {
  if (!Array.isArray(o.types) || o.types.length < 1 || o.types.length > MAX_TYPES) {
    throw new InputError("types", `ask for 1 to ${MAX_TYPES} resource types`);
  }
  o.types.forEach((name, i) => {
    if (typeof name !== "string" || !/^[A-Z][A-Za-z]{1,63}$/.test(name)) throw new InputError(`types[${i}]`, `${JSON.stringify(name)} is not a FHIR R4 resource type`);
  });
  const since = o.since || null, until = o.until || null;
  for (const [field, value] of [["since", since], ["until", until]] as const) {
    const problem = value === null ? null : dateProblem(value);
    if (problem) throw new InputError(field, problem);
  }
  if (since !== null && until !== null && since.padEnd(10, "-01") > until.padEnd(10, "-31")) {
    throw new InputError("until", `${until} is before since (${since})`);
  }
  const days = o.deadlineDays ?? DEFAULT_DEADLINE_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > MAX_DEADLINE_DAYS) {
    throw new InputError("deadline_days", `must be a whole number of days from 1 to ${MAX_DEADLINE_DAYS}`);
  }
  return { types: [...new Set(o.types)].sort(), since, until, deadlineDays: days };
}

/** The `ref` of a DataRequested event (request_commitment). */
export function requestCommitment(o: { patient: string; provider: string; fields: AskFields; noteRef: Uint8Array | null; nonce: Uint8Array }): Promise<Bytes> {
  return digest({
    kizuna: "data-request/1", patient: checkedAddress("patient", o.patient), provider: checkedAddress("provider", o.provider),
    types: o.fields.types, since: o.fields.since, until: o.fields.until, deadlineDays: o.fields.deadlineDays,
    note: o.noteRef ? bytesToHex0x(o.noteRef) : null, nonce: bytesToHex0x(checked32("nonce", o.nonce)),
  });
}

/** The `ref` of an answer's care event (answer_commitment). */
export function answerCommitment(o: { requestId: Uint8Array; state: string; reason: string | null; deliveries: readonly Uint8Array[]; nonce: Uint8Array }): Promise<Bytes> {
  return digest({
    kizuna: "data-request-answer/1", request: bytesToHex0x(checked32("request", o.requestId)), state: o.state,
    reason: o.reason, deliveries: o.deliveries.map((d) => bytesToHex0x(d)), nonce: bytesToHex0x(checked32("nonce", o.nonce)),
  });
}

function checked32(field: string, value: Uint8Array): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== 32) throw new InputError(field, "must be 32 bytes");
  return value;
}

// --- received files → records (client/data_requests.py received_bundle) ----------------------

const URL_NAMESPACE = hexToBytes("0x6ba7b8119dad11d180b400c04fd430c8");

/** uuid.uuid5(uuid.NAMESPACE_URL, name). */
export async function uuid5(name: string): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-1", concatBytes(URL_NAMESPACE, utf8Encode(name)))).slice(0, 16);
  hash[6] = ((hash[6] as number) & 0x0f) | 0x50;
  hash[8] = ((hash[8] as number) & 0x3f) | 0x80;
  const h = bytesToHex0x(hash).slice(2);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** _stable_id: the same id on every run. */
function stableId(...parts: string[]): Promise<string> {
  return uuid5(`urn:kizuna:data-request:${parts.join(":")}`);
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A Provenance for a received resource: authored by the provider, the request its source. */
export async function provenance(resource: JsonObject, request: DataRequest, answer: DataRequestAnswer): Promise<JsonObject> {
  const target = `${String(resource.resourceType)}/${String(resource.id)}`;
  return {
    resourceType: "Provenance", id: await stableId(answer.ref.slice(2).toLowerCase(), target),
    target: [{ reference: target }],
    recorded: iso(answer.answered_at),
    activity: { text: "Sent by the provider in answer to the patient's data request" },
    agent: [{
      type: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/provenance-participant-type", code: "author" }] },
      who: { identifier: { system: "urn:ethereum:address", value: request.provider } },
    }],
    entity: [
      { role: "source", what: { identifier: { system: "urn:kizuna:data-request", value: request.request_id.toLowerCase() } } },
      { role: "source", what: { identifier: { system: "urn:kizuna:care-event", value: answer.ref.toLowerCase() } } },
    ],
  };
}

/** The FHIR resources of one delivered file (_resources): a Bundle's entries, a resource, or
 * any other document wrapped in a DocumentReference with the file inline. */
export function resourcesOf(content: Uint8Array, contentType: string, title: string): JsonObject[] {
  const type = (contentType.split(";")[0] ?? "").trim().toLowerCase();
  if (type === "application/fhir+json" || type === "application/json") {
    let data: unknown;
    try {
      data = JSON.parse(utf8Decode(content));
    } catch {
      throw new InputError("delivery", `${title} is not JSON`);
    }
    if (typeof data !== "object" || data === null || Array.isArray(data) || typeof (data as JsonObject).resourceType !== "string") {
      throw new InputError("delivery", `${title} is not a FHIR resource`);
    }
    const object = data as JsonObject;
    if (object.resourceType === "Bundle") {
      const entries = Array.isArray(object.entry) ? object.entry : [];
      return entries.flatMap((e) => (typeof e === "object" && e !== null && !Array.isArray(e) && typeof (e as JsonObject).resource === "object"
        && (e as JsonObject).resource !== null && !Array.isArray((e as JsonObject).resource) ? [(e as JsonObject).resource as JsonObject] : []));
    }
    return [object];
  }
  return [{ resourceType: "DocumentReference", status: "current", content: [{ attachment: { contentType, title, data: bytesToBase64(content) } }] }];
}

/** Where a received entry came from: the delivered file's commitment, the entry's position. */
export type ReceivedSource = { commitment: Bytes; position: number };
export type Received = { bundle: JsonObject; files: number; sources: ReceivedSource[] };
/** added: records registered now; already: entries that were in the record before. */
export type ReceiveResult = { batches: BatchOut[]; resources: number; files: number; added: number; already: number };
type Delivery = DataRequestAnswer["deliveries"][number];

/** The files delivered for `request`, each once (a file two answers name is one file), with
 * the answer that sent it first. */
export function deliveriesOf(request: DataRequest): Array<{ answer: DataRequestAnswer; delivery: Delivery; n: number }> {
  const seen = new Set<string>();
  const out: Array<{ answer: DataRequestAnswer; delivery: Delivery; n: number }> = [];
  for (const answer of request.answers) {
    answer.deliveries.forEach((delivery, n) => {
      const key = delivery.commitment.toLowerCase();
      if (seen.has(key)) return;
      seen.add(key);
      out.push({ answer, delivery, n });
    });
  }
  return out;
}

export class DataRequests {
  readonly #client: PatientClient;

  constructor(client: PatientClient) {
    this.#client = client;
  }

  /** The patient's requests, newest first, with their status by chain time. */
  async list(): Promise<DataRequest[]> {
    return ok(await this.#client.context.api.GET("/patient/data-requests"));
  }

  /** Ask `provider` for records; the note (optional) is readable by that provider only. */
  async ask(provider: string, o: { types: readonly string[]; since?: string | null; until?: string | null; deadlineDays?: number | null; note?: string | null }): Promise<DataRequest> {
    const ctx = this.#client.context;
    ctx.ownOnly("Asking a provider for records");
    const to = checkedAddress("provider", provider);
    const fields = checkedFields(o);
    const entry = await ctx.chain.activeProvider(to); // before any transaction
    const text = o.note?.trim() ? o.note : null;
    let noteId: Bytes | null = null, note: Bytes | null = null;
    if (text !== null) {
      const plain = utf8Encode(text);
      if (plain.length > MAX_NOTE_BYTES) throw new InputError("note", `the note is ${plain.length} bytes, at most ${MAX_NOTE_BYTES}`);
      const ownerKey = umbral.PublicKey.fromCompressedBytes(entry.umbralPublicKey);
      try {
        noteId = crypto.getRandomValues(new Uint8Array(32));
        note = await encryptBytes(plain, { ownerKey, recordId: noteId, contentType: "text/plain" });
      } finally {
        ownerKey.free();
      }
    }
    const nonce = crypto.getRandomValues(new Uint8Array(32));
    const ref = await requestCommitment({ patient: ctx.patient, provider: to, fields, noteRef: note ? await commitmentOf(note) : null, nonce });
    const what = fields.types.join(", ");
    const txHash = await ctx.signer.sendTransaction({
      to: ctx.contract("ConsentLedger"),
      data: encodeFunctionData({ abi: LEDGER_ABI, functionName: "logCareEvent", args: [ctx.patient, DATA_REQUESTED, bytesToHex0x(ref), to, ZERO32] }),
    }, {
      title: "Ask a provider for your records",
      why: "Records on the blockchain, with its date, that you asked this provider for your records: you can prove when you asked (they have 30 days to answer by law in most places). Only a fingerprint of the request is public; your note is encrypted to the provider. Your wallet sends this transaction and pays its network fee.",
      details: [["Provider", to], ["Records", what], ["Answer within", `${fields.deadlineDays} days`], ["Reference", bytesToHex0x(ref)]],
    });
    return ok(await ctx.api.POST("/patient/data-requests", { body: {
      provider: to, types: fields.types, since: fields.since, until: fields.until, deadline_days: fields.deadlineDays,
      nonce: bytesToHex0x(nonce), note_id: noteId ? bytesToHex0x(noteId) : null, note: note ? bytesToHex0x(note) : null, tx_hash: txHash,
    } }));
  }

  /** Every file sent for `request`, checked and decrypted, as one collection Bundle with a
   * Provenance per resource (received_bundle). */
  async received(request: DataRequest): Promise<Received> {
    const ctx = this.#client.context;
    const entries: JsonObject[] = [];
    const sources: ReceivedSource[] = [];
    const taken = new Set(deliveriesOf(request).map((d) => d.delivery));
    let files = 0;
    for (const answer of request.answers) {
      if (answer.deliveries.length === 0) continue;
      const expected = await answerCommitment({
        requestId: hexToBytes(request.request_id, "request_id"), state: answer.state, reason: answer.reason ?? null,
        deliveries: answer.deliveries.map((d) => hexToBytes(d.commitment, "commitment")), nonce: hexToBytes(answer.nonce, "nonce"),
      });
      if (bytesToHex0x(expected) !== answer.ref.toLowerCase()) {
        throw new IntegrityError("The service's account of the provider's answer does not match its on-chain reference: nothing was taken in.");
      }
      await this.#checkOnChain(request, answer);
      for (const [n, d] of answer.deliveries.entries()) {
        if (!taken.has(d)) continue; // named by an earlier answer: taken once
        const response = await rawFetch(ctx.apiOptions, `/data-requests/${request.request_id}/deliveries/${d.commitment}/content`);
        const envelope = new Uint8Array(await response.arrayBuffer());
        if (bytesToHex0x(await commitmentOf(envelope)) !== d.commitment.toLowerCase()) {
          throw new IntegrityError(`File ${n + 1} is not the one the provider sent on-chain: nothing was taken in.`);
        }
        const content = await decryptBytes(envelope, { ownerSecretKey: ctx.keys.decryptingKey });
        files += 1;
        const commitment = hexToBytes(d.commitment, "commitment");
        for (const [k, original] of resourcesOf(content, d.content_type, `file ${n + 1}`).entries()) {
          const resource: JsonObject = { ...original };
          if (resource.id === undefined) resource.id = await stableId(d.commitment.slice(2).toLowerCase(), String(k));
          entries.push({ resource });
          entries.push({ resource: await provenance(resource, request, answer) });
          sources.push({ commitment, position: 2 * k }, { commitment, position: 2 * k + 1 });
        }
      }
    }
    return { bundle: { resourceType: "Bundle", type: "collection", entry: entries }, files, sources };
  }

  /** How many of `request`'s delivered files are not in the record yet: a file is in it when
   * its first entry's record id is one of `registered` (the patient's record ids, from
   * PatientClient.registeredIds; a file is taken in whole, in one batch). */
  async filesLeft(request: DataRequest, registered: ReadonlySet<string>): Promise<number> {
    const ids = await this.#client.recordIds();
    let left = 0;
    for (const { delivery } of deliveriesOf(request)) {
      if (!registered.has(bytesToHex0x(await ids.of(hexToBytes(delivery.commitment, "commitment"), 0)))) left += 1;
    }
    return left;
  }

  /** Take every file sent for `request` in as the patient's records: one batch, one wallet
   * signature (receive). */
  async receive(request: DataRequest, onProgress?: (p: ImportProgress) => void): Promise<ReceiveResult> {
    // The files are sealed to the patient's own inbox key and named by their import id key:
    // a guardian's keys open neither (the page says so instead of offering the button).
    this.#client.context.ownOnly("Adding the files a provider sent");
    const { bundle, files, sources } = await this.received(request);
    const entries = bundle.entry as JsonObject[];
    if (entries.length === 0) throw new InputError("request", "the provider has sent nothing for this request yet");
    const importer = new Importer(await loadRules());
    // As text: the importer reads numbers at their written precision (its own JSON reader).
    let records;
    try {
      records = importer.importBundle(JSON.stringify(bundle));
    } catch (error) {
      if (!(error instanceof FhirValidationError)) throw error;
      const shown = error.issues.slice(0, 3).map(([path, why]) => `${path.replace(/^Bundle\./, "")}: ${why}`).join("; ");
      throw new InputError("delivery", `the records the provider sent are not valid FHIR (${shown}${error.issues.length > 3 ? "; …" : ""}); nothing was added: ask the provider to send them again`);
    }
    const ids = await this.#client.recordIds();
    const items = await Promise.all(records.map(async (r, i) => this.#client.importItem({
      content: r.content, label: r.scopeLabel, contentType: r.contentType,
      recordId: await ids.of(sources[i]!.commitment, sources[i]!.position),
    })));
    const batches = await this.#client.importRecords(items, onProgress);
    const already = items.filter((item) => item.existing).length;
    return { batches, resources: entries.length, files, added: items.length - already, already };
  }

  async #checkOnChain(request: DataRequest, answer: DataRequestAnswer): Promise<void> {
    const receipt = await this.#client.context.chain.client.getTransactionReceipt({ hash: answer.tx_hash as Hex });
    const logs = parseEventLogs({ abi: LEDGER_ABI, eventName: "CareEventLogged", logs: receipt.logs });
    const found = logs.some((log) => log.address.toLowerCase() === this.#client.context.contract("ConsentLedger").toLowerCase()
      && log.args.ref.toLowerCase() === answer.ref.toLowerCase()
      && log.args.actor.toLowerCase() === request.provider.toLowerCase()
      && log.args.patient.toLowerCase() === request.patient.toLowerCase()
      && log.args.kind === ANSWER_KINDS[answer.state]);
    if (!found) throw new IntegrityError(`Transaction ${answer.tx_hash} does not log the provider's answer the service describes: nothing was taken in.`);
  }
}
