// The patient's operations for the pages: one object the UI calls, the same code in the
// browser (WalletSigner) and in Node tests (a private-key signer). Everything that needs the
// patient's keys runs here, never on the service — the counterpart of
// kizuna/client/patient.py over the API (tests/web/test_patient_parity.py proves both ways).
//
//   scopes.ts   labels → blinded scope ids, key epochs, the ScopeKeys registration
//   records.ts  seal → register (signed or sent) → upload; list; readOwn against the chain
//   batches.ts  many records: seal → stage → ONE RegisterBatch signature → register
//   grants.ts   grant (key fragments made here), revoke + rekey, revokeAll, the grant list
//   chain.ts    what is read from the chain itself: clock, registry, commitments
//   context.ts  what they share, and gasless-or-send-it-myself

import type { Api, ApiOptions, Schemas } from "../api/client.ts";
import { ok } from "../api/client.ts";
import type { Bytes } from "../core/bytes.ts";
import type { WalletKeys } from "../core/walletKeys.ts";
import type { Deployment } from "../wallet/connection.ts";
import type { AccountSigner } from "../wallet/signer.ts";
import { Batches, importItem, inRecord, type BatchOut, type ImportItem, type ImportProgress } from "./batches.ts";
import type { RecordIds } from "../core/recordIds.ts";
import { ChainReader, type RegistryProvider } from "./chain.ts";
import { PatientContext } from "./context.ts";
import { Grants, type GrantInfo, type GrantResult, type Rekeyed, type RevokeResult } from "./grants.ts";
import { Records, type FileProgress, type LabelledRecord, type RecordInfo } from "./records.ts";
import { Scopes } from "./scopes.ts";

export { inRecord };
export type { BatchOut, GrantInfo, GrantResult, ImportItem, ImportProgress, LabelledRecord, RecordInfo, Rekeyed, RevokeResult, RegistryProvider };
export type { TxResult } from "./grants.ts";
export type ReadEntry = Schemas["ReadEntryOut"];
export type AttemptedReads = Schemas["AttemptedReadsOut"];
export type InboxItem = Schemas["InboxItemOut"];

export type PatientClientOptions = {
  api: Api;
  apiOptions: ApiOptions;
  signer: AccountSigner;
  keys: WalletKeys;
  deployment: Deployment;
  /** true (default): signed actions the service relays and pays for; false: the wallet sends
   * each transaction itself ("send it myself"). revokeAll is always sent by the wallet. */
  gasless?: boolean;
  /** Acting for a ward (a guardian): lists and reads only, for now. */
  patient?: string;
  /** How the chain is read; default: the deployment's wallet RPC URL. */
  chain?: ChainReader;
  /** Stream upload bodies (default in Node; browsers refuse streamed bodies over HTTP/1.1,
   * and build the encrypted file as a Blob instead). */
  streamUploads?: boolean;
  deadlineSeconds?: number;
};

export type NewRecord = { content: Uint8Array; label: string; contentType: string };

export class PatientClient {
  readonly context: PatientContext;
  readonly #scopes: Scopes;
  readonly #records: Records;
  readonly #grants: Grants;
  readonly #batches: Batches;

  constructor(options: PatientClientOptions) {
    this.context = new PatientContext({
      ...options,
      gasless: options.gasless ?? true,
      chain: options.chain ?? ChainReader.forDeployment(options.deployment),
    });
    this.#scopes = new Scopes(this.context);
    this.#batches = new Batches(this.context, this.#scopes);
    this.#records = new Records(this.context, this.#scopes, options.streamUploads ?? typeof window === "undefined", this.#batches);
    this.#grants = new Grants(this.context, this.#scopes, this.#records);
  }

  /** Whose record this client works on. */
  get address(): string {
    return this.context.patient;
  }

  /** The scope id of `label` and its current key epoch, the epoch's keys registered (once). */
  async scope(label: string): Promise<{ scopeId: Bytes; epoch: number }> {
    const { scopeId, epoch } = await this.#scopes.current(label);
    return { scopeId, epoch };
  }

  /** The label behind a scope id, if this page can name it. */
  labelOf(scopeId: string | Uint8Array): string | null {
    return this.#scopes.labelOf(scopeId);
  }

  addRecord(content: Uint8Array, o: { label: string; contentType: string }): Promise<RecordInfo> {
    return this.#records.add(content, o);
  }

