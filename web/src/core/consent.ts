// The ConsentLedger's consent state replayed from its events: the one home in the page of the
// ledger's liveness rule (ConsentLedger.sol `_isLive` / `_accessExpiry`, and in Python
// kizuna/chain/liveness.py). A grant of (patient, provider, scope) is live at a block whose time
// is `t` when the grant stored for the triple (the newest AccessGranted(Batch) not deleted by a
// later AccessRevoked) was made in a block strictly after the pair's last AllAccessRevoked (same
// block: revokeAll wins, whatever the order of the transactions) and `expiresAt > t`. Access is a
// live grant or an emergency access open until later than `t` (a revokeAll closes it). Pure: the
// events and block times come from the callers (provider/grants.ts, auditor/history.ts).

/** One consent event, decoded (addresses and ids any case). */
export type ConsentEvent = {
  kind: "granted" | "revoked" | "revoked-all" | "emergency-opened" | "emergency-closed";
  patient: string;
  provider: string;
  /** granted / revoked: the scopes it is about (none for the pair-wide kinds). */
  scopeIds: readonly string[];
  /** granted: the expiry (Unix seconds, exclusive). */
  expiresAt?: number;
  /** emergency-opened: the end of the emergency access (Unix seconds, exclusive). */
  until?: number;
  block: number;
  logIndex: number;
  /** The block's time (Unix seconds), when the caller knows it. */
  time?: number;
  txHash?: string;
};

/** A grant as the ledger stores it (one AccessGranted, or one scope of an AccessGrantedBatch). */
export type StoredGrant = {
  patient: string;
  provider: string;
  scopeId: string;
  expiresAt: number;
  block: number;
  logIndex: number;
  time: number;
  txHash: string;
};

/** A point of the chain's history (block, then log index) with its block time. */
export type ChainPoint = { block: number; logIndex: number; time: number; txHash: string };

/** The ledger's grantOf(patient, provider, scope) at a block. */
export type GrantAt = {
  /** The stored grant (null: never granted, or deleted by `revokedBy`). */
  grant: StoredGrant | null;
  /** The AccessRevoked that deleted the newest grant, when that is why `grant` is null. */
  revokedBy: ChainPoint | null;
  /** The pair's last revokeAll block at or before the block (0: none). */
  revokedAllBlock: number;
  live: boolean;
};

/** How a grant stopped being live: the event that ended it (null block: its expiry). */
export type GrantEnd = { kind: "expired" | "revoked" | "revoked-all"; block: number | null; time: number };

export type AccessAt = { allowed: boolean; via: "grant" | "emergency" | ""; reason: string };

type Write = ChainPoint & { grant: StoredGrant | null };

const low = (value: string): string => value.toLowerCase();
const pairKey = (patient: string, provider: string): string => `${low(patient)}|${low(provider)}`;
const grantKey = (patient: string, provider: string, scopeId: string): string => `${pairKey(patient, provider)}|${low(scopeId)}`;
const before = (a: { block: number; logIndex: number }, b: { block: number; logIndex: number }): boolean =>
  a.block < b.block || (a.block === b.block && a.logIndex < b.logIndex);

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key) ?? [];
  list.push(value);
  map.set(key, list);
}

/** The last entry of a chain-ordered list at or before `block`. */
function lastAt<T extends { block: number }>(list: readonly T[] | undefined, block: number): T | undefined {
  let found: T | undefined;
  for (const item of list ?? []) {
    if (item.block > block) break;
    found = item;
  }
  return found;
}

/** The consent history of every (patient, provider, scope) the events name. */
export class ConsentLedgerHistory {
  readonly #writes = new Map<string, Write[]>();
  readonly #revokeAll = new Map<string, ChainPoint[]>();
  readonly #emergency = new Map<string, { block: number; until: number }[]>();

