// Many records with ONE wallet signature (issue 12, batch registration; docs/web.md "Importing
// many records"): each record is encrypted here as a single add is, the envelopes are staged
// with the service in framed requests (POST /patient/staged, ≤ STAGE_CHUNK a request), the
// service's commitments are checked against our own, the batch's manifest is built here
// (core/batch.ts, byte for byte kizuna/batch.py), and its Merkle root is registered by
// ONE RegisterBatch signature (the relayer's path) or ONE transaction from the wallet ("send it
// myself"); POST /patient/batches then turns the staged envelopes into records.
//
// Resumable: an imported resource's record id is deterministic (core/recordIds.ts, Python's
// rule: the patient's import id key over the source file's digest and the resource's index), so
// the same file imported again — after a failure, after a reload, or months later — names the
// same records. An import first asks the service which of its ids are records already (those
// are skipped: "already in your record"), then reuses what it staged before and the service
// still holds (known from the item, or after a reload from this tab's staging journal, below),
// re-stages only the rest (or what a revocation moved to a new key epoch), and never registers a
// record twice: an item is marked registered only by the service's answer, and an authorization
// whose outcome is unknown (the answer was lost) is sent again for the same root — the service
// finishes a batch already on chain without a second transaction.
//
// The staging journal (sessionStorage, this tab only, cleared with it) holds, per staged record
// id, the scope id, key epoch and commitment of the envelope encrypted here — what Python's
// journal (kizuna/client/importer.py staged.log) holds. Nothing secret: ids are keyed hashes,
// scope ids blinded, commitments fingerprints of encrypted data; no key and no content is ever
// written. A staged envelope is reused only when the journal knows its commitment: the page
// never registers a fingerprint it did not compute itself.
//
// The scopes' ScopeKeys statements are NOT signed here: the upload routes do not need them, and
// sharing (grants.ts), the emergency kit and re-keying register a scope epoch's keys when they
// first need them. So an import of records of many scopes asks the wallet once.

import { ApiError, ok, rawFetch, SessionExpired, type Schemas } from "../api/client.ts";
import { BatchLeaf, BatchManifest } from "../core/batch.ts";
import { bytesToBase64, bytesToHex0x, equalBytes, hexToBytes, type Bytes } from "../core/bytes.ts";
import { commitmentOf, encryptBytes } from "../core/envelope.ts";
import { InputError, IntegrityError } from "../core/errors.ts";
import { RecordIds } from "../core/recordIds.ts";
import type { Authorization, PatientContext } from "./context.ts";
import { KeyEpochMoved } from "./records.ts";
import type { Scopes } from "./scopes.ts";
import { countOf } from "../ui/format.ts";

/** Envelopes one staging request carries (the API takes up to 1,000). */
export const STAGE_CHUNK = 500;
/** Bytes one staging request carries at most (a larger envelope goes alone). */
export const STAGE_BYTES = 32 << 20;
/** Records one RegisterBatch signature registers (kizuna/client/importer.py's figure); a larger
 * import is several batches, one signature each. */
export const RECORDS_PER_SIGNATURE = 50_000;
const FRAME_HEAD = 32 + 32 + 8 + 8;

/** The service's answer to a registered batch: root, count, block, transaction. */
export type BatchOut = Schemas["BatchOut"];

/** What was staged for an item: the leaf it makes, and the key epoch it is encrypted to. */
type Staged = { scopeId: Bytes; epoch: number; commitment: Bytes };

/** One record of an import. Keep the object across retries: its id and state live on it. */
export type ImportItem = {
  readonly content: Uint8Array;
  readonly label: string;
  readonly contentType: string;
  readonly recordId: Bytes;
  staged: Staged | null;
  /** The batch it is registered in (set only from the service's answer). */
  registered: BatchOut | null;
  /** Its id was a record already when the import started (the same file imported before). */
  existing: boolean;
};

/** An item of an import; `recordId` from RecordIds (a resource of a file: deterministic), or a
 * random one when the record has no source to name it by. */
export function importItem(o: { content: Uint8Array; label: string; contentType: string; recordId?: Uint8Array }): ImportItem {
  const recordId = o.recordId ? (Uint8Array.from(o.recordId) as Bytes) : crypto.getRandomValues(new Uint8Array(32));
  return { content: o.content, label: o.label, contentType: o.contentType, recordId, staged: null, registered: null, existing: false };
}

