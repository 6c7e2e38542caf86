// Guardians, the emergency (break-glass) policy and the emergency kit in the page — the
// counterpart of kizuna/client/patient.py appoint_guardian / set_emergency_policy /
// leave_emergency_kit over the API (kizuna/services/guardians.py, emergency.py).
//
// Appointing or removing a guardian and setting the policy have no signed (gasless) form on the
// ledger: the service prepares the transaction (simulated first, so a revert is reported before
// anything is signed), the wallet sends it, and the service confirms it from its event. A
// guardian acting for a ward sets the ward's policy with the `...For` transaction from their own
// wallet; appointing guardians and leaving a kit need the ward's own wallet (and keys).
//
// The emergency kit is like a grant without a chain action: key fragments of some scopes, made
// HERE for each registry provider's key, that the proxy may use only while that provider has an
// emergency access open on chain.

import { BaseError, parseAbi, type Hex } from "viem";
import { ApiError, ok, type Schemas } from "../api/client.ts";
import { bytesToHex0x, type Bytes } from "../core/bytes.ts";
import { InputError, KizunaError } from "../core/errors.ts";
import { ChainUnreachable, checkedAddress, type RegistryProvider } from "./chain.ts";
import { kfragsFor } from "./grants.ts";
import type { PatientClient } from "./patient.ts";
import { countOf } from "../ui/format.ts";

export type Confirmed = Schemas["ConfirmedOut"];

/** A live guardian of the patient and the end of their appointment (chain time, seconds). */
export type GuardianInfo = { guardian: Hex; until: number };

/** The patient's break-glass policy as the chain has it. */
export type EmergencyPolicy = { allowed: boolean; maxDuration: number };

/** One provider's part of the emergency kit: its scopes (with the labels this page can name)
 * and how many key fragments the service keeps for it. */
export type KitLeft = { provider: Hex; scopeIds: Hex[]; labels: string[]; kfragsLeft: number };

const LEDGER_ABI = parseAbi([
  "function emergencyPolicy(address patient) view returns (bool allowed, uint64 maxDuration)",
]);

const HOUR = 3600;
const DAY = 24 * HOUR;

/** The longest break-glass access a policy may allow here (the contract takes any uint64;
 * a month is already far beyond an emergency). */
export const MAX_EMERGENCY_SECONDS = 30 * DAY;

function when(seconds: number): string {
  return new Date(seconds * 1000).toUTCString();
}

