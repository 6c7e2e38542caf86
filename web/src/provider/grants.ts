// What the chain says about the grants a provider holds: every AccessGranted(Batch),
// AccessRevoked and AllAccessRevoked naming this provider, read through the wallet (not the
// service's word), folded into one state per (patient, scope) exactly as the ConsentLedger
// decides liveness (`_isLive`: granted after the pair's last revokeAll's block, not expired).
// The same fold explains a refused read: which scope, revoked / expired / never granted, and
// since when (the block and its time).

import { parseAbiItem, type Hex } from "viem";
import { KizunaError } from "../core/errors.ts";
import { checkedAddress } from "../patient/chain.ts";
import { formatTime } from "../ui/format.ts";
import type { ProviderContext } from "./context.ts";

const GRANTED = parseAbiItem("event AccessGranted(address indexed patient, address indexed provider, bytes32 scopeId, uint64 expiresAt)");
const GRANTED_BATCH = parseAbiItem("event AccessGrantedBatch(address indexed patient, address indexed provider, bytes32[] scopeIds, uint64 expiresAt)");
const REVOKED = parseAbiItem("event AccessRevoked(address indexed patient, address indexed provider, bytes32 scopeId)");
const REVOKED_ALL = parseAbiItem("event AllAccessRevoked(address indexed patient, address indexed provider)");

/** One consent event naming the provider, in chain order (block, then log index). */
export type GrantEvent = {
  kind: "granted" | "revoked" | "revoked-all";
  patient: Hex;
  /** The scopes it is about (none for revoked-all: every scope of the pair). */
  scopeIds: Hex[];
  /** For "granted": the expiry (Unix seconds, exclusive). */
  expiresAt?: number;
  block: number;
  logIndex: number;
  /** The block's time (Unix seconds). */
  time: number;
};

export type GrantState = "live" | "expired" | "revoked" | "revoked-all";

/** A (patient, scope) pair's grant as the chain has it now. */
export type ScopeGrant = {
  patient: Hex;
  scopeId: Hex;
  state: GrantState;
  expiresAt: number;
  grantedBlock: number;
  grantedAt: number;
  /** When it stopped being live (revocation's block and time, or the expiry): null while live. */
  endedBlock: number | null;
  endedAt: number | null;
};

const key = (patient: string, scopeId: string) => `${patient.toLowerCase()}/${scopeId.toLowerCase()}`;

/** Fold consent events (any order) into each (patient, scope)'s grant at time `now`, as the
 * ledger's `_isLive` decides: live when granted after the pair's last revokeAll and
 * `expiresAt > now`. A grant made again after a revocation is the newest one. */
export function grantStates(events: readonly GrantEvent[], now: number): ScopeGrant[] {
  const ordered = [...events].sort((a, b) => a.block - b.block || a.logIndex - b.logIndex);
  const grants = new Map<string, ScopeGrant>();
  for (const event of ordered) {
    if (event.kind === "granted") {
      for (const scopeId of event.scopeIds) {
        grants.set(key(event.patient, scopeId), {
          patient: event.patient, scopeId: scopeId.toLowerCase() as Hex, state: "live", expiresAt: event.expiresAt ?? 0,
          grantedBlock: event.block, grantedAt: event.time, endedBlock: null, endedAt: null,
        });
      }
      continue;
    }
    for (const grant of grants.values()) {
      const hit = event.kind === "revoked-all"
        ? grant.patient.toLowerCase() === event.patient.toLowerCase()
        : event.scopeIds.some((s) => key(event.patient, s) === key(grant.patient, grant.scopeId));
      if (hit && grant.state === "live" && grant.grantedBlock <= event.block) {
        // An expiry before the revocation ended the grant first (the ledger's answer is the same).
        if (grant.expiresAt <= event.time) {
          grant.state = "expired";
          grant.endedAt = grant.expiresAt;
        } else {
          grant.state = event.kind;
          grant.endedBlock = event.block;
          grant.endedAt = event.time;
        }
      }
    }
  }
  for (const grant of grants.values()) {
    if (grant.state === "live" && grant.expiresAt <= now) {
      grant.state = "expired";
      grant.endedAt = grant.expiresAt;
    }
  }
  return [...grants.values()].sort((a, b) => b.grantedBlock - a.grantedBlock);
}

