// The provider's care actions in the page (kizuna/client/provider.py request_access, send,
// break_glass, inbox; kizuna/api/routes/care.py, wallet.py): what a provider writes to a patient
// and the emergency access it may open.
//
// * Everything written to a patient (an access request's note, a report, a prescription, a
//   booking) is sealed HERE to the patient's inbox key — the key in the patient's own signed
//   InboxKey statement, checked against the patient's address and OUR deployment's domain
//   (the statement is rebuilt with the patient page's own builder, `inboxKeyTypedData`), never
//   the key the service names (care.InboxKey.verified_key's rule).
// * Each message is announced by the provider's own transaction (`requestAccess` prepared by
//   the API; `logCareEvent` encoded here, as the API has no prepare route for it, and simulated
//   through the wallet's node first so a refusal is explained before anything is signed), then
//   the envelope is streamed to the API with the transaction's hash.
// * Break-glass: `openEmergencyAccess` prepared and confirmed by the API; the time box and
//   the provider's past emergency accesses are read from the chain itself.

import * as umbral from "@nucypher/umbral-pre";
import {
  BaseError, ContractFunctionRevertedError, encodeFunctionData, parseAbi, parseAbiItem,
  recoverTypedDataAddress, type Hex,
} from "viem";
import { ApiError, ok, rawFetch, type Schemas } from "../api/client.ts";
import { bytesToHex0x, hexToBytes, type Bytes } from "../core/bytes.ts";
import { commitmentOf, encryptBytes } from "../core/envelope.ts";
import { InputError, KizunaError } from "../core/errors.ts";
import { fhirDateTime, FieldProblem, medication, type Resource } from "../forms/builders.ts";
import { checkedAddress } from "../patient/chain.ts";
import { inboxKeyTypedData } from "../patient/requests.ts";
import type { SignPurpose } from "../wallet/signer.ts";
import type { ProviderContext } from "./context.ts";

export type CareMessage = Schemas["CareMessageOut"];
export type InboxKeyAnswer = Schemas["InboxKeyOut"];
export type Prepared = Schemas["PreparedOut"];

/** The message kinds a provider sends (care.CARE_KINDS) → the ledger's CareEventKind values
 * (kizuna/chain/models.py CareEventKind, Ids.sol). */
export const CARE_EVENT_KIND: Readonly<Record<string, number>> = {
  "advice-request": 0, "booking-request": 2, "booking-confirmation": 3, "booking-cancellation": 4,
  report: 5, prescription: 6, data: 7,
};

/** What this page lets a provider send, in words. */
export const SEND_KINDS: ReadonlyArray<{ kind: string; title: string }> = [
  { kind: "report", title: "Visit report" },
  { kind: "prescription", title: "Prescription" },
  { kind: "booking-confirmation", title: "Booking confirmation" },
];

/** Emergency access reason codes (recorded on chain; the CLI's --reason, e.g. 1 = unconscious). */
export const REASONS: ReadonlyArray<{ code: number; text: string }> = [
  { code: 1, text: "Patient unconscious or unable to consent" },
  { code: 2, text: "Life-threatening emergency" },
  { code: 3, text: "Urgent treatment, patient unreachable" },
];

const LEDGER_ABI = parseAbi([
  "function logCareEvent(address patient, uint8 kind, bytes32 ref, address provider, bytes32 scopeId)",
  "function hasAccess(address patient, address provider, bytes32 scopeId) view returns (bool)",
  "function emergencyPolicy(address patient) view returns (bool allowed, uint64 maxDuration)",
  "function emergencyAccessUntil(address patient, address provider) view returns (uint64)",
  "function requestOpenUntil(address patient, address provider) view returns (uint64)",
  "function closeEmergencyAccess(address patient, address provider)",
  "error ConsentLedgerCareEventNotAllowed(address patient, address caller)",
  "error ConsentLedgerProviderNotVerified(address provider)",
  "error ConsentLedgerNoEmergencyAccess(address patient, address provider)",
]);
const ACCESS_GRANTED = parseAbiItem("event AccessGranted(address indexed patient, address indexed provider, bytes32 scopeId, uint64 expiresAt)");
const ACCESS_GRANTED_BATCH = parseAbiItem("event AccessGrantedBatch(address indexed patient, address indexed provider, bytes32[] scopeIds, uint64 expiresAt)");
const EMERGENCY_OPENED = parseAbiItem("event EmergencyAccessOpened(address indexed patient, address indexed provider, uint64 until, uint16 reasonCode, bool flaggedForReview)");
const EMERGENCY_CLOSED = parseAbiItem("event EmergencyAccessClosed(address indexed patient, address indexed provider, address closedBy, bool flaggedForReview)");
const ZERO32: Hex = `0x${"0".repeat(64)}`;

