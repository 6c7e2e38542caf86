// The patient's records in the page (kizuna/client/patient.py seal / sign_registration /
// upload / add_file / records / read_own): encrypted here to the delegating key of the scope's
// current epoch, the envelope's commitment signed in a RegisterRecord (or registered by the
// wallet's own transaction), uploaded with the headers kizuna/client/http.py sends, and read
// back checked against the commitment the chain holds — for a record of a batch (batches.ts),
// the commitment in the batch's manifest, whose leaves lead to the root the chain holds.

import { sha256 } from "@noble/hashes/sha2";
import { ApiError, ApiUnreachable, rawFetch, ok, type Schemas } from "../api/client.ts";
import { bytesToHex0x, concatBytes, hexToBytes, type Bytes } from "../core/bytes.ts";
import { commitmentOf, decryptStream, encryptBytes, repeatableEncryption } from "../core/envelope.ts";
import { InputError, IntegrityError } from "../core/errors.ts";
import type { Batches } from "./batches.ts";
import type { Authorization, PatientContext } from "./context.ts";
import { labelForPeople, type Scopes } from "./scopes.ts";
import { decryptPool } from "../workers/pool.ts";

export type RecordInfo = {
  recordId: Bytes;
  /** 0x hex of recordId (for keys and links). */
  id: `0x${string}`;
  patient: string;
  scopeId: Bytes;
  cid: string;
  commitment: Bytes;
  size: number;
  contentType: string;
  createdAt: number;
  epoch: number;
};

/** The scope's key epoch moved (a revocation) between encrypting a record and uploading it:
 * the service refuses a record encrypted to an old epoch's key. Nothing was registered; add
 * the record again and it is encrypted to the new key. */
export class KeyEpochMoved extends InputError {
  override name = "KeyEpochMoved";
  readonly current: number;
  constructor(used: number, current: number) {
    super("epoch", `this part of your record moved to key version ${current} (a sharing was revoked) while the record was being encrypted to version ${used}: add it again`);
    this.current = current;
  }
}

export type LabelledRecord = RecordInfo & { label: string | null };

export function recordInfo(out: Schemas["RecordOut"]): RecordInfo {
  return {
    recordId: hexToBytes(out.record_id, "record_id"),
    id: out.record_id.toLowerCase() as `0x${string}`,
    patient: out.patient,
    scopeId: hexToBytes(out.scope_id, "scope_id"),
    cid: out.cid,
    commitment: hexToBytes(out.commitment, "commitment"),
    size: out.size,
    contentType: out.content_type,
    createdAt: out.created_at,
    epoch: out.epoch ?? 0,
  };
}

/** A record id from bytes or 0x hex (InputError naming record_id otherwise). */
export function recordIdOf(value: Uint8Array | string): Bytes {
  const bytes = typeof value === "string" ? hexToBytes(value, "record_id") : new Uint8Array(value);
  if (bytes.length !== 32) throw new InputError("record_id", `must be 32 bytes (0x and 64 hex digits), got ${bytes.length}`);
  return bytes;
}

/** The headers of PUT /patient/records/{id} (kizuna/client/http.py upload_record). */
export function uploadHeaders(o: { scopeId: Uint8Array; epoch: number; registration: Authorization; supersedes?: Uint8Array }): Headers {
  const headers = new Headers({
    "Content-Type": "application/octet-stream",
    "X-Kizuna-Scope-Id": bytesToHex0x(o.scopeId),
    "X-Kizuna-Registration": JSON.stringify(o.registration),
    "X-Kizuna-Scope-Epoch": String(o.epoch),
  });
  if (o.supersedes) headers.set("X-Kizuna-Supersedes", bytesToHex0x(o.supersedes));
  return headers;
}

type Body = Uint8Array | ReadableStream<Uint8Array> | Blob;

export type FileProgress = (sentBytes: number, totalBytes: number) => void;

/** The part size of a chunked upload (kizuna/services/uploads.py PART_SIZE; the session's
 * answer names it): a larger envelope goes in parts, a smaller one in one request. */
export const UPLOAD_PART_SIZE = 8 << 20;

export class Records {
  readonly #ctx: PatientContext;
  readonly #scopes: Scopes;
  /** Streamed request bodies (fetch + duplex "half"): Node and HTTP/2 servers. Browsers refuse
   * them over HTTP/1.1, so there the second pass is assembled into a Blob that the browser
   * keeps outside the page's heap. */
  readonly #streamUploads: boolean;
  readonly #batches: Batches;

