// The Node side of tests/web/test_patient_parity.py: the web PatientClient against the real
// API and anvil, signing with a private key (patient_signer.ts). One JSON request on stdin:
//   {base_url, rpc_url, private_key, gasless?, stream_uploads?, ops: [{op, ...}]}
// signs in (SIWE), unlocks the keys (the KeyDerivation signature), runs the ops in order and
// prints one JSON answer: {address, results: [...], asked: [purposes shown]}. An op that fails
// answers {error, field?, status?, message} and the next ops still run; each answer carries
// its time in ms. Hex everywhere.
//   addRecord {content, label, content_type, epoch?}   -> {record_id, scope_id, epoch, commitment}
//   addRecords {items: [{content, label, content_type}]} -> {record_ids, progress}
//   importRecords {items: [{content, label, content_type}]} | {again: true} (the same items, a retry)
//                                                      -> {record_ids, batches, phases, last}
//   addFile {path, label, content_type}                -> {record_id, size, progress_calls, peak_array_buffers}
//   readOwn {record_id}                                -> {content}
//   openOwn {record_id}                                -> {size, sha256, content_type}
//   records | grants | reads | attemptedReads | inbox | providers -> {value}
//   grant {provider, labels, expires_in}               -> {tx_hash, block_number, kfrags_stored}
//   revoke {provider, label} | revokeAll {provider}    -> {tx_hash, block_number, rekeyed}
//   scope {label}                                      -> {scope_id, epoch}
//   readMany {record_ids, parallel?}                   -> {contents, each} (the listed records, in that order)
//   requests                                           -> {api: ["GET /path"...], rpc: ["eth_getLogs"...]} since the last one
import { openAsBlob } from "node:fs";
import { createPublicClient, http, type Hex } from "viem";
import { createApi, type ApiOptions, ApiError } from "../src/api/client.ts";
import { bytesToHex, bytesToHex0x, hexToBytes } from "../src/core/bytes.ts";
import { InputError, KizunaError } from "../src/core/errors.ts";
import { loadDeployment, signIn, unlockKeys } from "../src/wallet/connection.ts";
import { ChainReader } from "../src/patient/chain.ts";
import { PatientClient } from "../src/patient/patient.ts";
import type { RecordInfo } from "../src/patient/records.ts";
import type { ImportItem, ImportProgress } from "../src/patient/batches.ts";
import { KeySigner } from "./patient_signer.ts";

type Op = Record<string, unknown> & { op: string };
type Request = { base_url: string; rpc_url: string; private_key: Hex; gasless?: boolean; stream_uploads?: boolean; ops: Op[] };

function info(r: RecordInfo): object {
  return { record_id: r.id, scope_id: bytesToHex0x(r.scopeId), epoch: r.epoch, commitment: bytesToHex0x(r.commitment), size: r.size, content_type: r.contentType, created_at: r.createdAt };
}

function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v) => (v instanceof Uint8Array ? bytesToHex0x(v) : typeof v === "bigint" ? String(v) : v)));
}

/** The items of the last importRecords: `again` retries with the same objects. */
let importing: ImportItem[] = [];

