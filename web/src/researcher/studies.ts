// A researcher's studies in the page (kizuna/research/studies.py, kizuna/cli/research.py): a
// researcher is a provider a registrar verified (the registry's "provider" role); it registers
// studies in the StudyRegistry with its wallet's own transaction, sees each study's cohort from
// the chain (StudyConsented / StudyConsentWithdrawn events and consentOf, read through the
// wallet, not the service's word), and reads the cohort's shared data through the provider read
// path of web/src/provider/ (one signed ReadRequest, one receipt, capsule fragments verified,
// decrypted here against the on-chain commitment) — Python's read_study, in the same order, so
// the export (ndjson.ts) is Python's export_study's files byte for byte.
//
// A patient who withdrew is not read: their consent is no longer current, the grant of their
// study copy was revoked (the service refuses any read of it), and the page says so for each.

import { BaseError, encodeAbiParameters, encodeFunctionData, getAddress, keccak256, parseAbi, parseAbiItem, type Hex } from "viem";
import { bytesToHex0x } from "../core/bytes.ts";
import { InputError, KizunaError } from "../core/errors.ts";
import { scopeLabel } from "../patient/vocabulary.ts";
import type { ProviderClient } from "../provider/provider.ts";
import type { ReadableRecord, ReadResult } from "../provider/reads.ts";

const STUDY_REGISTERED = parseAbiItem(
  "event StudyRegistered(bytes32 indexed studyId, address indexed researcher, string purpose, string[] scopes, uint64 endsAt)",
);
const STUDY_CONSENTED = parseAbiItem(
  "event StudyConsented(bytes32 indexed studyId, address indexed patient, bytes32 scopeId, uint64 expiresAt)",
);
const CONSENT_WITHDRAWN = parseAbiItem(
  "event StudyConsentWithdrawn(bytes32 indexed studyId, address indexed patient, bytes32 scopeId)",
);
const STUDY_ABI = parseAbi([
  "function registerStudy(bytes32 salt, string purpose, string[] scopes, uint64 endsAt) returns (bytes32)",
  "function consentOf(bytes32 studyId, address patient) view returns (bytes32 scopeId, bool consented)",
]);

/** The registry's limits (contracts/StudyRegistry.sol MAX_PURPOSE, MAX_SCOPES, MAX_LABEL). */
export const MAX_PURPOSE_BYTES = 1024;
export const MAX_SCOPES = 64;
export const MAX_LABEL_BYTES = 100;

/** A patient of a study's cohort: who consented, and whether the consent is current. */
export type CohortMember = {
  patient: Hex;
  /** The scope id of the patient's study copy (consentOf: the last consent's). */
  scopeId: Hex;
  consented: boolean;
  /** When they withdrew (block time), when the consent is not current. */
  withdrewAt: number | null;
};

export type ResearcherStudy = {
  studyId: Hex;
  purpose: string;
  scopes: string[];
  endsAt: number;
  registeredBlock: number;
  ended: boolean;
  /** In the order the patients first consented (Python's consenting_patients order). */
  cohort: CohortMember[];
};

export type NewStudy = { purpose: string; scopes: readonly string[]; endsAt: number };

/** One patient's part of a cohort read: each record's outcome (a result, or why not). */
export type PatientRead = { member: CohortMember; listed: boolean; records: ReadableRecord[]; outcomes: (ReadResult | Error | null)[] };

const utf8Length = (text: string): number => new TextEncoder().encode(text).length;

/** The study id registerStudy gives: keccak256(abi.encode(researcher, salt)). */
export function studyIdOf(researcher: string, salt: Hex): Hex {
  return keccak256(encodeAbiParameters([{ type: "address" }, { type: "bytes32" }], [getAddress(researcher), salt]));
}

/** A new study's fields checked as the registry checks them, each failure naming its field. */
export function checkedStudy(study: NewStudy, now: number): NewStudy {
  const purpose = study.purpose.trim();
  if (!purpose) throw new InputError("purpose", "say what the data is for: patients read it before they take part");
  if (utf8Length(purpose) > MAX_PURPOSE_BYTES) throw new InputError("purpose", `is ${utf8Length(purpose)} bytes, at most ${MAX_PURPOSE_BYTES}`);
  if (!study.scopes.length) throw new InputError("scopes", "choose at least one kind of record the study asks for");
  if (study.scopes.length > MAX_SCOPES) throw new InputError("scopes", `${study.scopes.length} chosen, at most ${MAX_SCOPES}`);
  const scopes = [...new Set(study.scopes.map((s) => scopeLabel(s, "scopes")))];
  for (const label of scopes) {
    if (utf8Length(label) > MAX_LABEL_BYTES) throw new InputError("scopes", `${label} is longer than ${MAX_LABEL_BYTES} bytes`);
  }
  if (!Number.isInteger(study.endsAt) || study.endsAt <= now) throw new InputError("endsAt", "the end must be in the future");
  return { purpose, scopes, endsAt: study.endsAt };
}

function chainError(error: unknown, what: string): KizunaError {
  if (error instanceof KizunaError) return error;
  return new KizunaError(`${what} could not be read from the blockchain node. Check that it is running, then try again.`, {
    cause: error, details: error instanceof BaseError ? error.shortMessage : String(error),
  });
}

export class Research {
  readonly provider: ProviderClient;

  constructor(provider: ProviderClient) {
    this.provider = provider;
  }

  get address(): Hex {
    return this.provider.address;
  }

