// What the auditor's page reads from the chain itself, through the wallet's node (the page's
// CSP lets it fetch only the API): the consent events that decide whether a read was allowed,
// the receipt roots anchored in AccessLog, and block times. Nothing here comes from the service.

import { getAddress, parseAbi, type Hex, type PublicClient } from "viem";
import { KizunaError } from "../core/errors.ts";
import { ChainReader, ChainUnreachable } from "../patient/chain.ts";
import type { ChainEvent } from "./history.ts";

const LEDGER_EVENTS = parseAbi([
  "event AccessGranted(address indexed patient, address indexed provider, bytes32 scopeId, uint64 expiresAt)",
  "event AccessGrantedBatch(address indexed patient, address indexed provider, bytes32[] scopeIds, uint64 expiresAt)",
  "event AccessRevoked(address indexed patient, address indexed provider, bytes32 scopeId)",
  "event AllAccessRevoked(address indexed patient, address indexed provider)",
  "event EmergencyAccessOpened(address indexed patient, address indexed provider, uint64 until, uint16 reasonCode, bool flaggedForReview)",
  "event EmergencyAccessClosed(address indexed patient, address indexed provider, address closedBy, bool flaggedForReview)",
]);
const ANCHORED = parseAbi([
  "event ReceiptRootAnchored(uint64 indexed batchIndex, bytes32 indexed root, address indexed anchoredBy, uint64 count, uint64 fromTime, uint64 toTime)",
]);

function contract(reader: ChainReader, name: string): Hex {
  const address = reader.deployment.contracts[name];
  if (!address) throw new KizunaError(`This Kizuna deployment names no ${name} contract.`);
  return getAddress(address);
}

function plain(args: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args)) {
    out[k] = typeof v === "bigint" ? Number(v) : typeof v === "string" ? v.toLowerCase()
      : Array.isArray(v) ? v.map((x) => (typeof x === "string" ? x.toLowerCase() : x)) : v;
  }
  return out;
}

async function reading<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof KizunaError) throw error;
    throw new ChainUnreachable(`The blockchain node could not be read (${what}). Check that the wallet's network is reachable, then try again.`, {
      cause: error, details: String(error),
    });
  }
}

export class AuditChain {
  readonly reader: ChainReader;
  readonly #times = new Map<number, number>();

  constructor(reader: ChainReader) {
    this.reader = reader;
  }

  get client(): PublicClient {
    return this.reader.client;
  }

  accessLog(): Hex {
    return contract(this.reader, "AccessLog");
  }

  async headBlock(): Promise<number> {
    // cacheTime 0: viem would answer from its cache for 4 s, so a run right after another (or
    // after a new anchor) would stop at the old head and miss the newest events.
    return Number(await reading("the head block", () => this.client.getBlockNumber({ cacheTime: 0 })));
  }

  /** The consent events and anchored roots up to `toBlock`, decoded (two eth_getLogs). */
  async events(toBlock: number): Promise<ChainEvent[]> {
    const range = { fromBlock: 0n, toBlock: BigInt(toBlock) };
    const [ledger, anchored] = await Promise.all([
      reading("the consent ledger's events", () => this.client.getLogs({ address: contract(this.reader, "ConsentLedger"), events: LEDGER_EVENTS, ...range })),
      reading("the anchored receipt roots", () => this.client.getLogs({ address: contract(this.reader, "AccessLog"), events: ANCHORED, ...range })),
    ]);
    return [...ledger, ...anchored].map((log) => ({
      name: log.eventName, blockNumber: Number(log.blockNumber), logIndex: Number(log.logIndex),
      txHash: String(log.transactionHash).toLowerCase(), args: plain(log.args as Record<string, unknown>),
    }));
  }

  /** The timestamps of `blocks` (one eth_getBlockByNumber each, a few at a time, cached). */
  async blockTimes(blocks: Iterable<number>, onProgress?: (done: number, total: number) => void): Promise<Map<number, number>> {
    const wanted = [...new Set(blocks)].filter((b) => !this.#times.has(b));
    let done = 0;
    const queue = [...wanted];
    const worker = async () => {
      for (let b = queue.shift(); b !== undefined; b = queue.shift()) {
        const block = await reading(`block ${b}`, () => this.client.getBlock({ blockNumber: BigInt(b!) }));
        this.#times.set(b, Number(block.timestamp));
        onProgress?.(++done, wanted.length);
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    return this.#times;
  }
}