  /** `events` in any order: replayed in chain order (block, then log index). */
  constructor(events: readonly ConsentEvent[]) {
    const ordered = [...events].sort((a, b) => a.block - b.block || a.logIndex - b.logIndex);
    for (const e of ordered) {
      const point: ChainPoint = { block: e.block, logIndex: e.logIndex, time: e.time ?? 0, txHash: e.txHash ?? "" };
      const pair = pairKey(e.patient, e.provider);
      switch (e.kind) {
        case "granted":
          for (const scopeId of e.scopeIds) {
            const grant: StoredGrant = {
              patient: low(e.patient), provider: low(e.provider), scopeId: low(scopeId), expiresAt: e.expiresAt ?? 0, ...point,
            };
            push(this.#writes, grantKey(e.patient, e.provider, scopeId), { ...point, grant });
          }
          break;
        case "revoked":
          for (const scopeId of e.scopeIds) push(this.#writes, grantKey(e.patient, e.provider, scopeId), { ...point, grant: null });
          break;
        case "revoked-all":
          // revokeAll resets the whole pair: its grants die and an open emergency access closes.
          push(this.#revokeAll, pair, point);
          push(this.#emergency, pair, { block: e.block, until: 0 });
          break;
        case "emergency-opened":
          push(this.#emergency, pair, { block: e.block, until: e.until ?? 0 });
          break;
        case "emergency-closed":
          push(this.#emergency, pair, { block: e.block, until: 0 });
          break;
      }
    }
  }

  /** The ledger's grantOf at (the end of) `block`, whose time is `time`. */
  grantAt(patient: string, provider: string, scopeId: string, block: number, time: number): GrantAt {
    const write = lastAt(this.#writes.get(grantKey(patient, provider, scopeId)), block);
    const revokedAllBlock = lastAt(this.#revokeAll.get(pairKey(patient, provider)), block)?.block ?? 0;
    const grant = write?.grant ?? null;
    return {
      grant,
      revokedBy: write && !write.grant ? write : null,
      revokedAllBlock,
      live: grant !== null && grant.block > revokedAllBlock && grant.expiresAt > time,
    };
  }

  /** The pair's emergency access end at `block` (0: none open or closed). */
  emergencyUntil(patient: string, provider: string, block: number): number {
    return lastAt(this.#emergency.get(pairKey(patient, provider)), block)?.until ?? 0;
  }

  /** hasAccess(patient, provider, scope) at `block`, whose time is `time`, and why. */
  accessAt(patient: string, provider: string, scopeId: string, block: number, time: number): AccessAt {
    const { grant, revokedBy, revokedAllBlock, live } = this.grantAt(patient, provider, scopeId, block, time);
    if (live && grant) {
      return { allowed: true, via: "grant", reason: `grant of block ${grant.block} (tx ${grant.txHash}) live until ${grant.expiresAt}` };
    }
    let reason: string;
    if (grant && grant.expiresAt <= time) reason = `grant of block ${grant.block} expired at ${grant.expiresAt} (block time ${time})`;
    else if (grant) reason = `grant of block ${grant.block} was ended by revokeAll in block ${revokedAllBlock}`;
    else if (revokedBy) reason = `grant revoked in block ${revokedBy.block} (tx ${revokedBy.txHash})`;
    else reason = "no grant was ever made for this scope";
    const until = this.emergencyUntil(patient, provider, block);
    if (until > time) return { allowed: true, via: "emergency", reason: `emergency access open until ${until}` };
    return { allowed: false, via: "", reason };
  }

  /** How the triple's newest `grant` stopped being live: the first of its revocation, a
   * revokeAll of its block or later, or its expiry (before that event, or by `now`); null while
   * it is live at `now`. */
  #endOf(grant: StoredGrant, now: number): GrantEnd | null {
    const writes = this.#writes.get(grantKey(grant.patient, grant.provider, grant.scopeId)) ?? [];
    const next = writes.find((w) => before(grant, w));
    const revokedAll = (this.#revokeAll.get(pairKey(grant.patient, grant.provider)) ?? []).find((r) => r.block >= grant.block);
    let end: GrantEnd | null = null;
    if (revokedAll && (!next || !before(next, revokedAll))) end = { kind: "revoked-all", block: revokedAll.block, time: revokedAll.time };
    else if (next) end = { kind: "revoked", block: next.block, time: next.time };
    // An expiry before the ending event ended the grant first (the ledger's answer is the same).
    if (grant.expiresAt <= (end ? end.time : now)) return { kind: "expired", block: null, time: grant.expiresAt };
    return end;
  }

  /** Every triple's newest grant (a revoked one included), each with how it ended by `now`. */
  latestGrants(now: number): { grant: StoredGrant; end: GrantEnd | null }[] {
    const latest: { grant: StoredGrant; end: GrantEnd | null }[] = [];
    for (const writes of this.#writes.values()) {
      const grant = writes.findLast((w) => w.grant !== null)?.grant;
      if (grant) latest.push({ grant, end: this.#endOf(grant, now) });
    }
    return latest;
  }
}