  #registry(): Hex {
    return this.provider.context.contract("StudyRegistry");
  }

  /** Whether this wallet may register studies now: the registry's own rule (registerStudy
   * reverts StudyRegistryUnverifiedResearcher unless isActiveProvider: added by a registrar and
   * not suspended), as `kizuna researcher study create` checks it. */
  async verified(): Promise<boolean> {
    return this.provider.context.chain.provider(this.address).then((p) => p.active, (e: unknown) => {
      if (e instanceof InputError) return false; // not in the registry at all
      throw e;
    });
  }

  /** This researcher's studies, newest first, each with its cohort from the chain. */
  async studies(): Promise<ResearcherStudy[]> {
    const chain = this.provider.context.chain;
    const address = this.#registry();
    try {
      const [registered, now] = await Promise.all([
        chain.client.getLogs({ address, event: STUDY_REGISTERED, args: { researcher: this.address }, fromBlock: 0n, toBlock: "latest" }),
        chain.now(),
      ]);
      const out: ResearcherStudy[] = [];
      for (const log of registered.reverse()) {
        const { studyId, purpose, scopes, endsAt } = log.args;
        if (!studyId || purpose === undefined || !scopes || endsAt === undefined) continue;
        out.push({
          studyId, purpose, scopes: [...scopes], endsAt: Number(endsAt), registeredBlock: Number(log.blockNumber ?? 0),
          ended: Number(endsAt) <= now, cohort: await this.cohort(studyId),
        });
      }
      return out;
    } catch (error) {
      throw chainError(error, "Your studies");
    }
  }

  /** Everyone who ever consented to the study, in first-consent order, with their consent now. */
  async cohort(studyId: Hex): Promise<CohortMember[]> {
    const chain = this.provider.context.chain;
    const address = this.#registry();
    const [consents, withdrawals] = await Promise.all([
      chain.client.getLogs({ address, event: STUDY_CONSENTED, args: { studyId }, fromBlock: 0n, toBlock: "latest" }),
      chain.client.getLogs({ address, event: CONSENT_WITHDRAWN, args: { studyId }, fromBlock: 0n, toBlock: "latest" }),
    ]);
    const patients = [...new Set(consents.flatMap((c) => (c.args.patient ? [getAddress(c.args.patient)] : [])))];
    const lastWithdrawal = new Map<Hex, bigint>();
    for (const w of withdrawals) if (w.args.patient && w.blockNumber !== null) lastWithdrawal.set(getAddress(w.args.patient), w.blockNumber);
    return Promise.all(patients.map(async (patient) => {
      const [scopeId, consented] = await chain.client.readContract({ address, abi: STUDY_ABI, functionName: "consentOf", args: [studyId, patient] });
      const block = consented ? undefined : lastWithdrawal.get(patient);
      const withdrewAt = block === undefined ? null : Number((await chain.client.getBlock({ blockNumber: block })).timestamp);
      return { patient, scopeId, consented, withdrewAt };
    }));
  }

  /** Register a study with the wallet's own transaction (its purpose shown in the wallet
   * prompt); the study id once the chain has it. */
  async register(study: NewStudy): Promise<Hex> {
    const ctx = this.provider.context;
    const checked = checkedStudy(study, await ctx.chain.now());
    if (!(await this.verified())) {
      throw new InputError("researcher", `${this.address} is not a verified, active provider in the registry: a registrar must verify it before it can register studies`);
    }
    const salt = bytesToHex0x(crypto.getRandomValues(new Uint8Array(32)));
    const data = encodeFunctionData({ abi: STUDY_ABI, functionName: "registerStudy", args: [salt, checked.purpose, [...checked.scopes], BigInt(checked.endsAt)] });
    const hash = await ctx.signer.sendTransaction({ to: this.#registry(), data }, {
      title: "Register a research study",
      why: `Records on the blockchain a study “${checked.purpose}” asking for ${checked.scopes.join(", ")} until ${new Date(checked.endsAt * 1000).toISOString().slice(0, 10)}. Patients see this purpose before they choose to take part. Your wallet sends this transaction itself and pays its network fee.`,
      details: [["Purpose", checked.purpose], ["Asks for", checked.scopes.join(", ")], ["Ends", new Date(checked.endsAt * 1000).toISOString()]],
    });
    await ctx.chain.mined(hash, {
      late: "The study was sent, but its confirmation was not seen in time. Reload this page to see whether it is registered.",
      reverted: "The study registry refused the study (the transaction reverted). Nothing was registered; check its fields and try again.",
    });
    return studyIdOf(this.address, salt);
  }

  /** The records of a consenting patient's study copy this researcher may read now (the API's
   * list, in its order, filtered to the copy's scope: Python's read_study). */
  async copyRecords(member: CohortMember): Promise<ReadableRecord[]> {
    if (!member.consented) return [];
    return this.provider.records(member.patient, { scopeId: member.scopeId });
  }

  /** Read the cohort: every consenting patient's study copy, record by record (one signed
   * request and receipt each); a withdrawn patient is not read. The cohort is read from the
   * chain again first (a patient may have withdrawn since the page showed it). `onProgress`
   * hears each patient's reads as they come; `stop()` ends between reads. */
  async readCohort(study: ResearcherStudy, onProgress: (reads: PatientRead[]) => void, stop: () => boolean = () => false): Promise<PatientRead[]> {
    let cohort: CohortMember[];
    try {
      cohort = await this.cohort(study.studyId);
    } catch (error) {
      throw chainError(error, "The study's cohort");
    }
    const reads: PatientRead[] = cohort.map((member) => ({ member, listed: false, records: [], outcomes: [] }));
    onProgress(reads);
    for (const read of reads) {
      if (!read.member.consented || stop()) continue;
      read.records = await this.copyRecords(read.member);
      read.listed = true;
      read.outcomes = read.records.map(() => null);
      onProgress([...reads]);
      await this.provider.readAll(read.member.patient, read.records, (i, outcome) => {
        read.outcomes[i] = outcome;
        onProgress([...reads]);
      }, stop);
    }
    return reads;
  }
}
