// The ledger's consent state replayed from its events in the page (the rule of
// kizuna/services/audit/history.py access_at): hasAccess(patient, provider, scope) at a block
// is a stored grant with expiresAt > the block's time made in a block strictly after the
// pair's last revokeAll (same block: revokeAll wins), or an emergency access open until later
// than that time. Pure: the events and block times come from chain.ts.

/** One decoded contract event (addresses and hashes lower-case 0x hex). */
export type ChainEvent = {
  name: string;
  blockNumber: number;
  logIndex: number;
  txHash: string;
  args: Record<string, unknown>;
};

/** An anchored batch of receipts, as its ReceiptRootAnchored event says. */
export type Anchor = {
  root: string;
  batchIndex: number;
  count: number;
  fromTime: number;
  toTime: number;
  blockNumber: number;
  txHash: string;
};

type GrantState = { blockNumber: number; expiresAt: number | null; txHash: string };

export type AccessAt = { allowed: boolean; via: "grant" | "emergency" | ""; reason: string };

const low = (value: unknown): string => String(value).toLowerCase();
const key = (...parts: string[]): string => parts.map(low).join("|");

export class ConsentHistory {
  readonly anchors = new Map<string, Anchor>();
  readonly #grants = new Map<string, GrantState[]>();
  readonly #revokeAll = new Map<string, number[]>();
  readonly #emergency = new Map<string, { blockNumber: number; until: number }[]>();

  /** `events` in any order: replayed in chain order (block, then log index). */
  constructor(events: readonly ChainEvent[]) {
    const ordered = [...events].sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);
    for (const e of ordered) {
      const a = e.args;
      const pair = key(String(a.patient), String(a.provider));
      const push = <T>(map: Map<string, T[]>, k: string, value: T) => {
        const list = map.get(k) ?? [];
        list.push(value);
        map.set(k, list);
      };
      switch (e.name) {
        case "AccessGranted":
          push(this.#grants, key(pair, String(a.scopeId)), { blockNumber: e.blockNumber, expiresAt: Number(a.expiresAt), txHash: e.txHash });
          break;
        case "AccessGrantedBatch":
          for (const scope of a.scopeIds as string[]) {
            push(this.#grants, key(pair, scope), { blockNumber: e.blockNumber, expiresAt: Number(a.expiresAt), txHash: e.txHash });
          }
          break;
        case "AccessRevoked":
          push(this.#grants, key(pair, String(a.scopeId)), { blockNumber: e.blockNumber, expiresAt: null, txHash: e.txHash });
          break;
        case "AllAccessRevoked":
          push(this.#revokeAll, pair, e.blockNumber);
          push(this.#emergency, pair, { blockNumber: e.blockNumber, until: 0 });
          break;
        case "EmergencyAccessOpened":
          push(this.#emergency, pair, { blockNumber: e.blockNumber, until: Number(a.until) });
          break;
        case "EmergencyAccessClosed":
          push(this.#emergency, pair, { blockNumber: e.blockNumber, until: 0 });
          break;
        case "ReceiptRootAnchored":
          this.anchors.set(low(a.root), {
            root: low(a.root), batchIndex: Number(a.batchIndex), count: Number(a.count), fromTime: Number(a.fromTime),
            toTime: Number(a.toTime), blockNumber: e.blockNumber, txHash: e.txHash,
          });
          break;
      }
    }
  }

  /** hasAccess at `blockNumber`, whose block time is `now`. */
  accessAt(patient: string, provider: string, scopeId: string, blockNumber: number, now: number): AccessAt {
    const pair = key(patient, provider);
    const states = (this.#grants.get(key(pair, scopeId)) ?? []).filter((s) => s.blockNumber <= blockNumber);
    const grant = states.at(-1);
    const revokedAll = (this.#revokeAll.get(pair) ?? []).filter((b) => b <= blockNumber).at(-1) ?? 0;
    const emergencyUntil = (this.#emergency.get(pair) ?? []).filter((x) => x.blockNumber <= blockNumber).at(-1)?.until ?? 0;
    let reason: string;
    if (grant && grant.expiresAt !== null) {
      if (grant.expiresAt <= now) reason = `grant of block ${grant.blockNumber} expired at ${grant.expiresAt} (block time ${now})`;
      else if (grant.blockNumber <= revokedAll) reason = `grant of block ${grant.blockNumber} was ended by revokeAll in block ${revokedAll}`;
      else return { allowed: true, via: "grant", reason: `grant of block ${grant.blockNumber} (tx ${grant.txHash}) live until ${grant.expiresAt}` };
    } else if (grant) {
      reason = `grant revoked in block ${grant.blockNumber} (tx ${grant.txHash})`;
    } else {
      reason = "no grant was ever made for this scope";
    }
    if (emergencyUntil > now) return { allowed: true, via: "emergency", reason: `emergency access open until ${emergencyUntil}` };
    return { allowed: false, via: "", reason };
  }
}
