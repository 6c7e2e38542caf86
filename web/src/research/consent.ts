// Taking part in a research study from the page: Python's consent_to_study
// (kizuna/research/studies.py) step for step, over the page's own patient client.
//
//   1. prepare(): the patient's records of the scopes they chose are decrypted here (readMany,
//      each checked against its on-chain commitment), and the de-identified copy is made here
//      (deidentify.ts, byte for byte Python's) with the patient's key for this study. Nothing
//      leaves the page in this step; the page shows what the copy holds (resources per type,
//      what is left out) before anything is sent.
//   2. consent(): the copy is imported as the patient's own records of the study's scope
//      (`ResearchStudy:<study id>`, blinded like every scope) by the page's batch import
//      (patient/batches.ts: encrypted here, staged, ONE RegisterBatch signature), the scope is
//      granted to the study's researcher until the study's end (patient/grants.ts: the
//      researcher's key fragments made here), and LAST the consent is recorded in the study
//      registry: StudyConsent signed by the wallet and relayed by the service
//      (POST /wallet/prepare/study-consent, POST /wallet/relay), or the wallet's own
//      transaction ("pay the fee myself").
//
// Nothing half-done: the consent is the last step, so a failure before it leaves no consent on
// the chain. A retry with the same StudyCopy resumes: the copy's record ids are deterministic
// (Python's import rule over the copy's digest, so the same copy names the same records, in the
// page and in `kizuna patient consent`), records already registered are skipped, a live
// grant is not granted again, a consent already recorded is not sent again. abandon() stops
// sharing the copy (revokes the grant) when the patient gives up after the grant.
//
// DICOM files go through Python's PS3.15 Basic Profile with the study's UID key, in the page
// (dicom.ts, loaded only when a DICOM file is among the chosen parts), their copies after the
// FHIR resources' as consent_to_study orders them. A file the page does not read (big endian,
// deflated...) is refused by name, pointing to the command line, which can; a file Python's
// profile refuses (burned-in annotation) is refused as Python refuses it.

import { decodeEventLog, getAddress, parseAbi, parseAbiItem, type Hex } from "viem";
import { ok } from "../api/client.ts";
import { bytesToHex0x, concatBytes, hexToBytes, type Bytes } from "../core/bytes.ts";
import { InputError, IntegrityError, KizunaError } from "../core/errors.ts";
import { canonicalJson, CONTENT_TYPE } from "../importer/canonical.ts";
import { FhirValidationError, loadJson, type JsonObject } from "../importer/json.ts";
import { DICOM_CONTENT_TYPE } from "../importer/attachments.ts";
import { inRecord, type ImportItem, type ImportProgress, type LabelledRecord, type PatientClient } from "../patient/patient.ts";
import { sourceDigest } from "../core/recordIds.ts";
import { studyLabel, type StudyView } from "../sharing/studies.ts";
import { countOf } from "../ui/format.ts";
import { Deidentifier, studyKey, type StudyKey } from "./deidentify.ts";

/** JSON nesting Python's reader allows (kizuna/jsondepth.py MAX_JSON_DEPTH). */
const MAX_JSON_DEPTH = 1000;
/** Resources de-identified between two yields to the page (keeps it responsive). */
const YIELD_EVERY = 250;

const STUDY_ABI = parseAbi([
  "function consentOf(bytes32 studyId, address patient) view returns (bytes32 scopeId, bool consented)",
]);
const STUDY_CONSENTED = parseAbiItem(
  "event StudyConsented(bytes32 indexed studyId, address indexed patient, bytes32 scopeId, uint64 expiresAt)",
);

/** The de-identified copy for one study, ready to send. Keep it across retries of consent(). */
export type StudyCopy = {
  readonly study: StudyView;
  readonly labels: readonly string[];
  /** The copy's records (the import's items: their ids and progress live on them). */
  readonly items: readonly ImportItem[];
  /** Resources in the copy, per FHIR type. */
  readonly counts: ReadonlyMap<string, number>;
  /** The patient's records read for it. */
  readonly read: number;
  /** The chosen labels of which the patient has no record (nothing of them in the copy). */
  readonly empty: readonly string[];
  /** Records not shared: people and places (Practitioner, Organization...), and files that are
   * neither FHIR nor DICOM. */
  readonly leftOut: number;
  /** The shift applied to every date, in days (shown to nobody but the patient). */
  readonly offsetDays: number;
};

