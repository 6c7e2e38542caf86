// The provider's side of data requests in the page (kizuna/client/data_requests.py read_note
// and answer): the requests patients made to this provider, the note decrypted here (checked
// against the request's commitment), and an answer — acknowledged, fulfilled in part or in
// full with files, or declined with a reason. Files are sealed HERE to the patient's signed
// inbox key (ProviderCare.seal), uploaded, then the answer's commitment (answer_commitment,
// byte for byte: web/src/patient/dataRequests.ts) is logged by this provider's own
// answerDataRequest: the patient's request is its authority (no grant needed, none given),
// simulated first so a refusal is explained before the wallet asks; the service records the
// answer once it finds that event. The rules of check_answer are checked before anything is sent.

import { encodeFunctionData, parseAbi, type Hex } from "viem";
import { ok, rawFetch } from "../api/client.ts";
import { bytesToHex0x, hexToBytes, utf8Decode } from "../core/bytes.ts";
import { commitmentOf, decryptBytes } from "../core/envelope.ts";
import { InputError, IntegrityError, KizunaError } from "../core/errors.ts";
import { ANSWER_KINDS, answerCommitment, STATUS_TEXT, type DataRequest } from "../patient/dataRequests.ts";
import { refusal, type ProviderCare } from "./care.ts";

export const MAX_REASON_CHARS = 2000;
export const MAX_DELIVERIES_PER_ANSWER = 1000;
const CLOSED = new Set(["fulfilled", "declined"]);
const FROM: Readonly<Record<string, ReadonlySet<string>>> = {
  acknowledged: new Set(["open"]),
  "fulfilled-in-part": new Set(["open", "acknowledged", "fulfilled-in-part"]),
  fulfilled: new Set(["open", "acknowledged", "fulfilled-in-part"]),
  declined: new Set(["open", "acknowledged", "fulfilled-in-part"]),
};
const LEDGER_ABI = parseAbi([
  "function answerDataRequest(address patient, bytes32 requestId, uint8 kind, bytes32 ref)",
  "error ConsentLedgerDataRequestNotOpen(address patient, bytes32 requestId, address provider)",
]);
const ZERO32: Hex = `0x${"0".repeat(64)}`;

export type NewFile = { content: Uint8Array; contentType: string };

/** services/data_requests.check_answer: InputError naming the field, before anything is sent. */
export function checkAnswer(request: DataRequest, state: string, o: { reason: string | null; files: number }): void {
  const from = FROM[state];
  if (!from) throw new InputError("state", `${JSON.stringify(state)} is not one of ${Object.keys(FROM).join(", ")}`);
  if (!from.has(request.state)) throw new InputError("state", `the request is ${request.state}: it cannot become ${state}`);
  if (state === "declined") {
    if (!o.reason?.trim()) throw new InputError("reason", "a decline says why");
    if (o.reason.length > MAX_REASON_CHARS) throw new InputError("reason", `at most ${MAX_REASON_CHARS} characters`);
  } else if (o.reason !== null) throw new InputError("reason", "only a decline carries a reason");
  if (o.files > MAX_DELIVERIES_PER_ANSWER) throw new InputError("deliveries", `at most ${MAX_DELIVERIES_PER_ANSWER} files an answer`);
  if ((state === "acknowledged" || state === "declined") && o.files) throw new InputError("deliveries", `an answer '${state}' sends no files`);
  if (state === "fulfilled-in-part" && !o.files) throw new InputError("deliveries", "a part sends at least one file");
  const sent = request.answers.reduce((n, a) => n + a.deliveries.length, 0);
  if (state === "fulfilled" && !o.files && !sent) throw new InputError("deliveries", "nothing was sent yet: fulfil with the files");
}

export class ProviderDataRequests {
  readonly care: ProviderCare;

  constructor(care: ProviderCare) {
    this.care = care;
  }

  /** Requests patients made to this provider, newest first. */
  async list(): Promise<DataRequest[]> {
    return ok(await this.care.ctx.api.GET("/provider/data-requests"));
  }

  /** The patient's note, decrypted with this provider's key (null: none). */
  async note(request: DataRequest): Promise<string | null> {
    if (!request.note_ref) return null;
    const response = await rawFetch(this.care.ctx.apiOptions, `/data-requests/${request.request_id}/note`);
    const envelope = new Uint8Array(await response.arrayBuffer());
    if (bytesToHex0x(await commitmentOf(envelope)) !== request.note_ref.toLowerCase()) {
      throw new IntegrityError("The note the service sent is not the one the request commits to: it was not opened.");
    }
    return utf8Decode(await decryptBytes(envelope, { ownerSecretKey: this.care.ctx.keys.decryptingKey }));
  }

  /** Answer `request` (see the file's header). */
  async answer(request: DataRequest, state: string, o: { files?: readonly NewFile[]; reason?: string | null } = {}): Promise<DataRequest> {
    const ctx = this.care.ctx;
    if (request.provider.toLowerCase() !== ctx.address.toLowerCase()) throw new InputError("request", "only the provider the request is addressed to answers it");
    if (CLOSED.has(request.state)) throw new InputError("state", `the request is ${request.state} already`);
    const files = o.files ?? [];
    const reason = o.reason?.trim() ? o.reason.trim() : null;
    checkAnswer(request, state, { reason, files: files.length });
    const ledger = ctx.contract("ConsentLedger");
    const kind = ANSWER_KINDS[state] as number;
    const requestId = request.request_id as Hex;
    // Simulated with a placeholder ref before any file is sent: a request the ledger holds
    // closed (or not addressed to this provider) is explained before uploading anything.
    try {
      await ctx.chain.client.simulateContract({ address: ledger, abi: LEDGER_ABI, functionName: "answerDataRequest", args: [request.patient as Hex, requestId, kind, ZERO32], account: ctx.address });
    } catch (error) {
      const why = refusal(error);
      if (why) throw new KizunaError(why, { cause: error });
      throw error;
    }
    const sent: Hex[] = [];
    for (const file of files) {
      const sealed = await this.care.seal(request.patient, file.content, file.contentType);
      const response = await rawFetch(ctx.apiOptions, `/provider/data-requests/${request.request_id}/deliveries/${sealed.messageId}`, {
        method: "PUT", body: sealed.envelope, headers: { "Content-Type": "application/octet-stream" },
      });
      sent.push(((await response.json()) as { commitment: Hex }).commitment);
    }
    const nonce = crypto.getRandomValues(new Uint8Array(32));
    const ref = bytesToHex0x(await answerCommitment({
      requestId: hexToBytes(request.request_id, "request_id"), state, reason, deliveries: sent.map((d) => hexToBytes(d, "delivery")), nonce,
    }));
    const txHash = await this.care.transact({ to: ledger, data: encodeFunctionData({ abi: LEDGER_ABI, functionName: "answerDataRequest", args: [request.patient as Hex, requestId, kind, ref] }) }, {
      title: `Answer a data request: ${STATUS_TEXT[state] ?? state}`,
      why: "Records on the blockchain, with its date, how you answered this patient's request for their records (the law gives a deadline). Any files are encrypted so only the patient can read them.",
      details: [["Patient", request.patient], ["Answer", STATUS_TEXT[state] ?? state], ["Files", String(files.length)], ...(reason ? [["Reason", reason] as [string, string]] : []), ["Reference", ref]],
    });
    return ok(await ctx.api.POST("/provider/data-requests/{request_id}/answers", {
      params: { path: { request_id: request.request_id } },
      body: { state, reason, deliveries: sent, nonce: bytesToHex0x(nonce), tx_hash: txHash },
    }));
  }
}