/** True when an import's item is in the patient's record (registered now or before). */
export function inRecord(item: ImportItem): boolean {
  return item.registered !== null || item.existing;
}

// --- the staging journal (see the head of this file) -------------------------------------------

const JOURNAL_PREFIX = "kizuna.staged.v1:";

function journalStore(): Storage | null {
  try {
    return typeof sessionStorage === "undefined" ? null : sessionStorage;
  } catch {
    return null; // storage disabled: resuming re-stages instead
  }
}

function readJournal(patient: string): Map<string, Staged> {
  const found = new Map<string, Staged>();
  const raw = journalStore()?.getItem(JOURNAL_PREFIX + patient.toLowerCase());
  if (!raw) return found;
  try {
    for (const [id, [scope, epoch, commitment]] of Object.entries(JSON.parse(raw) as Record<string, [string, number, string]>)) {
      found.set(id, { scopeId: hexToBytes(scope, "scope_id"), epoch, commitment: hexToBytes(commitment, "commitment") });
    }
  } catch {
    journalStore()?.removeItem(JOURNAL_PREFIX + patient.toLowerCase()); // unreadable: start afresh
    found.clear();
  }
  return found;
}

function updateJournal(patient: string, add: Iterable<ImportItem>, remove: Iterable<ImportItem>): void {
  const store = journalStore();
  if (!store) return;
  const entries: Record<string, [string, number, string]> = {};
  for (const [id, s] of readJournal(patient)) entries[id] = [bytesToHex0x(s.scopeId), s.epoch, bytesToHex0x(s.commitment)];
  for (const item of add) {
    if (item.staged) entries[bytesToHex0x(item.recordId)] = [bytesToHex0x(item.staged.scopeId), item.staged.epoch, bytesToHex0x(item.staged.commitment)];
  }
  for (const item of remove) delete entries[bytesToHex0x(item.recordId)];
  const key = JOURNAL_PREFIX + patient.toLowerCase();
  try {
    if (Object.keys(entries).length) store.setItem(key, JSON.stringify(entries));
    else store.removeItem(key);
  } catch {
    store.removeItem(key); // over the quota: resuming re-stages instead
  }
}

export type ImportPhase = "encrypting" | "signing" | "registering";
export type ImportProgress = { phase: ImportPhase; total: number; encrypted: number; uploaded: number; registered: number };

/** The frame of one envelope in POST /patient/staged: record id ‖ scope id ‖ epoch (8,
 * big-endian) ‖ length (8, big-endian) ‖ the envelope. */
export function stagedFrameHead(recordId: Uint8Array, scopeId: Uint8Array, epoch: number, length: number): Bytes {
  const head = new Uint8Array(FRAME_HEAD);
  const view = new DataView(head.buffer);
  head.set(recordId, 0);
  head.set(scopeId, 32);
  view.setBigUint64(64, BigInt(epoch));
  view.setBigUint64(72, BigInt(length));
  return head;
}

/** An answer that was never decided (unreachable, a lost session, a server's failure): the same
 * authorization may be sent again; any other refusal is the service's final word. */
function undecided(error: unknown): boolean {
  if (error instanceof SessionExpired) return true;
  if (error instanceof ApiError) return error.status >= 500 || error.status === 408 || error.status === 429;
  return !(error instanceof InputError);
}

export class Batches {
  readonly #ctx: PatientContext;
  readonly #scopes: Scopes;
  /** Authorizations sent whose outcome is not known, by root (0x hex). */
  readonly #pending = new Map<string, Authorization>();
  /** Manifests checked against the chain's roots, by root: record id → commitment. */
  readonly #leaves = new Map<string, Map<string, Bytes>>();
  #ids: Promise<RecordIds> | null = null;

  constructor(ctx: PatientContext, scopes: Scopes) {
    this.#ctx = ctx;
    this.#scopes = scopes;
  }

  /** The patient's import record ids (derived once from the wallet keys, memory only). */
  recordIds(): Promise<RecordIds> {
    this.#ids ??= RecordIds.derive(this.#ctx.keys.decryptingKey);
    return this.#ids;
  }