// --- pure parts (web/test/provider_care.test.ts) ---------------------------------------------

/** An access request's note: the scope labels asked for, by their exact names, and the period,
 * in the words the patient's page reads back to pre-fill its grant form (suggestedGrant), then
 * the provider's own text. */
export function requestNote(fields: { labels: readonly string[]; days: number; text: string; names: (label: string) => string }): string {
  if (fields.labels.length === 0) throw new InputError("scopes", "choose at least one kind of record to ask for");
  if (!Number.isInteger(fields.days) || fields.days < 1 || fields.days > 999) {
    throw new InputError("days", "the period is a whole number of days between 1 and 999");
  }
  const text = fields.text.trim();
  if (text.length > 2000) throw new InputError("note", `the note is ${text.length} characters, at most 2000`);
  const asked = fields.labels.map((l) => `${fields.names(l)} (${l})`).join(", ");
  return `Requesting access to: ${asked} for ${fields.days} days.${text ? `\n\n${text}` : ""}`;
}

/** The key to seal to for `patient`: the one in their signed InboxKey statement, checked here
 * against the patient we mean and our own deployment (chain id, AccessLog) — as
 * care.InboxKey.verified_key — never the key the answer names. InputError("patient") says what
 * did not match. */
export async function verifiedInboxKey(answer: InboxKeyAnswer, ours: { patient: string; chainId: number; accessLog: string }): Promise<Bytes> {
  const who = checkedAddress("patient", ours.patient);
  const refuse = (why: string) => new InputError("patient", `refusing to write to ${who}: ${why}`);
  if (answer.patient.toLowerCase() !== who.toLowerCase()) throw refuse(`the service answered with the inbox key of ${answer.patient}`);
  const message = (answer.statement?.["message"] ?? {}) as { patient?: unknown; publicKey?: unknown };
  const signedKey = typeof message.publicKey === "string" ? message.publicKey : "";
  let key: Bytes;
  try {
    key = hexToBytes(signedKey, "statement.publicKey");
  } catch {
    throw refuse("the statement carries no key");
  }
  if (String(message.patient ?? "").toLowerCase() !== who.toLowerCase()) throw refuse("the statement names another patient");
  // Rebuilt here, in our domain: a statement for another deployment recovers to someone else.
  const typed = inboxKeyTypedData({ chainId: ours.chainId, accessLog: ours.accessLog, patient: who, publicKey: key }) as Parameters<typeof recoverTypedDataAddress>[0];
  let signer: Hex;
  try {
    signer = await recoverTypedDataAddress({ ...typed, signature: answer.signature as Hex });
  } catch {
    throw refuse("the statement's signature is not a valid signature");
  }
  if (signer.toLowerCase() !== who.toLowerCase()) throw refuse(`the inbox key statement is signed by ${signer}, not by the patient (or is for another deployment)`);
  if (answer.public_key.toLowerCase() !== bytesToHex0x(key)) {
    throw refuse(`the service named key ${answer.public_key}, but the key the patient signed is ${bytesToHex0x(key)}`);
  }
  return key;
}

type Ctx = { subject: string; id: string; now: Date };

/** A visit report as FHIR (a DiagnosticReport whose conclusion is the provider's text). */
export function visitReport(input: { title: string; text: string; provider: string }, ctx: Ctx): Resource {
  const problems: Array<{ field: string; reason: string }> = [];
  const title = input.title.trim() || "Visit report";
  const text = input.text.trim();
  if (!text) problems.push({ field: "text", reason: "The report's text is needed" });
  if (text.length > 20_000) problems.push({ field: "text", reason: "The report is longer than 20,000 characters: send it as a file" });
  if (title.length > 200) problems.push({ field: "title", reason: "The title must be at most 200 characters" });
  if (problems.length) throw new FieldProblem(problems);
  const when = fhirDateTime(ctx.now);
  return {
    resourceType: "DiagnosticReport", id: ctx.id, status: "final",
    code: { text: title }, subject: { reference: ctx.subject }, effectiveDateTime: when, issued: when,
    performer: [{ reference: `Practitioner/${input.provider}`, display: input.provider }], conclusion: text,
  };
}