export type ConsentStep = "reading" | "deidentifying" | "uploading" | "sharing" | "consenting" | "done";
export type ConsentProgress = { step: ConsentStep; done: number; total: number; import?: ImportProgress };

/** A record of the copy that could not be read or de-identified: which one, which element. */
export class RecordProblem extends KizunaError {
  override name = "RecordProblem";
  readonly record: string;
  readonly field: string;

  constructor(record: LabelledRecord, field: string, reason: string) {
    super(`Your record ${record.id.slice(0, 12)}… (${record.label ?? "an unnamed part"}) could not be de-identified: ` +
      `${field ? `${field}: ` : ""}${reason}. Nothing was sent.`, { details: `record ${record.id}` });
    this.record = record.id;
    this.field = field;
  }
}

/** A DICOM file among the chosen parts that the page does not read (dicom.ts DicomUnsupported:
 * big endian, deflated...); it is never sent as it is; retrying does not help, choosing other
 * parts or the CLI does. */
export class DicomNotHere extends KizunaError {
  override name = "DicomNotHere";
  readonly records: readonly string[];

  constructor(records: readonly LabelledRecord[], command: string, reason: string) {
    super(`${countOf(records.length, "DICOM image file")} in what you chose (${records.map((r) => `${r.id.slice(0, 12)}… of ${r.label}`).join(", ")}) ` +
      `cannot be de-identified in this page: ${reason}. It is never sent as it is. Leave that part out, or take part with the Kizuna command line, which can: ` +
      command, { details: records.map((r) => r.id).join(", ") });
    this.records = records.map((r) => r.id);
  }
}

/** Kinds the preview counts DICOM copies under. */
export const DICOM_KIND = "DICOM image";

