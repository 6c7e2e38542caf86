// What the chain says about the grants a provider holds: every AccessGranted(Batch),
// AccessRevoked and AllAccessRevoked naming this provider, read through the wallet (not the
// service's word), folded into one state per (patient, scope) by the ledger's liveness rule
// (core/consent.ts: granted in a block after the pair's last revokeAll, not expired).
// The same fold explains a refused read: which scope, revoked / expired / never granted, and
// since when (the block and its time).

import { parseAbiItem, type Hex } from "viem";
import { ConsentLedgerHistory, type ConsentEvent } from "../core/consent.ts";
import { KizunaError } from "../core/errors.ts";
import { checkedAddress } from "../patient/chain.ts";
import { formatTime } from "../ui/format.ts";
import type { ProviderContext } from "./context.ts";

const GRANTED = parseAbiItem("event AccessGranted(address indexed patient, address indexed provider, bytes32 scopeId, uint64 expiresAt)");
const GRANTED_BATCH = parseAbiItem("event AccessGrantedBatch(address indexed patient, address indexed provider, bytes32[] scopeIds, uint64 expiresAt)");
const REVOKED = parseAbiItem("event AccessRevoked(address indexed patient, address indexed provider, bytes32 scopeId)");
const REVOKED_ALL = parseAbiItem("event AllAccessRevoked(address indexed patient, address indexed provider)");

/** One consent event naming the provider (core/consent.ts's event, with its block time). */
export type GrantEvent = ConsentEvent & { kind: "granted" | "revoked" | "revoked-all"; time: number };

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

/** Each (patient, scope)'s newest grant at time `now`, as the ledger's `_isLive` decides
 * (core/consent.ts): live when granted in a block after the pair's last revokeAll and
 * `expiresAt > now`; otherwise how and when it ended. `events` in any order, all naming one
 * provider. */
export function grantStates(events: readonly GrantEvent[], now: number): ScopeGrant[] {
  return new ConsentLedgerHistory(events).latestGrants(now).map(({ grant, end }): ScopeGrant => ({
    patient: checkedAddress("patient", grant.patient), scopeId: grant.scopeId as Hex, state: end?.kind ?? "live",
    expiresAt: grant.expiresAt, grantedBlock: grant.block, grantedAt: grant.time, endedBlock: end?.block ?? null, endedAt: end?.time ?? null,
  })).sort((a, b) => b.grantedBlock - a.grantedBlock);
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
  const base = (log: { blockNumber: bigint | null; logIndex: number | null; transactionHash: Hex | null; args: { patient?: Hex } }) => ({
    patient: checkedAddress("patient", log.args.patient ?? ""),
    provider: ctx.address,
    txHash: log.transactionHash ?? undefined,
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