  /** The ids (lower-case 0x hex) of the patient's records, registered alone or in a batch. */
  async registeredIds(): Promise<Set<string>> {
    const found = ok(await this.#ctx.api.GET("/patient/records", { params: { query: this.#ctx.acting() } }));
    return new Set(found.map((r) => r.record_id.toLowerCase()));
  }

  /** Import `items` (from importItem): encrypted, staged, registered with one signature per
   * RECORDS_PER_SIGNATURE records. Items registered by an earlier call are skipped, and so are
   * those whose ids are records already (marked `existing`: the same file imported before); an
   * id given twice is imported once (the later item follows the first). The answer is the
   * batches registered by this call. */
  async importRecords(items: readonly ImportItem[], onProgress?: (p: ImportProgress) => void): Promise<BatchOut[]> {
    this.#ctx.ownOnly("Importing records");
    const open = items.filter((item) => !inRecord(item));
    if (!open.length) return [];
    const registered = await this.registeredIds();
    // Items of a batch this page sent whose answer was lost are records now, registered by
    // this very import: they go through the resend below (the service's answer marks them),
    // not as "already in your record".
    const resending = new Set<ImportItem>();
    if (this.#pending.size && open.every((item) => item.staged)) {
      for (let start = 0; start < open.length; start += RECORDS_PER_SIGNATURE) {
        const part = open.slice(start, start + RECORDS_PER_SIGNATURE);
        if (this.#pending.has(bytesToHex0x(this.#manifestOf(part).root))) part.forEach((item) => resending.add(item));
      }
    }
    const first = new Map<string, ImportItem>();
    const twice: Array<[ImportItem, ImportItem]> = [];
    const todo: ImportItem[] = [];
    for (const item of open) {
      const id = bytesToHex0x(item.recordId);
      if (registered.has(id) && !resending.has(item)) {
        item.existing = true;
        continue;
      }
      const before = first.get(id);
      if (before) twice.push([item, before]);
      else {
        first.set(id, item);
        todo.push(item);
      }
    }
    // Staged before this page was loaded (a reload mid-import): the journal knows the leaf.
    const journal = readJournal(this.#ctx.patient);
    for (const item of todo) item.staged ??= journal.get(bytesToHex0x(item.recordId)) ?? null;
    const progress: ImportProgress = { phase: "encrypting", total: todo.length, encrypted: 0, uploaded: 0, registered: 0 };
    const report = () => onProgress?.({ ...progress });
    const follow = () => { for (const [item, before] of twice) { item.registered = before.registered; item.existing = before.existing; } };
    if (!todo.length) {
      follow();
      updateJournal(this.#ctx.patient, [], open);
      return [];
    }
    report();
    const current = await this.#currentEpochs(todo);
    let held: Set<string> | null = null;
    const done: BatchOut[] = [];
    for (let start = 0; start < todo.length; start += RECORDS_PER_SIGNATURE) {
      const part = todo.slice(start, start + RECORDS_PER_SIGNATURE);
      // A batch sent before whose answer was lost goes again as it was: its envelopes may be
      // records already, and the service finishes it without a second transaction.
      const sent = part.every((item) => item.staged) ? this.#manifestOf(part) : null;
      const resend = sent && this.#pending.has(bytesToHex0x(sent.root)) ? sent : null;
      if (!resend) {
        if (part.some((item) => item.staged)) {
          // What the service still holds of an earlier attempt (staged envelopes expire), and
          // still encrypted to the scope's current key epoch.
          held ??= await this.stagedIds();
          for (const item of part) {
            const now = current.get(item.label)!;
            const keep = item.staged && held.has(bytesToHex0x(item.recordId)) &&
              equalBytes(item.staged.scopeId, now.scopeId) && item.staged.epoch === now.epoch;
            if (!keep) item.staged = null;
          }
        }
      }
      progress.phase = "encrypting";
      progress.encrypted += part.filter((item) => item.staged).length;
      progress.uploaded += part.filter((item) => item.staged).length;
      report();
      await this.#stage(part.filter((item) => !item.staged), current, progress, report);
      const manifest = resend ?? this.#manifestOf(part);
      progress.phase = "signing";
      report();
      const answer = await this.#register(manifest, () => { progress.phase = "registering"; report(); });
      for (const item of part) item.registered = answer;
      updateJournal(this.#ctx.patient, [], part);
      progress.registered += part.length;
      report();
      done.push(answer);
    }
    follow();
    return done;
  }

  /** The manifest of staged items, in their order. */
  #manifestOf(items: readonly ImportItem[]): BatchManifest {
    return BatchManifest.of(items.map((item) => new BatchLeaf(item.recordId, item.staged!.scopeId, item.staged!.commitment)));
  }

  /** The ids of the envelopes the patient has staged and not registered (GET /patient/staged). */
  async stagedIds(): Promise<Set<string>> {
    const found = ok(await this.#ctx.api.GET("/patient/staged", { params: { query: this.#ctx.acting() } }));
    return new Set(found.record_ids.map((id) => bytesToHex0x(hexToBytes(id, "record_id"))));
  }

  /** Each label's scope id and current key epoch (one request per distinct label). */
  async #currentEpochs(items: readonly ImportItem[]): Promise<Map<string, { scopeId: Bytes; epoch: number }>> {
    const first = new Map<string, number>();
    items.forEach((item, i) => { if (!first.has(item.label)) first.set(item.label, i); });
    const found = await Promise.all([...first].map(async ([label, i]) => {
      const scopeId = await this.#scopes.id(label, `records[${i}].label`);
      return [label, { scopeId, epoch: await this.#scopes.epoch(scopeId) }] as const;
    }));
    return new Map(found);
  }

  /** Encrypt and stage `items`: one request in flight while the next one is encrypted. */
  async #stage(items: readonly ImportItem[], current: Map<string, { scopeId: Bytes; epoch: number }>,
               progress: ImportProgress, report: () => void): Promise<void> {
    let inFlight: Promise<void> = Promise.resolve();
    let failure: { error: unknown } | null = null;
    let batch: Array<{ item: ImportItem; staged: Staged; size: number }> = [];
    let parts: BlobPart[] = [];
    let bytes = 0;
    const send = async () => {
      const sending = batch;
      const body = new Blob(parts);
      batch = [];
      parts = [];
      bytes = 0;
      await inFlight;
      if (failure) throw failure.error;
      inFlight = this.#send(sending, body).then(() => {
        progress.uploaded += sending.length;
        report();
      }, (error: unknown) => {
        failure = { error };
      });
    };
    for (const item of items) {
      if (failure) break;
      const { scopeId, epoch } = current.get(item.label)!;
      const ownerKey = (await this.#ctx.keys.scopeDelegatingKey(scopeId, epoch)).publicKey();
      const envelope = await encryptBytes(item.content, { ownerKey, recordId: item.recordId, contentType: item.contentType });
      const staged = { scopeId, epoch, commitment: await commitmentOf(envelope) };
      if (batch.length && (batch.length >= STAGE_CHUNK || bytes + envelope.length > STAGE_BYTES)) await send();
      batch.push({ item, staged, size: envelope.length });
      parts.push(stagedFrameHead(item.recordId, scopeId, epoch, envelope.length), envelope);
      bytes += FRAME_HEAD + envelope.length;
      progress.encrypted += 1;
      report();
    }
    if (batch.length && !failure) await send();
    await inFlight;
    if (failure) throw (failure as { error: unknown }).error;
  }

  /** One staging request; the service's commitments must be ours (before anything is signed). */
  async #send(batch: ReadonlyArray<{ item: ImportItem; staged: Staged; size: number }>, body: Blob): Promise<void> {
    let response: Response;
    try {
      response = await rawFetch(this.#ctx.apiOptions, "/patient/staged", {
        method: "POST",
        headers: { "Content-Type": "application/octet-stream" },
        body,
      });
    } catch (error) {
      // A revocation moved a scope to a new key epoch while this import was encrypting: say
      // so (a retry encrypts to the new key).
      if (error instanceof ApiError && error.status === 409) {
        for (const { staged } of batch) {
          const now = await this.#scopes.epoch(staged.scopeId);
          if (now !== staged.epoch) throw new KeyEpochMoved(staged.epoch, now);
        }
      }
      throw error;
    }
    const answer = (await response.json()) as Array<Schemas["StagedOut"]>;
    if (!Array.isArray(answer) || answer.length !== batch.length) {
      throw new IntegrityError(`the service answered ${Array.isArray(answer) ? answer.length : "no list of"} staged envelopes for the ${batch.length} sent: nothing was registered`);
    }
    batch.forEach(({ item, staged, size }, k) => {
      const got = answer[k]!;
      const id = bytesToHex0x(item.recordId);
      if (got.record_id.toLowerCase() !== id) {
        throw new IntegrityError(`the service staged ${got.record_id} where ${id} was sent: nothing was registered`);
      }
      if (!equalBytes(hexToBytes(got.commitment, "commitment"), staged.commitment) || got.size !== size) {
        throw new IntegrityError(`the service holds another envelope for record ${id} than the one encrypted here (its fingerprint differs): nothing was registered`);
      }
    });
    for (const { item, staged } of batch) item.staged = staged;
    updateJournal(this.#ctx.patient, batch.map(({ item }) => item), []);
  }

  /** Register `manifest`'s root: one signature (or transaction), then POST /patient/batches. */
  async #register(manifest: BatchManifest, onSigned: () => void): Promise<BatchOut> {
    const root = bytesToHex0x(manifest.root);
    let registration = this.#pending.get(root);
    if (!registration) {
      registration = await this.authorize(manifest);
      this.#pending.set(root, registration);
    }
    onSigned();
    let answer: BatchOut;
    try {
      answer = ok(await this.#ctx.api.POST("/patient/batches", {
        body: { manifest: bytesToBase64(manifest.encode()), registration },
      }));
    } catch (error) {
      if (!undecided(error)) this.#pending.delete(root);
      throw error;
    }
    this.#pending.delete(root);
    if (answer.root.toLowerCase() !== root || answer.count !== manifest.count) {
      throw new IntegrityError(`the service registered batch ${answer.root} of ${answer.count} records, not ${root} of ${manifest.count}`);
    }
    return answer;
  }

