// Research studies as the patient's page sees them, read from the chain through the wallet
// (kizuna/chain/agents/studies.py, kizuna/research/studies.py): every study of the
// StudyRegistry (its purpose and scope labels are in its StudyRegistered event only), whether
// its researcher is an active verified provider, and the patient's consent to it.
//
// Withdrawing is Python's withdraw_from_study, in the same order: first the consent ledger's
// grant of the study copy's scope to the researcher is revoked (reads stop at once; the
// existing revoke, signed or sent by the wallet), then the withdrawal is recorded in the study
// registry (POST /wallet/prepare/study-withdrawal): by default a StudyWithdrawal signature the
// service relays (StudyRegistry.withdrawBySig: no ether needed, as for the consent), or, with
// the page's "pay the fee myself", the wallet's own withdraw transaction — the choice every
// on-chain step of the page makes (PatientContext.authorize). A withdrawal interrupted between
// the two is finished by the next try: the revoke is skipped when the grant is already gone.
//
// Consenting from the page is web/src/research/consent.ts.

import { BaseError, decodeEventLog, getAddress, parseAbi, parseAbiItem, type Hex } from "viem";
import { ok } from "../api/client.ts";
import { InputError, IntegrityError, KizunaError } from "../core/errors.ts";
import type { PatientClient } from "../patient/patient.ts";

const STUDY_REGISTERED = parseAbiItem(
  "event StudyRegistered(bytes32 indexed studyId, address indexed researcher, string purpose, string[] scopes, uint64 endsAt)",
);
const CONSENT_WITHDRAWN = parseAbiItem(
  "event StudyConsentWithdrawn(bytes32 indexed studyId, address indexed patient, bytes32 scopeId)",
);
const STUDY_ABI = parseAbi([
  "function consentOf(bytes32 studyId, address patient) view returns (bytes32 scopeId, bool consented)",
]);

export type StudyView = {
  studyId: Hex;
  researcher: Hex;
  purpose: string;
  /** The scope labels the study asks for (`Observation:laboratory`, ...). */
  scopes: string[];
  endsAt: number;
  /** The researcher is a provider a registrar verified and has not suspended. */
  researcherVerified: boolean;
  /** The patient's consent is current (given, not withdrawn). */
  consented: boolean;
  /** The patient withdrew a consent to it (and has not consented again). */
  withdrew: boolean;
  /** The consent ledger still grants the study copy's scope to the researcher. */
  sharing: boolean;
  ended: boolean;
};

/** The scope label of a patient's copy for a study (study_label): `ResearchStudy:<64 hex>`. */
export function studyLabel(studyId: Hex): string {
  if (!/^0x[0-9a-fA-F]{64}$/.test(studyId)) throw new InputError("study", "a study id is 32 bytes (64 hex digits)");
  return `ResearchStudy:${studyId.slice(2).toLowerCase()}`;
}

export class Studies {
  readonly #client: PatientClient;

  constructor(client: PatientClient) {
    this.#client = client;
  }

  #registry(): Hex {
    return this.#client.context.contract("StudyRegistry");
  }

  /** Every study registered, newest first, with the patient's consent to each. */
  async list(): Promise<StudyView[]> {
    const ctx = this.#client.context;
    const chain = ctx.chain;
    const address = this.#registry();
    let logs;
    let withdrawals;
    try {
      [logs, withdrawals] = await Promise.all([
        chain.client.getLogs({ address, event: STUDY_REGISTERED, fromBlock: 0n, toBlock: "latest" }),
        chain.client.getLogs({ address, event: CONSENT_WITHDRAWN, args: { patient: ctx.patient }, fromBlock: 0n, toBlock: "latest" }),
      ]);
    } catch (error) {
      throw new KizunaError("The study registry could not be read from the blockchain node. Check that it is running, then try again.", {
        cause: error, details: error instanceof BaseError ? error.shortMessage : String(error),
      });
    }
    const [now, grants] = await Promise.all([chain.now(), this.#client.grants()]);
    const withdrawn = new Set(withdrawals.map((w) => w.args.studyId?.toLowerCase()));
    const verified = new Map<string, boolean>();
    const out: StudyView[] = [];
    for (const log of logs.reverse()) {
      const { studyId, researcher, purpose, scopes, endsAt } = log.args;
      if (!studyId || !researcher || purpose === undefined || !scopes || endsAt === undefined) continue;
      const who = getAddress(researcher);
      if (!verified.has(who)) {
        verified.set(who, await chain.provider(who).then((p) => p.active, (e: unknown) => {
          if (e instanceof InputError) return false; // not in the registry at all
          throw e;
        }));
      }
      const [scopeId, consented] = await chain.client.readContract({
        address, abi: STUDY_ABI, functionName: "consentOf", args: [studyId, ctx.patient],
      });
      const sharing = grants.some((g) => g.live && getAddress(g.provider) === who && g.scopeId.toLowerCase() === scopeId.toLowerCase());
      out.push({
        studyId, researcher: who, purpose, scopes: [...scopes], endsAt: Number(endsAt),
        researcherVerified: verified.get(who)!, consented, withdrew: !consented && withdrawn.has(studyId.toLowerCase()), sharing: consented && sharing, ended: Number(endsAt) <= now,
      });
    }
    return out;
  }

  /** Stop taking part: revoke the study's grant (unless already gone), then record the
   * withdrawal in the registry — relayed from the wallet's signature, or the wallet's own
   * transaction — confirmed on the chain by its StudyConsentWithdrawn event. */
  async withdraw(study: StudyView): Promise<void> {
    const ctx = this.#client.context;
    ctx.ownOnly("Withdrawing from a study");
    if (!study.consented) throw new InputError("study", "you have no current consent to this study");
    if (study.sharing) await this.#client.revoke(study.researcher, studyLabel(study.studyId));
    const registry = this.#registry();
    const prepared = ok(await ctx.api.POST("/wallet/prepare/study-withdrawal", {
      body: { study_id: study.studyId, deadline: await ctx.deadline() },
    }));
    const hash = await ctx.submit(prepared, {
      title: "Withdraw from the study",
      why: `Records on the blockchain that you no longer take part in “${study.purpose}”. The researcher can no longer read your study copy (already stopped); what the study read before stays in its audit log.`,
      details: [["Study", study.purpose], ["Study id", study.studyId], ["Researcher", study.researcher]],
    });
    const receipt = await ctx.chain.mined(hash, {
      late: "The withdrawal was sent, but its confirmation was not seen in time. Reload this page to see whether it went through.",
      reverted: "The study registry refused the withdrawal (the transaction reverted). Your sharing with the study has stopped; reload and try again.",
    });
    const recorded = receipt.logs.some((log) => {
      if (getAddress(log.address) !== getAddress(registry)) return false;
      try {
        const event = decodeEventLog({ abi: [CONSENT_WITHDRAWN], data: log.data, topics: log.topics });
        return event.args.studyId.toLowerCase() === study.studyId.toLowerCase() && getAddress(event.args.patient) === getAddress(ctx.patient);
      } catch {
        return false;
      }
    });
    if (!recorded) throw new IntegrityError(`transaction ${hash} records no such withdrawal`);
  }
}