  constructor(ctx: PatientContext, scopes: Scopes, streamUploads: boolean, batches: Batches) {
    this.#ctx = ctx;
    this.#scopes = scopes;
    this.#streamUploads = streamUploads;
    this.#batches = batches;
  }

  /** The registration of an envelope: the RegisterRecord typed data (nonce from the chain)
   * signed, or the wallet's registerRecord sent. */
  async register(o: { recordId: Uint8Array; scopeId: Uint8Array; commitment: Uint8Array; label: string; what: string }): Promise<Authorization> {
    const prepared = ok(await this.#ctx.api.POST("/wallet/prepare/register-record", {
      body: {
        record_id: bytesToHex0x(o.recordId), commitment: bytesToHex0x(o.commitment),
        scope_id: bytesToHex0x(o.scopeId), deadline: await this.#ctx.deadline(),
      },
    }));
    return this.#ctx.authorize(prepared, {
      title: o.what,
      why: "Records on the blockchain that this encrypted record is yours and has not been changed. " +
        "Only a fingerprint of the encrypted data is recorded; its content stays encrypted in this page.",
      details: [["Part of your record", labelForPeople(o.label)], ["Fingerprint", bytesToHex0x(o.commitment)]],
    });
  }

  async #upload(o: { recordId: Uint8Array; scopeId: Uint8Array; epoch: number; registration: Authorization; body: Body }): Promise<RecordInfo> {
    const init: RequestInit & { duplex?: "half" } = {
      method: "PUT",
      headers: uploadHeaders(o),
      body: o.body as BodyInit,
    };
    if (o.body instanceof ReadableStream) init.duplex = "half";
    const query = this.#ctx.ward ? `?patient=${this.#ctx.ward}` : "";
    let response: Response;
    try {
      response = await rawFetch(this.#ctx.apiOptions, `/patient/records/${bytesToHex0x(o.recordId)}${query}`, init);
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        const current = await this.#scopes.epoch(o.scopeId);
        if (current !== o.epoch) throw new KeyEpochMoved(o.epoch, current);
      }
      throw error;
    }
    return recordInfo((await response.json()) as Schemas["RecordOut"]);
  }

  /** Encrypt, register and upload one record held in memory. */
  async add(content: Uint8Array, o: { label: string; contentType: string; what?: string | undefined; epoch?: number }): Promise<RecordInfo> {
    this.#ctx.ownOnly("Adding records");
    const current = await this.#scopes.current(o.label);
    const { scopeId, label } = current;
    // An explicit epoch (Python's upload(epoch=...)): the service takes only the current one.
    const epoch = o.epoch ?? current.epoch;
    if (epoch !== current.epoch) await this.#scopes.register(scopeId, epoch);
    const recordId = crypto.getRandomValues(new Uint8Array(32));
    const ownerKey = (await this.#ctx.keys.scopeDelegatingKey(scopeId, epoch)).publicKey();
    const envelope = await encryptBytes(content, { ownerKey, recordId, contentType: o.contentType });
    const commitment = await commitmentOf(envelope);
    const registration = await this.register({
      recordId, scopeId, commitment, label, what: o.what ?? `Add a record to your health record (${labelForPeople(label)})`,
    });
    return this.#upload({ recordId, scopeId, epoch, registration, body: envelope });
  }

  /** A file of any size, encrypted twice with one data key (repeatableEncryption): the first
   * pass hashed for the commitment the registration names, the second uploaded; about two
   * segments in memory whatever the size. */
  async addFile(file: Blob, o: { label: string; contentType: string; recordId?: Uint8Array }, onProgress?: FileProgress): Promise<RecordInfo> {
    this.#ctx.ownOnly("Adding files");
    const { scopeId, epoch, label } = await this.#scopes.current(o.label);
    const recordId = o.recordId ? recordIdOf(o.recordId) : crypto.getRandomValues(new Uint8Array(32));
    const ownerKey = (await this.#ctx.keys.scopeDelegatingKey(scopeId, epoch)).publicKey();
    const sealing = await repeatableEncryption({ ownerKey, recordId, contentType: o.contentType });
    const hash = sha256.create();
    let total = 0;
    for await (const chunk of sealing.encrypt(file.stream())) {
      hash.update(chunk);
      total += chunk.length;
    }
    const commitment = new Uint8Array(hash.digest());
    const registration = await this.register({
      recordId, scopeId, commitment, label, what: `Add the file "${(file as File).name ?? "file"}" to your health record`,
    });
    let sent = 0;
    const report = (bytes: number) => {
      sent += bytes;
      onProgress?.(sent, total);
    };
    if (this.#streamUploads) {
      const chunks = sealing.encrypt(file.stream());
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const next = await chunks.next();
          if (next.done) return controller.close();
          report(next.value.length);
          controller.enqueue(next.value);
        },
        async cancel() {
          await chunks.return(undefined);
        },
      });
      return this.#upload({ recordId, scopeId, epoch, registration, body });
    }
    if (total > UPLOAD_PART_SIZE) {
      return this.#uploadInParts({ recordId, scopeId, epoch, registration, size: total, chunks: sealing.encrypt(file.stream()), report });
    }
    let blob = new Blob([]);
    for await (const chunk of sealing.encrypt(file.stream())) {
      blob = new Blob([blob, chunk as BlobPart]);
      report(chunk.length);
    }
    return this.#upload({ recordId, scopeId, epoch, registration, body: blob });
  }

  /** A browser cannot stream a request body over HTTP/1.1: a large envelope goes as a chunked
   * upload (POST /patient/uploads, kizuna/services/uploads.py) — encrypted part by part, each
   * part sent before the next is made, so the page holds one part (8 MiB) whatever the size;
   * then the session is completed with the registration, checked as a single upload is. */
  async #uploadInParts(o: {
    recordId: Uint8Array; scopeId: Uint8Array; epoch: number; registration: Authorization; size: number;
    chunks: AsyncGenerator<Uint8Array>; report: (bytes: number) => void;
  }): Promise<RecordInfo> {
    let session: Schemas["UploadOut"];
    try {
      session = ok(await this.#ctx.api.POST("/patient/uploads", {
        body: { record_id: bytesToHex0x(o.recordId), scope_id: bytesToHex0x(o.scopeId), epoch: o.epoch, size: o.size },
      }));
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        const current = await this.#scopes.epoch(o.scopeId);
        if (current !== o.epoch) throw new KeyEpochMoved(o.epoch, current);
      }
      throw error;
    }
    const uploadId = session.upload_id;
    try {
      const buffer = new Uint8Array(session.part_size);
      let filled = 0;
      let n = 0;
      const send = async (part: Uint8Array) => {
        await this.#sendPart(uploadId, n, part);
        n += 1;
        o.report(part.length);
      };
      for await (const chunk of o.chunks) {
        let offset = 0;
        while (offset < chunk.length) {
          const take = Math.min(chunk.length - offset, buffer.length - filled);
          buffer.set(chunk.subarray(offset, offset + take), filled);
          filled += take;
          offset += take;
          if (filled === buffer.length) {
            await send(buffer);
            filled = 0;
          }
        }
      }
      if (filled > 0) await send(buffer.subarray(0, filled));
      return recordInfo(ok(await this.#ctx.api.POST("/patient/uploads/{upload_id}/complete", {
        params: { path: { upload_id: uploadId } },
        body: { registration: o.registration },
      })));
    } catch (error) {
      // Nothing is kept of an upload that failed: its parts are released now (the service's
      // sweep would, a day later). Trying again encrypts and sends the file anew.
      await rawFetch(this.#ctx.apiOptions, `/patient/uploads/${uploadId}`, { method: "DELETE" }).catch(() => undefined);
      throw error;
    }
  }

  /** Part `n` of an upload, sent again (at most twice) after a dropped connection or a server
   * error — unless the session says it was stored and only its answer was lost. */
  async #sendPart(uploadId: string, n: number, part: Uint8Array): Promise<void> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        await rawFetch(this.#ctx.apiOptions, `/patient/uploads/${uploadId}/parts/${n}`, {
          method: "PUT", headers: { "Content-Type": "application/octet-stream" }, body: part as BodyInit,
        });
        return;
      } catch (error) {
        const retryable = error instanceof ApiUnreachable
          || (error instanceof ApiError && (error.status === 409 || error.status >= 500));
        if (!retryable || attempt >= 2) throw error;
        const status = ok(await this.#ctx.api.GET("/patient/uploads/{upload_id}", { params: { path: { upload_id: uploadId } } }));
        if (status.parts > n) return;
        if (status.parts < n) throw error;
      }
    }
  }

  /** The patient's records (metadata), newest first. */
  async list(): Promise<RecordInfo[]> {
    const found = ok(await this.#ctx.api.GET("/patient/records", { params: { query: this.#ctx.acting() } }));
    return found.map(recordInfo).sort((a, b) => b.createdAt - a.createdAt);
  }

  /** One of the patient's records (metadata) by id — one request, whatever the number of
   * records — and the block its registration is in, as the service's index says (a hint for
   * the chain lookup, checked there). InputError("record_id") when it is not theirs. */
  async get(recordId: Uint8Array | string): Promise<{ record: RecordInfo; blockNumber: number | null }> {
    const id = bytesToHex0x(recordIdOf(recordId));
    let found: Schemas["RecordOut"];
    try {
      found = ok(await this.#ctx.api.GET("/patient/records/{record_id}", {
        params: { path: { record_id: id }, query: this.#ctx.acting() },
      }));
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 403)) {
        throw new InputError("record_id", `${id} is not one of your records`);
      }
      throw error;
    }
    return { record: recordInfo(found), blockNumber: found.block_number ?? null };
  }

  /** A record's envelope downloaded and decrypted as a stream, checked against `expected`. */
  async #open(record: RecordInfo, expectedCommitment: Uint8Array): Promise<AsyncGenerator<Bytes>> {
    const response = await rawFetch(this.#ctx.apiOptions, `/patient/records/${record.id}/content`);
    if (!response.body) throw new InputError("record_id", `the service sent no content for ${record.id}`);
    const secret = await this.#ctx.keys.scopeDelegatingKey(record.scopeId, record.epoch);
    return decryptStream(response.body, secret, { expectedCommitment });
  }

  /** One of the patient's records decrypted as a stream, for records of any size (a PDF or
   * a scan shown in the page): plaintext segments as they are verified, the last one held back
   * until the envelope matches the commitment the chain holds (IntegrityError otherwise, when
   * the service served anything else). Costs the same whatever the number of records: the
   * record by id, its commitment from the one block the service names (checked by the node),
   * the content. */
  async openOwn(recordId: Uint8Array | string): Promise<{ record: RecordInfo; chunks: AsyncGenerator<Bytes> }> {
    this.#ctx.ownOnly("Opening records");
    const { record, blockNumber } = await this.get(recordId);
    let expectedCommitment: Bytes;
    try {
      expectedCommitment = await this.#ctx.chain.registeredCommitment(this.#ctx.patient, record.recordId, blockNumber);
    } catch (error) {
      // Not registered alone: one of the patient's batches may hold it (its manifest checked
      // against the root the chain has).
      const inBatch = error instanceof InputError ? (await this.#batches.commitments()).get(record.id) : undefined;
      if (!inBatch) throw error;
      expectedCommitment = inBatch;
    }
    return { record, chunks: await this.#open(record, expectedCommitment) };
  }

  /** One of the patient's records decrypted into memory (openOwn, collected). */
  async readOwn(recordId: Uint8Array | string): Promise<Bytes> {
    const { chunks } = await this.openOwn(recordId);
    return collect(chunks);
  }

  /** Envelopes of some of the patient's records from one request (POST
   * /patient/records/contents: for each, its id, an 8-byte big-endian length, the envelope),
   * in the order asked. */
  async #envelopes(records: readonly RecordInfo[]): Promise<Uint8Array[]> {
    const response = await rawFetch(this.#ctx.apiOptions, "/patient/records/contents", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ record_ids: records.map((r) => r.id) }),
    });
    const framed = new Uint8Array(await response.arrayBuffer());
    const view = new DataView(framed.buffer, framed.byteOffset, framed.byteLength);
    const out: Uint8Array[] = [];
    let at = 0;
    for (const record of records) {
      if (at + 40 > framed.length || bytesToHex0x(framed.subarray(at, at + 32)) !== record.id) {
        throw new IntegrityError(`the service's bulk download did not answer record ${record.id} where it was asked`);
      }
      const size = Number(view.getBigUint64(at + 32));
      if (at + 40 + size > framed.length) throw new IntegrityError(`the service's bulk download ended inside record ${record.id}`);
      out.push(framed.subarray(at + 40, at + 40 + size));
      at += 40 + size;
    }
    return out;
  }

  /** Envelopes opened, each checked against its commitment: in the session's decryption
   * workers (workers/pool.ts: the CPU of a timeline off the page's main thread, on every
   * core), or here when no worker runs or one fails — a failure is then met again here, by
   * the same code, so an envelope that does not match its commitment is refused with the
   * same IntegrityError either way. */
  async #decryptAll(records: readonly RecordInfo[], envelopes: readonly Uint8Array[], commitments: readonly Bytes[]): Promise<Bytes[]> {
    const pool = decryptPool(this.#ctx.keys);
    if (pool) {
      try {
        return await pool.open(records.map((record, k) => ({
          scopeId: record.scopeId, epoch: record.epoch, envelope: envelopes[k]!, expected: commitments[k]!,
        })));
      } catch {
        // Opened again below, where any check that failed fails again with its own error.
      }
    }
    const out: Bytes[] = [];
    for (const [k, envelope] of envelopes.entries()) {
      const record = records[k]!;
      const secret = await this.#ctx.keys.scopeDelegatingKey(record.scopeId, record.epoch);
      out.push(await collect(await decryptStream(envelope, secret, { expectedCommitment: commitments[k]! })));
    }
    return out;
  }

  /** Many of the patient's records (as listed) decrypted into memory — the bulk path of a
   * timeline: no listing here (the caller has one), ONE chain query for every commitment,
   * the envelopes BULK_CHUNK to a request (a record over 4 MiB alone, streamed), `parallel`
   * requests in flight. Each envelope is checked against the chain's commitment as in
   * readOwn (IntegrityError otherwise, or when the chain has no registration of it).
   * `onEach(index, record, content)` is called as each one is ready (any order); the answer
   * is in the order of `records`. */
  async readMany(records: readonly RecordInfo[], onEach?: (index: number, record: RecordInfo, content: Bytes) => void, parallel = DEFAULT_PARALLEL): Promise<Bytes[]> {
    this.#ctx.ownOnly("Opening records");
    if (records.length === 0) return [];
    // The workers start (fetch, WASM compiled, key handed over) while the chain is asked.
    decryptPool(this.#ctx.keys);
    const registered = await this.#ctx.chain.registeredCommitments(this.#ctx.patient);
    // Records of batches: their commitments from the manifests of the chain's roots.
    if (records.some((record) => !registered.has(record.id))) {
      for (const [id, commitment] of await this.#batches.commitments()) if (!registered.has(id)) registered.set(id, commitment);
    }
    const expected = (record: RecordInfo): Bytes => {
      const found = registered.get(record.id);
      if (!found) throw new IntegrityError(`record ${record.id} has no registration of ${this.#ctx.patient} on chain: not read`);
      return found;
    };
    // The work in order: runs of small records (one request a run), large ones alone.
    const units: number[][] = [];
    let run: number[] = [];
    records.forEach((record, index) => {
      if (record.size > MAX_BULK_RECORD_BYTES) {
        units.push([index]);
        return;
      }
      run.push(index);
      if (run.length === BULK_CHUNK) {
        units.push(run);
        run = [];
      }
    });
    if (run.length) units.push(run);
    const out: Bytes[] = new Array(records.length);
    const done = (index: number, content: Bytes) => {
      out[index] = content;
      onEach?.(index, records[index]!, content);
    };
    let next = 0;
    const worker = async () => {
      while (next < units.length) {
        const unit = units[next++]!;
        const chosen = unit.map((i) => records[i]!);
        const commitments = chosen.map(expected); // refused before anything is downloaded
        if (chosen.length === 1 && chosen[0]!.size > MAX_BULK_RECORD_BYTES) {
          done(unit[0]!, await collect(await this.#open(chosen[0]!, commitments[0]!)));
          continue;
        }
        const envelopes = await this.#envelopes(chosen);
        const contents = await this.#decryptAll(chosen, envelopes, commitments);
        contents.forEach((content, k) => done(unit[k]!, content));
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, units.length)) }, worker));
    return out;
  }
}

/** Records one bulk request carries (the API takes up to 256), and the largest envelope it
 * carries (kizuna/services/records.py MAX_BULK_RECORD_BYTES); larger ones come alone. */
export const BULK_CHUNK = 64;
export const MAX_BULK_RECORD_BYTES = 4 << 20;

/** Requests in flight in a bulk read: enough to hide the round trip, within a browser's six
 * connections per host. */
export const DEFAULT_PARALLEL = 4;

async function collect(chunks: AsyncGenerator<Bytes>): Promise<Bytes> {
  const parts: Uint8Array[] = [];
  for await (const part of chunks) parts.push(part);
  return concatBytes(...parts);
}