async function run(client: PatientClient, op: Op): Promise<object> {
  switch (op.op) {
    case "importRecords": {
      if (!op.again) {
        importing = (op.items as Array<Record<string, string>>).map((i) => client.importItem({
          content: hexToBytes(i.content as string), label: i.label as string, contentType: i.content_type as string }));
      }
      const phases: string[] = [];
      let last: ImportProgress | null = null;
      const batches = await client.importRecords(importing, (p) => {
        if (phases.at(-1) !== p.phase) phases.push(p.phase);
        last = p;
      });
      return { record_ids: importing.map((i) => bytesToHex0x(i.recordId)), batches, phases, last };
    }
    case "addRecord": {
      const content = hexToBytes(op.content as string);
      if (op.epoch !== undefined) {
        // The lower level (Python's upload(epoch=...)): encrypt to a given key epoch.
        const { Records } = await import("../src/patient/records.ts");
        const { Scopes } = await import("../src/patient/scopes.ts");
        const { Batches } = await import("../src/patient/batches.ts");
        const scopes = new Scopes(client.context);
        const records = new Records(client.context, scopes, true, new Batches(client.context, scopes));
        return info(await records.add(content, { label: op.label as string, contentType: op.content_type as string, epoch: op.epoch as number }));
      }
      return info(await client.addRecord(content, { label: op.label as string, contentType: op.content_type as string }));
    }
    case "addRecords": {
      const progress: number[][] = [];
      const items = (op.items as Array<Record<string, string>>).map((i) => ({ content: hexToBytes(i.content as string), label: i.label as string, contentType: i.content_type as string }));
      const added = await client.addRecords(items, (done, total) => progress.push([done, total]));
      return { record_ids: added.map((r) => r.id), progress };
    }
    case "addFile": {
      const file = await openAsBlob(op.path as string);
      let calls = 0;
      let last: [number, number] = [0, 0];
      let peak = 0;
      const added = await client.addFile(file, { label: op.label as string, contentType: op.content_type as string }, (sent, total) => {
        calls += 1;
        last = [sent, total];
        // With --expose-gc, what is measured is what the upload still holds, not garbage
        // the collector has not come to yet.
        (globalThis as { gc?: () => void }).gc?.();
        peak = Math.max(peak, process.memoryUsage().arrayBuffers);
      });
      return { ...info(added), progress_calls: calls, last_progress: last, peak_array_buffers: peak };
    }
    case "readOwn":
      return { content: bytesToHex(await client.readOwn(op.record_id as string)) };
    case "readMany": {
      const byId = new Map((await client.records()).map((r) => [r.id, r]));
      const wanted = (op.record_ids as string[]).map((id) => byId.get(id.toLowerCase() as `0x${string}`)!);
      let each = 0;
      const contents = await client.readMany(wanted, () => { each += 1; }, op.parallel as number | undefined);
      return { contents: contents.map((c) => bytesToHex(c)), each };
    }
    case "requests": {
      await new Promise((resolve) => setTimeout(resolve, 50)); // the RPC log is written asynchronously
      const answer = { api: [...seen.api], rpc: [...seen.rpc] };
      seen.api.length = 0;
      seen.rpc.length = 0;
      return answer;
    }
    case "openOwn": {
      // Streamed: only the size and a SHA-256 of the plaintext come back (large files).
      const { createHash } = await import("node:crypto");
      const hash = createHash("sha256");
      let size = 0;
      const { record, chunks } = await client.openOwn(op.record_id as string);
      for await (const chunk of chunks) {
        hash.update(chunk);
        size += chunk.length;
      }
      return { size, sha256: hash.digest("hex"), content_type: record.contentType };
    }
    case "records":
      return { value: plain((await client.records()).map((r) => ({ ...info(r), label: r.label }))) };
    case "grants":
      return { value: plain(await client.grants()) };
    case "reads":
      return { value: plain(await client.reads()) };
    case "attemptedReads":
      return { value: plain(await client.attemptedReads()) };
    case "inbox":
      return { value: plain(await client.inbox()) };
    case "providers":
      return { value: plain(await client.providers()) };
    case "scope": {
      const s = await client.scope(op.label as string);
      return { scope_id: bytesToHex0x(s.scopeId), epoch: s.epoch };
    }
    case "grant": {
      const expiresAt = op.expires_at !== undefined ? (op.expires_at as number) : (await client.now()) + (op.expires_in as number);
      const done = await client.grant(op.provider as string, op.labels as string[], expiresAt);
      return { tx_hash: done.txHash, block_number: done.blockNumber, kfrags_stored: done.kfragsStored, scope_ids: done.scopeIds };
    }
    case "revoke": {
      const done = await client.revoke(op.provider as string, op.label as string);
      return { tx_hash: done.txHash, block_number: done.blockNumber, rekeyed: done.rekeyed };
    }
    case "revokeAll": {
      const done = await client.revokeAll(op.provider as string);
      return { tx_hash: done.txHash, block_number: done.blockNumber, rekeyed: done.rekeyed };
    }
    default:
      throw new InputError("op", `unknown op ${JSON.stringify(op.op)}`);
  }
}

/** What the client sent (the `requests` op): API requests and JSON-RPC methods. */
const seen = { api: [] as string[], rpc: [] as string[] };

const countingFetch: typeof fetch = (input, init) => {
  const request = input instanceof globalThis.Request ? input : null;
  const url = new URL(request ? request.url : String(input));
  seen.api.push(`${request?.method ?? init?.method ?? "GET"} ${url.pathname}`);
  return globalThis.fetch(input, init);
};

async function rpcMethods(request: globalThis.Request): Promise<void> {
  const body = (await request.clone().json()) as { method: string } | { method: string }[];
  for (const call of Array.isArray(body) ? body : [body]) seen.rpc.push(call.method);
}

function failure(error: unknown): object {
  if (!(error instanceof KizunaError)) throw error;
  return {
    error: error.name,
    message: error.message,
    field: error instanceof InputError ? error.field : error instanceof ApiError ? error.field : undefined,
    status: error instanceof ApiError ? error.status : undefined,
  };
}

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const request = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Request;
  let token: string | null = null;
  const apiOptions: ApiOptions = { baseUrl: request.base_url, token: () => token, fetch: countingFetch };
  const api = createApi(apiOptions);
  const deployment = await loadDeployment(api);
  const signer = new KeySigner(request.private_key, request.rpc_url, deployment.chainId);
  token = (await signIn(api, signer)).token;
  const keys = await unlockKeys(signer, deployment);
  const client = new PatientClient({
    api, apiOptions, signer, keys, deployment, gasless: request.gasless ?? true,
    streamUploads: request.stream_uploads ?? true,
    chain: new ChainReader(createPublicClient({ transport: http(request.rpc_url, { onFetchRequest: (r) => void rpcMethods(r) }) }), deployment),
  });
  const results: object[] = [];
  for (const op of request.ops) {
    try {
      const started = performance.now();
      results.push({ ...(await run(client, op)), ms: Math.round(performance.now() - started) });
    } catch (error) {
      results.push(failure(error));
    }
  }
  process.stdout.write(JSON.stringify({ address: signer.address, results, asked: signer.asked }));
}

await main();