  /** Several records, one after the other (each its own registration: one wallet signature
   * each, or one transaction each when not gasless). */
  async addRecords(items: NewRecord[], onProgress?: (done: number, total: number) => void): Promise<RecordInfo[]> {
    const added: RecordInfo[] = [];
    for (const [i, item] of items.entries()) {
      added.push(await this.#records.add(item.content, {
        label: item.label, contentType: item.contentType,
        what: items.length === 1 ? undefined : `Add record ${i + 1} of ${items.length} to your health record`,
      }));
      onProgress?.(i + 1, items.length);
    }
    return added;
  }

  /** A record for importRecords: its id is `recordId` (from recordIds(): a resource of a file,
   * the same on every import of that file) or random, and the object keeps what a retry needs
   * (keep it across retries). */
  importItem(item: NewRecord & { recordId?: Uint8Array }): ImportItem {
    return importItem(item);
  }

  /** The patient's import record ids (Python's rule, core/recordIds.ts). */
  recordIds(): Promise<RecordIds> {
    return this.#batches.recordIds();
  }

  /** The ids (lower-case 0x hex) of the patient's records. */
  registeredIds(): Promise<Set<string>> {
    return this.#batches.registeredIds();
  }

  /** Many records with ONE wallet signature (or one transaction when not gasless) per 50,000:
   * encrypted here, staged with the service in framed requests, registered under one Merkle
   * root. A retry with the same items resumes: nothing registered is sent again, and what the
   * service still holds staged is reused. `onProgress` as records are encrypted, uploaded,
   * signed for and registered. */
  importRecords(items: readonly ImportItem[], onProgress?: (p: ImportProgress) => void): Promise<BatchOut[]> {
    return this.#batches.importRecords(items, onProgress);
  }

  /** A file of any size, streamed (about two 1 MiB segments in memory). */
  addFile(file: Blob, o: { label: string; contentType: string; recordId?: Bytes }, onProgress?: FileProgress): Promise<RecordInfo> {
    return this.#records.addFile(file, o, onProgress);
  }

  /** The patient's records, newest first, each with its label (the vocabulary blinded here). */
  async records(): Promise<LabelledRecord[]> {
    await this.#scopes.learnVocabulary();
    return (await this.#records.list()).map((r) => ({ ...r, label: this.#scopes.labelOf(r.scopeId) }));
  }

  /** One record decrypted, checked against the commitment registered on chain. */
  readOwn(recordId: Bytes | string): Promise<Uint8Array> {
    return this.#records.readOwn(recordId);
  }

  /** Many records (from records()) decrypted: one chain query for all their commitments,
   * concurrent downloads, each checked as readOwn; `onEach` as each one is ready; the
   * answer in the order given. The timeline's bulk path. */
  readMany(records: readonly RecordInfo[], onEach?: (index: number, record: RecordInfo, content: Bytes) => void, parallel?: number): Promise<Bytes[]> {
    return this.#records.readMany(records, onEach, parallel);
  }

  /** One record decrypted as a stream (large files), the same checks as readOwn. */
  openOwn(recordId: Bytes | string): Promise<{ record: RecordInfo; chunks: AsyncGenerator<Bytes> }> {
    return this.#records.openOwn(recordId);
  }

  grant(provider: string, labels: string[], expiresAt: number): Promise<GrantResult> {
    return this.#grants.grant(provider, labels, expiresAt);
  }

  revoke(provider: string, label: string): Promise<RevokeResult> {
    return this.#grants.revoke(provider, label);
  }

  revokeAll(provider: string): Promise<RevokeResult> {
    return this.#grants.revokeAll(provider);
  }

  /** Re-issue fragments of the current epoch of `labels`' scopes to their live grantees. */
  async rekey(labels: string[]): Promise<Rekeyed> {
    return this.#grants.rekey(await Promise.all(labels.map((l, i) => this.#scopes.id(l, `labels[${i}]`))));
  }

  /** Live grants, labelled where this page can name the scope. */
  async grants(): Promise<GrantInfo[]> {
    await this.#scopes.learnVocabulary();
    return this.#grants.list();
  }

  /** Who read which record, when (from the service's receipts). */
  async reads(since?: number): Promise<ReadEntry[]> {
    return ok(await this.context.api.GET("/patient/reads", { params: { query: { ...this.context.acting(), since } } }));
  }

  /** Read requests the access check refused, and hours whose refusals were only counted. */
  async attemptedReads(since?: number): Promise<AttemptedReads> {
    return ok(await this.context.api.GET("/patient/reads/attempted", { params: { query: { ...this.context.acting(), since } } }));
  }

  /** Access requests, reports, prescriptions and bookings addressed to the patient. */
  async inbox(): Promise<InboxItem[]> {
    return ok(await this.context.api.GET("/patient/inbox", { params: { query: this.context.acting() } }));
  }

  /** The provider registry, read from the chain (the API has no registry route). */
  providers(): Promise<RegistryProvider[]> {
    return this.context.chain.providers();
  }

  /** The chain's clock, for expiries. */
  now(): Promise<number> {
    return this.context.chain.now();
  }

  toString(): string {
    return `PatientClient(${this.address})`;
  }
}