  /** The RegisterBatch of `manifest`'s root signed (gasless), or the wallet's registerBatch. */
  async authorize(manifest: BatchManifest): Promise<Authorization> {
    const prepared = ok(await this.#ctx.api.POST("/wallet/prepare/register-batch", {
      body: { root: bytesToHex0x(manifest.root), count: manifest.count, deadline: await this.#ctx.deadline() },
    }));
    const n = manifest.count;
    return this.#ctx.authorize(prepared, {
      title: `Register ${countOf(n, "record")} in one transaction`,
      why: `Records on the blockchain, with one fingerprint for all of them, that these ${n} encrypted records are yours and have not been changed. ` +
        "Only fingerprints of the encrypted data are recorded; their content stays encrypted in this page.",
      details: [["Records", String(n)], ["Fingerprint of the batch", bytesToHex0x(manifest.root)]],
    });
  }

  /** The commitments of the patient's batch records, by record id (lower-case 0x hex): the
   * roots from the chain (one eth_getLogs), each manifest from the service, decoded only when
   * its leaves lead to that root and count (IntegrityError otherwise). A manifest is fetched
   * once per page. */
  async commitments(): Promise<Map<string, Bytes>> {
    const found = new Map<string, Bytes>();
    for (const batch of await this.#ctx.chain.registeredBatches(this.#ctx.patient)) {
      const root = bytesToHex0x(batch.root);
      let leaves = this.#leaves.get(root);
      if (!leaves) {
        const response = await rawFetch(this.#ctx.apiOptions, `/patient/batches/${root}/manifest`);
        let manifest: BatchManifest;
        try {
          manifest = BatchManifest.decode(new Uint8Array(await response.arrayBuffer()), batch.root);
        } catch (error) {
          if (error instanceof InputError) {
            throw new IntegrityError(`the service's manifest of batch ${root} is not the one registered on chain: ${error.reason}`);
          }
          throw error;
        }
        if (manifest.count !== batch.count) {
          throw new IntegrityError(`the chain registered batch ${root} with ${batch.count} records; its manifest holds ${manifest.count}`);
        }
        leaves = new Map(manifest.leaves.map((leaf) => [bytesToHex0x(leaf.recordId), leaf.commitment]));
        this.#leaves.set(root, leaves);
      }
      for (const [id, commitment] of leaves) found.set(id, commitment);
    }
    return found;
  }
}