/** A duration for people: "2 days 4 hours", "45 minutes". */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${countOf(seconds, "second")}`;
  const parts: string[] = [];
  const days = Math.floor(seconds / DAY);
  const hours = Math.floor((seconds % DAY) / HOUR);
  const minutes = Math.floor((seconds % HOUR) / 60);
  if (days) parts.push(`${countOf(days, "day")}`);
  if (hours) parts.push(`${countOf(hours, "hour")}`);
  if (minutes && !days) parts.push(`${countOf(minutes, "minute")}`);
  return parts.join(" ");
}

/** The end of a guardian's appointment: a whole number of seconds (a safe integer, so within
 * the ledger's uint64) after `now` (chain time); InputError("until") otherwise. */
export function checkedUntil(until: number, now: number): number {
  if (!Number.isSafeInteger(until) || until <= 0) throw new InputError("until", "must be a date (a time in seconds)");
  if (until <= now) throw new InputError("until", `${when(until)} is already past: choose a later end date`);
  return until;
}

/** A guardian for `patient`: an address other than the patient's own (the ledger refuses
 * both the zero address and oneself). */
export function checkedGuardian(guardian: string, patient: string): Hex {
  const address = checkedAddress("guardian", guardian.trim());
  if (BigInt(address) === 0n) throw new InputError("guardian", "the zero address cannot be a guardian");
  if (address === checkedAddress("patient", patient)) throw new InputError("guardian", "you cannot be your own guardian");
  return address;
}

/** A policy the ledger accepts: allowed needs a maximum duration (1 s … MAX_EMERGENCY_SECONDS);
 * not allowed keeps whatever maximum is given (0 by default). */
export function checkedPolicy(allowed: boolean, maxDuration: number): EmergencyPolicy {
  if (typeof allowed !== "boolean") throw new InputError("allowed", "must be true or false");
  if (!Number.isSafeInteger(maxDuration) || maxDuration < 0) {
    throw new InputError("max_duration", "must be a whole number of seconds");
  }
  if (allowed && maxDuration === 0) {
    throw new InputError("max_duration", "an allowed emergency access needs a maximum duration");
  }
  if (maxDuration > MAX_EMERGENCY_SECONDS) {
    throw new InputError("max_duration", `at most ${formatDuration(MAX_EMERGENCY_SECONDS)}`);
  }
  return { allowed, maxDuration };
}

/** Scopes grouped by key epoch, in epoch order: the kit takes one call per epoch, and each
 * call replaces the provider's fragments of that epoch only (as leave_emergency_kit). */
export function byEpoch<T extends { epoch: number }>(scoped: T[]): Array<[number, T[]]> {
  const groups = new Map<number, T[]>();
  for (const item of scoped) groups.set(item.epoch, [...(groups.get(item.epoch) ?? []), item]);
  return [...groups.entries()].sort((a, b) => a[0] - b[0]);
}

/** The ledger's refusals of these actions (the service's simulation names the revert), told
 * for people; other errors pass unchanged. */
const REVERTS: Record<string, string> = {
  ConsentLedgerNotGuardian: "This account is not a guardian of this record any more: it was removed or its appointment ended, perhaps from another device. The list is read again.",
  ConsentLedgerInvalidGuardian: "This account cannot be a guardian of this record (it is the record's own account, or the zero address).",
  ConsentLedgerInvalidExpiry: "The end date is already past on the chain's clock: choose a later one.",
  ConsentLedgerInvalidEmergencyDuration: "An allowed emergency access needs a maximum duration.",
  ConsentLedgerUnauthorized: "Only the patient or one of their live guardians may do this: the guardianship may have ended.",
};
const REVERT_FIELDS: Record<string, string> = {
  ConsentLedgerInvalidGuardian: "guardian", ConsentLedgerInvalidExpiry: "until", ConsentLedgerInvalidEmergencyDuration: "max_duration",
};

export function explained(error: unknown): unknown {
  if (!(error instanceof ApiError || error instanceof InputError)) return error;
  const name = /\b(ConsentLedger\w+)\(/.exec(error.message)?.[1];
  const text = name ? REVERTS[name] : undefined;
  if (!name || !text) return error;
  const field = REVERT_FIELDS[name];
  return field ? new InputError(field, text) : new KizunaError(text, { cause: error, details: error.message });
}

async function explaining<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw explained(error);
  }
}

export class Guardianship {
  readonly #client: PatientClient;

  constructor(client: PatientClient) {
    this.#client = client;
  }

  get #ctx() {
    return this.#client.context;
  }

  /** The patient's live guardians (the ward's, when acting for one), soonest end first. */
  async guardians(): Promise<GuardianInfo[]> {
    const found = ok(await this.#ctx.api.GET("/patient/guardians", { params: { query: this.#ctx.acting() } }));
    return found
      .map((g) => ({ guardian: checkedAddress("guardian", g.guardian), until: g.until }))
      .sort((a, b) => a.until - b.until);
  }

  /** Appoint `guardian` until `until` (chain time, seconds): one transaction from the wallet. */
  async appoint(guardian: string, until: number): Promise<Confirmed> {
    this.#ctx.ownOnly("Appointing a guardian");
    const address = checkedGuardian(guardian, this.#ctx.patient);
    checkedUntil(until, await this.#ctx.chain.now());
    const prepared = await explaining(async () => ok(await this.#ctx.api.POST("/wallet/prepare/appoint-guardian", {
      body: { guardian: address, until },
    })));
    const txHash = await this.#ctx.send(prepared, {
      title: `Appoint ${address} as your guardian`,
      why: `Until ${when(until)} this account may act for you: see your records' list and reads, share and revoke on your behalf, and set your emergency policy. Every action it takes is logged on the chain. You can remove it at any time.`,
      details: [["Guardian", address], ["Until", when(until)]],
    });
    return ok(await this.#ctx.api.POST("/wallet/confirm/appoint-guardian", {
      body: { guardian: address, tx_hash: txHash },
    }));
  }

  /** End `guardian`'s appointment now: one transaction from the wallet. */
  async remove(guardian: string): Promise<Confirmed> {
    this.#ctx.ownOnly("Removing a guardian");
    const address = checkedAddress("guardian", guardian);
    const prepared = await explaining(async () => ok(await this.#ctx.api.POST("/wallet/prepare/remove-guardian", { body: { guardian: address } })));
    const txHash = await this.#ctx.send(prepared, {
      title: `Remove ${address} as your guardian`,
      why: "This account will no longer be able to act for you. What it did before stays in the log.",
      details: [["Guardian", address]],
    });
    return ok(await this.#ctx.api.POST("/wallet/confirm/remove-guardian", {
      body: { guardian: address, tx_hash: txHash },
    }));
  }

  /** The patient's (or ward's) break-glass policy, read from the chain itself. */
  async policy(): Promise<EmergencyPolicy> {
    const chain = this.#ctx.chain;
    try {
      const [allowed, maxDuration] = await chain.client.readContract({
        address: this.#ctx.contract("ConsentLedger"),
        abi: LEDGER_ABI,
        functionName: "emergencyPolicy",
        args: [this.#ctx.patient],
      });
      return { allowed, maxDuration: Number(maxDuration) };
    } catch (error) {
      if (error instanceof KizunaError) throw error;
      throw new ChainUnreachable("The blockchain node could not be read (the emergency policy). Check that it is running, then try again.", {
        cause: error,
        details: error instanceof BaseError ? error.shortMessage : String(error),
      });
    }
  }

  /** Set the break-glass policy (a guardian: the ward's, with their own `...For` transaction). */
  async setPolicy(allowed: boolean, maxDuration: number): Promise<Confirmed> {
    const policy = checkedPolicy(allowed, maxDuration);
    const body = { allowed: policy.allowed, max_duration: policy.maxDuration };
    const query = this.#ctx.acting();
    const prepared = await explaining(async () => ok(await this.#ctx.api.POST("/wallet/prepare/emergency-policy", { params: { query }, body })));
    const whose = this.#ctx.ward ? `${this.#ctx.ward}'s` : "your";
    const txHash = await this.#ctx.send(prepared, policy.allowed
      ? {
        title: `Allow emergency access to ${whose} record`,
        why: `A verified provider may open an emergency (break-glass) access for up to ${formatDuration(policy.maxDuration)}. It is always flagged for review, and it opens only the parts of the record in the emergency kit.`,
        details: [["Emergency access", "allowed"], ["At most", formatDuration(policy.maxDuration)], ...(this.#ctx.ward ? [["For", this.#ctx.ward] as [string, string]] : [])],
      }
      : {
        title: `Turn off emergency access to ${whose} record`,
        why: "No provider will be able to open an emergency (break-glass) access. Open ones run until they end.",
        details: [["Emergency access", "not allowed"], ...(this.#ctx.ward ? [["For", this.#ctx.ward] as [string, string]] : [])],
      });
    return ok(await this.#ctx.api.POST("/wallet/confirm/emergency-policy", { params: { query }, body: { ...body, tx_hash: txHash } }));
  }

  /** The kit as the service keeps it, by provider (labelled where this page can name the
   * scopes: after the vocabulary was learned, e.g. by `records()`). */
  async kits(): Promise<KitLeft[]> {
    const found = ok(await this.#ctx.api.GET("/patient/emergency-kits", { params: { query: this.#ctx.acting() } }));
    return found.map((k) => this.#kit(checkedAddress("provider", k.provider), k.scope_ids, k.kfrags_left));
  }

  #kit(provider: Hex, scopeIds: string[], kfragsLeft: number): KitLeft {
    const ids = scopeIds.map((s) => s.toLowerCase() as Hex);
    return {
      provider, scopeIds: ids, kfragsLeft,
      labels: ids.map((s) => this.#client.labelOf(s)).filter((l): l is string => l !== null),
    };
  }

  /** Leave key fragments of the scopes of `labels` for every active provider of the registry
   * (or `providers`), for their break-glass access; what each provider's kit now holds. The
   * kit replaces the provider's earlier kit (of the same key epochs). No chain action; the
   * wallet signs only a scope's key registration, if this scope epoch was never registered. */
  async leaveKit(labels: string[], providers?: string[]): Promise<KitLeft[]> {
    this.#ctx.ownOnly("Leaving an emergency kit");
    if (!Array.isArray(labels) || labels.length === 0) throw new InputError("labels", "choose at least one part of the record");
    const scoped: Array<{ label: string; scopeId: Bytes; epoch: number }> = [];
    for (const label of labels) scoped.push({ label, ...(await this.#client.scope(label)) });
    const targets: RegistryProvider[] = providers === undefined
      ? (await this.#client.providers()).filter((p) => p.active)
      : await Promise.all(providers.map((p) => this.#ctx.chain.activeProvider(checkedAddress("providers", p))));
    if (targets.length === 0) throw new InputError("providers", "the registry has no active provider to leave a kit for");
    const left: KitLeft[] = [];
    for (const target of targets) {
      let kfragsLeft = 0;
      let scopeIds: string[] = [];
      for (const [epoch, group] of byEpoch(scoped)) {
        const kfrags: Record<string, Hex[]> = {};
        for (const s of group) kfrags[bytesToHex0x(s.scopeId)] = await kfragsFor(this.#ctx, s.scopeId, epoch, target.umbralPublicKey);
        const answer = ok(await this.#ctx.api.POST("/patient/emergency-kits", {
          body: { provider: target.address, kfrags, epoch },
        }));
        kfragsLeft += answer.kfrags_left;
        scopeIds = answer.scope_ids;
      }
      left.push(this.#kit(target.address, scopeIds, kfragsLeft));
    }
    return left;
  }
}
