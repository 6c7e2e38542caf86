// The ledger's events as the auditor page reads them: the consent state replayed by
// core/consent.ts (the ledger's liveness rule, in one place for the page: hasAccess at a block
// is a live grant or an open emergency access) and the anchored receipt roots. Pure: the events
// and block times come from chain.ts.

import { ConsentLedgerHistory, type AccessAt, type ConsentEvent } from "../core/consent.ts";

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
  /** The address that anchored it: the service's anchorer key, or a threshold proxy node's. */
  anchoredBy: string;
  blockNumber: number;
  txHash: string;
};

const low = (value: unknown): string => String(value).toLowerCase();

/** The consent event a decoded ledger event is (null: not a consent event). */
function consentEvent(e: ChainEvent): ConsentEvent | null {
  const a = e.args;
  const base = { patient: String(a.patient), provider: String(a.provider), block: e.blockNumber, logIndex: e.logIndex, txHash: e.txHash };
  switch (e.name) {
    case "AccessGranted":
      return { ...base, kind: "granted", scopeIds: [String(a.scopeId)], expiresAt: Number(a.expiresAt) };
    case "AccessGrantedBatch":
      return { ...base, kind: "granted", scopeIds: (a.scopeIds as unknown[]).map(String), expiresAt: Number(a.expiresAt) };
    case "AccessRevoked":
      return { ...base, kind: "revoked", scopeIds: [String(a.scopeId)] };
    case "AllAccessRevoked":
      return { ...base, kind: "revoked-all", scopeIds: [] };
    case "EmergencyAccessOpened":
      return { ...base, kind: "emergency-opened", scopeIds: [], until: Number(a.until) };
    case "EmergencyAccessClosed":
      return { ...base, kind: "emergency-closed", scopeIds: [] };
    default:
      return null;
  }
}

export class ConsentHistory {
  readonly anchors = new Map<string, Anchor>();
  readonly #consent: ConsentLedgerHistory;

  /** `events` in any order (the consent replay orders them: block, then log index). */
  constructor(events: readonly ChainEvent[]) {
    const consent: ConsentEvent[] = [];
    for (const e of events) {
      const c = consentEvent(e);
      if (c) consent.push(c);
      if (e.name !== "ReceiptRootAnchored") continue;
      const a = e.args;
      this.anchors.set(low(a.root), {
        root: low(a.root), batchIndex: Number(a.batchIndex), count: Number(a.count), fromTime: Number(a.fromTime),
        toTime: Number(a.toTime), anchoredBy: low(a.anchoredBy), blockNumber: e.blockNumber, txHash: e.txHash,
      });
    }
    this.#consent = new ConsentLedgerHistory(consent);
  }

  /** hasAccess at `blockNumber`, whose block time is `now` (core/consent.ts). */
  accessAt(patient: string, provider: string, scopeId: string, blockNumber: number, now: number): AccessAt {
    return this.#consent.accessAt(patient, provider, scopeId, blockNumber, now);
  }
}