/** The grant of one (patient, scope), or null: never granted to this provider. */
export function grantOf(grants: readonly ScopeGrant[], patient: string, scopeId: string): ScopeGrant | null {
  return grants.find((g) => key(g.patient, g.scopeId) === key(patient, scopeId)) ?? null;
}


/** "scope 0x1234…abcd": a scope id is blinded (only the patient knows its label). */
export function scopeName(scopeId: string): string {
  return `scope ${scopeId.slice(0, 6)}…${scopeId.slice(-4)}`;
}

/** Why the ledger refuses this provider a record of `scopeId` now, in words, with since when
 * (null: the chain shows a live grant — the refusal has another cause). */
export function refusalReason(grant: ScopeGrant | null, scopeId: string): string | null {
  const scope = scopeName(scopeId);
  if (!grant) return `The patient never granted you ${scope}.`;
  switch (grant.state) {
    case "live":
      return null;
    case "expired":
      return `Your grant of ${scope} expired on ${formatTime(grant.expiresAt)} (it was granted on ${formatTime(grant.grantedAt)}).`;
    case "revoked":
      return `The patient revoked ${scope} on ${formatTime(grant.endedAt ?? 0)} (block ${grant.endedBlock}).`;
    case "revoked-all":
      return `The patient revoked all your access on ${formatTime(grant.endedAt ?? 0)} (block ${grant.endedBlock}), ${scope} included.`;
  }
}

/** Every consent event naming `provider` (optionally of one patient), with block times: a
 * few eth_getLogs and one eth_getBlockByNumber per distinct block, through the wallet. */
export async function grantEvents(ctx: ProviderContext, patient?: string): Promise<GrantEvent[]> {
  const address = ctx.contract("ConsentLedger");
  const args = { provider: ctx.address, ...(patient ? { patient: checkedAddress("patient", patient) } : {}) };
  const client = ctx.chain.client;
  let logs;
  try {
    logs = await Promise.all([
      client.getLogs({ address, event: GRANTED, args, fromBlock: 0n }),
      client.getLogs({ address, event: GRANTED_BATCH, args, fromBlock: 0n }),
      client.getLogs({ address, event: REVOKED, args, fromBlock: 0n }),
      client.getLogs({ address, event: REVOKED_ALL, args, fromBlock: 0n }),
    ]);
  } catch (error) {
    throw new KizunaError("The blockchain could not be read through your wallet (your grants). Check that its network is reachable, then try again.", { cause: error, details: String(error) });
  }
  const [granted, batches, revoked, revokedAll] = logs;
  const blocks = new Set<bigint>();
  for (const log of [...granted, ...batches, ...revoked, ...revokedAll]) if (log.blockNumber !== null) blocks.add(log.blockNumber);
  const times = new Map<bigint, number>();
  await Promise.all([...blocks].map(async (number) => {
    const block = await client.getBlock({ blockNumber: number });
    times.set(number, Number(block.timestamp));
  }));
  const base = (log: { blockNumber: bigint | null; logIndex: number | null; args: { patient?: Hex } }) => ({
    patient: checkedAddress("patient", log.args.patient ?? ""),
    block: Number(log.blockNumber ?? 0n),
    logIndex: log.logIndex ?? 0,
    time: times.get(log.blockNumber ?? 0n) ?? 0,
  });
  return [
    ...granted.map((l) => ({ ...base(l), kind: "granted" as const, scopeIds: [l.args.scopeId!], expiresAt: Number(l.args.expiresAt ?? 0n) })),
    ...batches.map((l) => ({ ...base(l), kind: "granted" as const, scopeIds: [...(l.args.scopeIds ?? [])], expiresAt: Number(l.args.expiresAt ?? 0n) })),
    ...revoked.map((l) => ({ ...base(l), kind: "revoked" as const, scopeIds: [l.args.scopeId!] })),
    ...revokedAll.map((l) => ({ ...base(l), kind: "revoked-all" as const, scopeIds: [] })),
  ];
}

/** This provider's grants now (the chain's clock), every patient or one. */
export async function providerGrants(ctx: ProviderContext, patient?: string): Promise<ScopeGrant[]> {
  const [events, now] = await Promise.all([grantEvents(ctx, patient), ctx.chain.now()]);
  return grantStates(events, now);
}