/** A prescription as FHIR: the manual-entry MedicationRequest (forms/builders.ts), prescribed
 * by this provider. */
export function prescription(input: { name: string; rxnorm: string; dosage: string; provider: string }, ctx: Ctx): Resource {
  const resource = medication({ name: input.name, rxnorm: input.rxnorm, dosage: input.dosage, since: "" }, ctx);
  delete resource["reportedBoolean"];
  return { ...resource, requester: { reference: `Practitioner/${input.provider}`, display: input.provider } };
}

/** A booking confirmation as FHIR (an Appointment, booked). `start` is a datetime-local value. */
export function booking(input: { start: string; minutes: string; what: string; provider: string }, ctx: Ctx): Resource {
  const problems: Array<{ field: string; reason: string }> = [];
  const start = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(input.start) ? new Date(input.start) : null;
  if (!start || Number.isNaN(start.getTime())) problems.push({ field: "start", reason: "The appointment's date and time are needed" });
  else if (start.getTime() < ctx.now.getTime()) problems.push({ field: "start", reason: "The appointment is in the past" });
  const minutes = Number(input.minutes);
  if (!Number.isInteger(minutes) || minutes < 5 || minutes > 480) problems.push({ field: "minutes", reason: "The length is a whole number of minutes between 5 and 480" });
  const what = input.what.trim();
  if (what.length > 500) problems.push({ field: "what", reason: "The description must be at most 500 characters" });
  if (problems.length || !start) throw new FieldProblem(problems);
  return {
    resourceType: "Appointment", id: ctx.id, status: "booked", description: what || "Appointment",
    start: fhirDateTime(start), end: fhirDateTime(new Date(start.getTime() + minutes * 60_000)), created: fhirDateTime(ctx.now),
    participant: [
      { actor: { reference: ctx.subject }, status: "accepted" },
      { actor: { reference: `Practitioner/${input.provider}`, display: input.provider }, status: "accepted" },
    ],
  };
}

/** Seconds left as people read it: "3 h 59 min", "4 min 05 s", "expired". */
export function timeLeft(seconds: number): string {
  if (seconds <= 0) return "expired";
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  if (h > 0) return `${h} h ${String(m).padStart(2, "0")} min`;
  return `${m} min ${String(s).padStart(2, "0")} s`;
}

// --- the client -------------------------------------------------------------------------------

/** An access request this provider sent and its state now (from the chain: /provider/inbox). */
export type SentRequest = { patient: Hex; ref: Hex; state: "open" | "granted" | "closed"; blockNumber: number };

/** An auditor's review of an emergency access, as the service records it (GET
 * /provider/emergencies; the chain only flags the access for review): done by whom and when,
 * awaiting, or unknown when the service could not be asked (`why`). */
export type Review =
  | { state: "reviewed"; by: Hex; at: number }
  | { state: "awaiting" }
  | { state: "unknown"; why: string };

/** One emergency access of this provider (from the chain's events), with its review. */
export type EmergencyAccess = {
  patient: Hex; until: number; reasonCode: number; flaggedForReview: boolean; openedBlock: number; txHash: Hex;
  logIndex: number;
  /** Closed before its time (by the provider, the patient or a guardian). */
  closedBy: Hex | null;
  review: Review;
};

type ServiceEmergency = Schemas["EmergencyAccessOut"];

/** The review of the access opened in `txHash`#`logIndex`, from the service's list (null: the
 * service could not be asked, `why`). An access the service does not list yet (its index a
 * block behind the chain) awaits review like one it lists unreviewed. */
export function reviewOf(listed: readonly ServiceEmergency[] | null, why: string, txHash: string, logIndex: number): Review {
  if (listed === null) return { state: "unknown", why };
  const found = listed.find((e) => e.tx_hash.toLowerCase() === txHash.toLowerCase() && e.log_index === logIndex);
  if (found?.reviewed && found.reviewed_by && found.reviewed_at != null) {
    return { state: "reviewed", by: found.reviewed_by as Hex, at: found.reviewed_at };
  }
  return { state: "awaiting" };
}

