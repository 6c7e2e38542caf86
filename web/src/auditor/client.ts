// The auditor's operations: the service's auditor routes (the log it decodes from the chain and
// its receipts with their proofs, the FHIR export) and the chain read through the wallet.

import { createPublicClient, custom } from "viem";
import { type Api, type ApiOptions, ok, type Schemas } from "../api/client.ts";
import { ChainReader } from "../patient/chain.ts";
import type { Deployment } from "../wallet/connection.ts";
import type { Eip1193Provider } from "../wallet/eip1193.ts";
import { AuditChain } from "./chain.ts";
import { ConsentHistory } from "./history.ts";
import type { LogEntry } from "./log.ts";
import type { ServiceReceipt } from "./receipts.ts";
import { verifyReceipts, type Progress, type Verification } from "./verify.ts";

/** An emergency access as the service lists it, with its review. */
export type EmergencyAccessOut = Schemas["EmergencyAccessOut"];

/** Receipts a request (the service allows 1 to 2,000): a few requests for thousands of reads. */
const RECEIPT_PAGE = 1000;

/** Where a verification is: its stage, with `progress` where the total is known, and `fetched`
 *  (the receipts so far) while they come page by page. */
export type VerifyStage = { stage: "receipts" | "events" | "blocks" | "checking"; progress: Progress | null; fetched?: number };

export class AuditorClient {
  readonly api: Api;
  readonly apiOptions: ApiOptions;
  readonly chain: AuditChain;

  constructor(options: { api: Api; apiOptions: ApiOptions; chain: AuditChain }) {
    this.api = options.api;
    this.apiOptions = options.apiOptions;
    this.chain = options.chain;
  }

  /** A client reading the chain through the connected wallet's node. */
  static forWallet(api: Api, apiOptions: ApiOptions, provider: Eip1193Provider, deployment: Deployment): AuditorClient {
    const reader = new ChainReader(createPublicClient({ transport: custom(provider) }), deployment);
    return new AuditorClient({ api, apiOptions, chain: new AuditChain(reader) });
  }

  /** The whole log as the service decodes it from the chain, with its read receipts. */
  async log(): Promise<LogEntry[]> {
    return ok(await this.api.GET("/auditor/log", {}));
  }

  /** Every stored receipt with its proof, fetched page by page in the service's stable order
   *  (`seq`; each page's `next_cursor` passed back as it is); `onPage` with the count so far. */
  async receipts(onPage: (fetched: number) => void = () => {}): Promise<ServiceReceipt[]> {
    const all: ServiceReceipt[] = [];
    let cursor: string | null = null;
    do {
      const query: { limit: number; cursor?: string } = cursor === null ? { limit: RECEIPT_PAGE } : { limit: RECEIPT_PAGE, cursor };
      const page: { receipts: ServiceReceipt[]; next_cursor: string | null } = ok(await this.api.GET("/auditor/receipts", { params: { query } }));
      all.push(...page.receipts);
      cursor = page.next_cursor;
      onPage(all.length);
    } while (cursor !== null);
    return all;
  }

  /** The FHIR AuditEvent / Consent / Provenance Bundle (for one patient, or everyone) of a
   *  period (Unix seconds, both included; null: unbounded), cut by the service. */
  async exportBundle(patient: string | null, since: number | null = null, until: number | null = null): Promise<Record<string, unknown>> {
    const query: { patient?: string; since?: number; until?: number } = {};
    if (patient) query.patient = patient;
    if (since !== null) query.since = since;
    if (until !== null) query.until = until;
    return ok(await this.api.GET("/auditor/export", { params: { query } })) as Record<string, unknown>;
  }

  /** Emergency (break-glass) accesses no auditor has reviewed yet, newest first. */
  async awaitingReview(): Promise<EmergencyAccessOut[]> {
    return ok(await this.api.GET("/auditor/inbox", {}));
  }

  /** Mark the emergency access opened in `txHash`#`logIndex` reviewed (by this auditor's
   *  session: the service records who and when; the provider sees it). */
  async markReviewed(txHash: string, logIndex: number): Promise<EmergencyAccessOut> {
    return ok(await this.api.POST("/auditor/reviews", { body: { tx_hash: txHash, log_index: logIndex } }));
  }

  /** Receipts from the service, roots and consent from the chain, checked in the page. */
  async verify(onStage: (s: VerifyStage) => void): Promise<Verification> {
    onStage({ stage: "receipts", progress: null });
    const receipts = await this.receipts((fetched) => onStage({ stage: "receipts", progress: null, fetched }));
    onStage({ stage: "events", progress: null });
    const head = await this.chain.headBlock();
    const history = new ConsentHistory(await this.chain.events(head));
    const blocks = receipts.map((r) => r.head_block).filter((b) => b <= head);
    const times = await this.chain.blockTimes(blocks, (done, total) => onStage({ stage: "blocks", progress: { done, total } }));
    const domain = { chainId: this.chain.reader.deployment.chainId, accessLog: this.chain.accessLog() };
    // Which anchorer is the service's: AccessLog also holds threshold proxy nodes' own batches.
    const anchorer = ok(await this.api.GET("/version")).anchorer ?? null;
    return verifyReceipts(receipts, history, times, head, (p) => onStage({ stage: "checking", progress: p }), domain, anchorer);
  }
}