const pause = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export class StudyConsent {
  readonly #client: PatientClient;

  constructor(client: PatientClient) {
    this.#client = client;
  }

  /** The patient's records of `labels` (which the study must ask for) de-identified for the
   * study, in the page; `asOf` ("YYYY-MM-DD") the day ages are counted at (today). */
  async prepare(study: StudyView, labels: readonly string[], onProgress?: (p: ConsentProgress) => void, asOf?: string): Promise<StudyCopy> {
    const client = this.#client;
    client.context.ownOnly("Taking part in a study");
    checkStudy(study, await client.now());
    const chosen = [...new Set(labels)];
    if (chosen.length === 0) throw new InputError("scope", "choose at least one of the parts of your record the study asks for");
    const extra = chosen.filter((label) => !study.scopes.includes(label));
    if (extra.length) throw new InputError("scope", `${extra.join(", ")} not asked for by the study (it asks for ${study.scopes.join(", ")})`);

    const records = (await client.records()).filter((r) => r.label !== null && chosen.includes(r.label));
    const command = `kizuna patient consent ${study.studyId} ${chosen.map((l) => `--scope ${l}`).join(" ")}`;
    // In the service's own order, oldest first (list_records: created_at, then record id), as
    // the command line reads them: the same copy in the same order makes the same digest, so
    // the page and `kizuna patient consent` name the same records.
    const wanted = records.filter((r) => r.contentType === CONTENT_TYPE || r.contentType === DICOM_CONTENT_TYPE)
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    let leftOut = records.length - wanted.length;
    onProgress?.({ step: "reading", done: 0, total: wanted.length });
    let readCount = 0;
    const contents = await client.readMany(wanted, () => {
      readCount += 1;
      onProgress?.({ step: "reading", done: readCount, total: wanted.length });
    });

    const resources: JsonObject[] = [];
    const fhirRecords: LabelledRecord[] = [];
    const dicoms: Array<{ record: LabelledRecord; content: Bytes }> = [];
    const types = new Map<string, string>();
    for (const [i, content] of contents.entries()) {
      const record = wanted[i]!;
      if (record.contentType === DICOM_CONTENT_TYPE) {
        dicoms.push({ record, content });
        continue;
      }
      fhirRecords.push(record);
      let resource: JsonObject;
      try {
        resource = loadJson(content, MAX_JSON_DEPTH);
      } catch (error) {
        if (error instanceof FhirValidationError) throw new RecordProblem(record, error.issues[0]?.[0] ?? "", error.issues[0]?.[1] ?? error.message);
        throw error;
      }
      resources.push(resource);
      const id = resource["id"];
      const kind = resource["resourceType"];
      if (typeof id === "string" && typeof kind === "string") types.set(id, kind);
    }

    const key = await studyKey(client.context.keys.decryptingKey.toBEBytes(), hexToBytes(study.studyId, "study"));
    const deid = new Deidentifier(key, { types, ...(asOf ? { asOf } : {}) });
    const copies: Bytes[] = [];
    const counts = new Map<string, number>();
    for (const [i, resource] of resources.entries()) {
      if (i % YIELD_EVERY === 0) {
        onProgress?.({ step: "deidentifying", done: i, total: resources.length });
        await pause();
      }
      let copy: JsonObject | null;
      try {
        copy = deid.resource(resource);
        if (copy !== null) copies.push(canonicalJson(copy) as Bytes);
      } catch (error) {
        if (error instanceof InputError) throw new RecordProblem(fhirRecords[i]!, error.field, error.reason);
        if (error instanceof FhirValidationError) throw new RecordProblem(fhirRecords[i]!, error.issues[0]?.[0] ?? "", error.issues[0]?.[1] ?? error.message);
        throw error;
      }
      if (copy === null) leftOut += 1;
      else {
        const kind = typeof copy["resourceType"] === "string" ? copy["resourceType"] : "Binary";
        counts.set(kind, (counts.get(kind) ?? 0) + 1);
      }
    }
    const dicomCopies = await deidentifyDicoms(dicoms, key, command, (done) => {
      onProgress?.({ step: "deidentifying", done: resources.length + done, total: resources.length + dicoms.length });
    });
    if (dicomCopies.length) counts.set(DICOM_KIND, dicomCopies.length);
    onProgress?.({ step: "deidentifying", done: resources.length + dicoms.length, total: resources.length + dicoms.length });

    // Record ids as the command line names them: the import rule over the copy's digest
    // (SHA-256 of its records' SHA-256s, in order: Python's consent_to_study, FHIR then DICOM).
    const fhirCount = copies.length;
    copies.push(...dicomCopies);
    const digests = await Promise.all(copies.map((c) => sourceDigest(c)));
    const digest = await sourceDigest(concatBytes(...digests));
    const ids = await client.recordIds();
    const label = studyLabel(study.studyId);
    const items: ImportItem[] = [];
    for (const [i, content] of copies.entries()) {
      const contentType = i < fhirCount ? CONTENT_TYPE : DICOM_CONTENT_TYPE;
      items.push(client.importItem({ content, label, contentType, recordId: await ids.of(digest, i) }));
    }
    const empty = chosen.filter((l) => !records.some((r) => r.label === l));
    return { study, labels: chosen, items, counts, read: records.length, empty, leftOut, offsetDays: key.offsetDays };
  }

  /** Share the copy and consent (the module text); resumable with the same `copy`. Returns the
   * consent's transaction hash (null: an earlier try had recorded it, its answer was lost). */
  async consent(copy: StudyCopy, onProgress?: (p: ConsentProgress) => void): Promise<Hex | null> {
    const client = this.#client;
    const ctx = client.context;
    const { study } = copy;
    ctx.ownOnly("Taking part in a study");
    if (copy.items.length === 0) throw new InputError("scope", `nothing of ${copy.labels.join(", ")} to share: the copy is empty`);
    checkStudy(study, await client.now());
    const registry = ctx.contract("StudyRegistry");
    const label = studyLabel(study.studyId);

    const total = copy.items.length;
    if (!copy.items.every(inRecord)) {
      await client.importRecords(copy.items, (p) => onProgress?.({ step: "uploading", done: p.registered, total, import: p }));
    }
    onProgress?.({ step: "sharing", done: 0, total: 1 });
    const { scopeId } = await client.scope(label);
    const scopeHex = bytesToHex0x(scopeId).toLowerCase();
    const grants = await client.grants();
    const live = grants.some((g) => g.live && getAddress(g.provider) === getAddress(study.researcher) && g.scopeId === scopeHex);
    if (!live) await client.grant(study.researcher, [label], study.endsAt);

    onProgress?.({ step: "consenting", done: 0, total: 1 });
    const [current, consented] = await ctx.chain.client.readContract({
      address: registry, abi: STUDY_ABI, functionName: "consentOf", args: [study.studyId, ctx.patient],
    });
    if (consented && current.toLowerCase() === scopeHex) {
      onProgress?.({ step: "done", done: 1, total: 1 });
      return null; // recorded by an earlier try whose answer was lost
    }
    const prepared = ok(await ctx.api.POST("/wallet/prepare/study-consent", {
      body: { study_id: study.studyId, scope_id: scopeHex, deadline: await ctx.deadline() },
    }));
    const shared = copy.labels.join(", ");
    // Relayed (a signature; the patient pays no gas) or the wallet's own transaction, as the
    // patient chose for every consent action (PatientContext.submit).
    const hash = await ctx.submit(prepared, {
      title: "Take part in a research study",
      why: `Records on the blockchain that you agree to take part in “${study.purpose}”. The researcher can read only your de-identified copy ` +
        `(${countOf(total, "record")}: names, identifiers, addresses, contact details and free text removed, dates shifted), until ${new Date(study.endsAt * 1000).toLocaleDateString()} ` +
        "or until you withdraw.",
      details: [["Study", study.purpose], ["Study id", study.studyId], ["Researcher", study.researcher], ["Shared, de-identified", shared]],
    });
    const receipt = await ctx.chain.mined(hash, {
      late: "Your consent was sent, but its confirmation was not seen in time. Check again in a moment to see whether it went through.",
      reverted: "The study registry refused the consent (the transaction reverted). Your copy is shared with the researcher but no consent is recorded: try again, or stop sharing it.",
    });
    const recorded = receipt.logs.some((log) => {
      if (getAddress(log.address) !== getAddress(registry)) return false;
      try {
        const event = decodeEventLog({ abi: [STUDY_CONSENTED], data: log.data, topics: log.topics });
        return event.args.studyId.toLowerCase() === study.studyId.toLowerCase() && getAddress(event.args.patient) === getAddress(ctx.patient) &&
          event.args.scopeId.toLowerCase() === scopeHex;
      } catch {
        return false;
      }
    });
    if (!recorded) throw new IntegrityError(`transaction ${hash} records no such consent`);
    onProgress?.({ step: "done", done: 1, total: 1 });
    return hash;
  }

  /** Give up after a failure part-way: stop sharing the copy with the researcher (revoke its
   * live grant, if any). The copy stays among the patient's own records, shared with nobody. */
  async abandon(copy: StudyCopy): Promise<boolean> {
    const client = this.#client;
    const label = studyLabel(copy.study.studyId);
    const { scopeId } = await client.scope(label);
    const scopeHex = bytesToHex0x(scopeId).toLowerCase();
    const live = (await client.grants()).some((g) => g.live && getAddress(g.provider) === getAddress(copy.study.researcher) && g.scopeId === scopeHex);
    if (live) await client.revoke(copy.study.researcher, label);
    return live;
  }
}

/** The DICOM files' study copies (dicom.ts, loaded here, only when there are any). */
async function deidentifyDicoms(dicoms: ReadonlyArray<{ record: LabelledRecord; content: Bytes }>, key: StudyKey, command: string,
  onEach: (done: number) => void): Promise<Bytes[]> {
  if (!dicoms.length) return [];
  const { deidentifyDicom, DicomUnsupported } = await import("./dicom.ts");
  const out: Bytes[] = [];
  for (const { record, content } of dicoms) {
    await pause();
    try {
      out.push(deidentifyDicom(content, key));
    } catch (error) {
      if (error instanceof DicomUnsupported) throw new DicomNotHere([record], command, error.reason);
      if (error instanceof InputError) throw new RecordProblem(record, error.field, error.reason);
      throw error;
    }
    onEach(out.length);
  }
  return out;
}

function checkStudy(study: StudyView, now: number): void {
  if (study.endsAt <= now) throw new InputError("study", `the study ended on ${new Date(study.endsAt * 1000).toLocaleDateString()}`);
  if (!study.researcherVerified) throw new InputError("study", `its researcher ${study.researcher} is not an active verified provider`);
}