/** Why the ledger refused, in words (the custom error's name), or null for another failure. */
export function refusal(error: unknown): string | null {
  if (!(error instanceof BaseError)) return null;
  const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null;
  const name = reverted?.data?.errorName;
  if (name === "ConsentLedgerCareEventNotAllowed") {
    return "The ledger does not let you write to this patient: you hold no live grant, open access request or emergency access of theirs.";
  }
  if (name === "ConsentLedgerDataRequestNotOpen") {
    return "The ledger holds this data request closed (fulfilled or declined), or it is not addressed to you: no answer can be added.";
  }
  if (name === "ConsentLedgerProviderNotVerified") return "The provider registry does not list you as an active provider (not verified, or suspended).";
  if (name === "ConsentLedgerNoEmergencyAccess") return "There is no open emergency access to close.";
  return name ? `The ledger refused: ${name}.` : null;
}

export class ProviderCare {
  readonly ctx: ProviderContext;

  constructor(ctx: ProviderContext) {
    this.ctx = ctx;
  }

  /** The patient's inbox key, verified (see verifiedInboxKey); a clear error when none. */
  async inboxKey(patient: string): Promise<umbral.PublicKey> {
    const who = checkedAddress("patient", patient);
    let answer: InboxKeyAnswer;
    try {
      answer = ok(await this.ctx.api.GET("/patients/{patient}/inbox-key", { params: { path: { patient: who } } }));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        throw new InputError("patient", `${who} has not published an inbox key yet: they cannot receive messages until they sign in to Kizuna once`);
      }
      throw error;
    }
    const key = await verifiedInboxKey(answer, { patient: who, chainId: this.ctx.deployment.chainId, accessLog: this.ctx.contract("AccessLog") });
    return umbral.PublicKey.fromCompressedBytes(key);
  }

  /** `content` sealed to the patient's inbox key: the envelope, its random id and its commitment
   * (the on-chain reference). */
  async seal(patient: string, content: Uint8Array, contentType: string): Promise<{ messageId: Hex; envelope: Bytes; ref: Hex }> {
    const ownerKey = await this.inboxKey(patient);
    try {
      const id = crypto.getRandomValues(new Uint8Array(32));
      const envelope = await encryptBytes(content, { ownerKey, recordId: id, contentType });
      return { messageId: bytesToHex0x(id), envelope, ref: bytesToHex0x(await commitmentOf(envelope)) };
    } finally {
      ownerKey.free();
    }
  }

  /** Send a transaction from the provider's wallet and wait until the chain has it. */
  async transact(tx: { to: string; data: string; gas?: string | undefined }, purpose: SignPurpose): Promise<Hex> {
    const hash = await this.ctx.signer.sendTransaction(
      { to: tx.to, data: tx.data, ...(tx.gas ? { gas: tx.gas } : {}) },
      { ...purpose, why: `${purpose.why} Your wallet sends this transaction and pays its network fee.` },
    );
    const receipt = await this.ctx.chain.client.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new KizunaError(`The transaction ${hash} failed on chain: nothing was recorded.`);
    return hash;
  }

  #prepared(prepared: Prepared): { to: string; data: string; gas?: string | undefined } {
    const tx = prepared.transaction;
    if (!tx["to"] || !tx["data"]) throw new KizunaError("The service prepared a transaction without a recipient or data.");
    return { to: tx["to"], data: tx["data"], gas: tx["gas"] };
  }

  /** Ask `patient` for access with a note only they can read (requestAccess + the note). */
  async requestAccess(patient: string, note: string): Promise<CareMessage> {
    const who = checkedAddress("patient", patient);
    const sealed = await this.seal(who, new TextEncoder().encode(note), "text/plain");
    const prepared = ok(await this.ctx.api.POST("/wallet/prepare/access-request", { body: { patient: who, ref: sealed.ref } }));
    const txHash = await this.transact(this.#prepared(prepared), {
      title: "Ask for access",
      why: "Records on the blockchain that you asked this patient for access; the note is encrypted so only the patient can read it.",
      details: [["Patient", who], ["Note reference", sealed.ref]],
    });
    const response = await rawFetch(this.ctx.apiOptions, `/provider/requests/${sealed.messageId}`, {
      method: "PUT", body: sealed.envelope,
      headers: { "Content-Type": "application/octet-stream", "X-Kizuna-Tx-Hash": txHash, "X-Kizuna-Patient": who },
    });
    return (await response.json()) as CareMessage;
  }

  /** The access requests this provider sent, each with its state now, newest first. */
  async requests(): Promise<SentRequest[]> {
    const items = ok(await this.ctx.api.GET("/provider/inbox"));
    const states: Record<string, SentRequest["state"]> = { "request-open": "open", "request-granted": "granted", "request-closed": "closed" };
    return items.filter((i) => i.kind in states).map((i) => ({
      patient: checkedAddress("patient", i.patient), ref: i.ref as Hex, state: states[i.kind]!, blockNumber: i.block_number,
    }));
  }

  /** A scope of `patient` this provider holds a live grant on now (its care authority), or
   * null (then an open request or emergency access must authorise the message). */
  async liveScope(patient: string): Promise<Hex | null> {
    const who = checkedAddress("patient", patient);
    const ledger = this.ctx.contract("ConsentLedger");
    const args = { patient: who, provider: this.ctx.address };
    const client = this.ctx.chain.client;
    const [single, batch] = await Promise.all([
      client.getLogs({ address: ledger, event: ACCESS_GRANTED, args, fromBlock: 0n }),
      client.getLogs({ address: ledger, event: ACCESS_GRANTED_BATCH, args, fromBlock: 0n }),
    ]);
    const scopes = [...single.map((l) => l.args.scopeId), ...batch.flatMap((l) => l.args.scopeIds ?? [])].filter((s): s is Hex => !!s).reverse();
    for (const scopeId of new Set(scopes)) {
      const live = await client.readContract({ address: ledger, abi: LEDGER_ABI, functionName: "hasAccess", args: [who, this.ctx.address, scopeId] });
      if (live) return scopeId;
    }
    return null;
  }

  /** Send a report / prescription / booking (FHIR JSON or a file) to `patient`, sealed to their
   * inbox key and announced by this provider's `logCareEvent`. */
  async send(patient: string, kind: string, content: Uint8Array, contentType: string): Promise<CareMessage> {
    const code = CARE_EVENT_KIND[kind];
    if (code === undefined) throw new InputError("kind", `${JSON.stringify(kind)} is not a care message kind`);
    const who = checkedAddress("patient", patient);
    const scopeId = (await this.liveScope(who)) ?? ZERO32;
    const sealed = await this.seal(who, content, contentType);
    const ledger = this.ctx.contract("ConsentLedger");
    const args = [who, code, sealed.ref, this.ctx.address, scopeId] as const;
    try { // simulated first: a refusal is explained before the wallet asks
      await this.ctx.chain.client.simulateContract({ address: ledger, abi: LEDGER_ABI, functionName: "logCareEvent", args, account: this.ctx.address });
    } catch (error) {
      const why = refusal(error);
      if (why) throw new KizunaError(why, { cause: error });
      throw error;
    }
    const title = SEND_KINDS.find((k) => k.kind === kind)?.title ?? kind;
    const txHash = await this.transact({ to: ledger, data: encodeFunctionData({ abi: LEDGER_ABI, functionName: "logCareEvent", args }) }, {
      title: `Send a ${title.toLowerCase()}`,
      why: "Records on the blockchain that you sent this patient a message; its content is encrypted so only the patient can read it.",
      details: [["Patient", who], ["Kind", title], ["Reference", sealed.ref]],
    });
    const response = await rawFetch(this.ctx.apiOptions, `/care/messages/${sealed.messageId}`, {
      method: "PUT", body: sealed.envelope,
      headers: {
        "Content-Type": "application/octet-stream", "X-Kizuna-Tx-Hash": txHash, "X-Kizuna-Patient": who,
        "X-Kizuna-Kind": kind, "X-Kizuna-Provider": this.ctx.address,
      },
    });
    return (await response.json()) as CareMessage;
  }

  /** The patient's emergency policy (from the chain). */
  async emergencyPolicy(patient: string): Promise<{ allowed: boolean; maxDuration: number }> {
    const [allowed, maxDuration] = await this.ctx.chain.client.readContract({
      address: this.ctx.contract("ConsentLedger"), abi: LEDGER_ABI, functionName: "emergencyPolicy", args: [checkedAddress("patient", patient)],
    });
    // A policy of "no limit" is 2^64 - 1 seconds: capped to what a Number holds exactly.
    return { allowed, maxDuration: maxDuration > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(maxDuration) };
  }

  /** Open emergency access to `patient` for `duration` seconds, giving `reasonCode`. */
  async openEmergency(patient: string, duration: number, reasonCode: number): Promise<Schemas["ConfirmedOut"]> {
    const who = checkedAddress("patient", patient);
    if (!Number.isInteger(duration) || duration <= 0) throw new InputError("duration", "must be a whole number of seconds above 0");
    if (!Number.isInteger(reasonCode) || reasonCode < 0 || reasonCode >= 1 << 16) throw new InputError("reason", "must be a code between 0 and 65535");
    const prepared = ok(await this.ctx.api.POST("/wallet/prepare/break-glass", { body: { patient: who, duration, reason_code: reasonCode } }));
    const reason = REASONS.find((r) => r.code === reasonCode)?.text ?? `code ${reasonCode}`;
    const txHash = await this.transact(this.#prepared(prepared), {
      title: "Open emergency access",
      why: "Opens break-glass access to this patient's records for a limited time, as their emergency policy allows. It is recorded on the blockchain and always reviewed by an auditor.",
      details: [["Patient", who], ["For", timeLeft(duration)], ["Reason", reason]],
    });
    return ok(await this.ctx.api.POST("/wallet/confirm/break-glass", { body: { patient: who, tx_hash: txHash } }));
  }

  /** Close this provider's emergency access to `patient` before its time. */
  async closeEmergency(patient: string): Promise<Hex> {
    const who = checkedAddress("patient", patient);
    const ledger = this.ctx.contract("ConsentLedger");
    const args = [who, this.ctx.address] as const;
    try {
      await this.ctx.chain.client.simulateContract({ address: ledger, abi: LEDGER_ABI, functionName: "closeEmergencyAccess", args, account: this.ctx.address });
    } catch (error) {
      const why = refusal(error);
      if (why) throw new KizunaError(why, { cause: error });
      throw error;
    }
    return this.transact({ to: ledger, data: encodeFunctionData({ abi: LEDGER_ABI, functionName: "closeEmergencyAccess", args }) }, {
      title: "Close emergency access", why: "Ends your break-glass access to this patient now (it is recorded on the blockchain).",
      details: [["Patient", who]],
    });
  }

  /** This provider's emergency accesses (every patient), newest first, from the chain's events;
   * each access's review from the service (the chain does not record reviews). */
  async emergencies(): Promise<EmergencyAccess[]> {
    const ledger = this.ctx.contract("ConsentLedger");
    const client = this.ctx.chain.client;
    let why = "";
    const [opened, closed, listed] = await Promise.all([
      client.getLogs({ address: ledger, event: EMERGENCY_OPENED, args: { provider: this.ctx.address }, fromBlock: 0n }),
      client.getLogs({ address: ledger, event: EMERGENCY_CLOSED, args: { provider: this.ctx.address }, fromBlock: 0n }),
      this.ctx.api.GET("/provider/emergencies").then((answer) => ok(answer)).catch((e: unknown) => {
        why = e instanceof KizunaError || e instanceof Error ? e.message : String(e);
        return null;
      }),
    ]);
    return opened.map((log) => {
      const patient = log.args.patient as Hex;
      const block = log.blockNumber ?? 0n;
      const closing = closed.find((c) => c.args.patient === patient && (c.blockNumber ?? 0n) >= block
        && !opened.some((o) => o.args.patient === patient && (o.blockNumber ?? 0n) > block && (o.blockNumber ?? 0n) <= (c.blockNumber ?? 0n)));
      return {
        patient, until: Number(log.args.until ?? 0n), reasonCode: Number(log.args.reasonCode ?? 0),
        flaggedForReview: Boolean(log.args.flaggedForReview), openedBlock: Number(block), txHash: log.transactionHash as Hex,
        logIndex: log.logIndex ?? 0,
        closedBy: (closing?.args.closedBy as Hex | undefined) ?? null,
        review: reviewOf(listed, why, log.transactionHash ?? "", log.logIndex ?? 0),
      };
    }).reverse();
  }

  /** The chain's clock (what the time box counts against). */
  now(): Promise<number> {
    return this.ctx.chain.now();
  }
}
