// The benchmark's page: the app's real code (the crypto core, the library loader, the Timeline
// and Charts pages) behind `window.kizunaBench`, which benchmarks/web.py and
// tests/web/test_web_vectors.py call through Playwright in headless Chromium. Served by
// kizuna/web/static.py under the app's own Content-Security-Policy.
//
// Nothing here re-implements the app: timings wrap the app's functions and components; the
// vector checks return what the browser derived and Python compares it with the committed
// values (so a wrong value fails in Python, against tests/vectors/*.json).
import * as umbral from "@nucypher/umbral-pre";
import { render, type ComponentType } from "preact";
import { hashTypedData, recoverTypedDataAddress, type TypedDataDefinition } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { loadLibrary } from "../src/app/library.ts";
import { readRecord } from "./read.ts";
import { base64ToBytes, bytesToBase64, bytesToHex, bytesToHex0x, concatBytes, hexToBytes } from "../src/core/bytes.ts";
import { DEFAULT_SEGMENT_SIZE, decryptBytes, encryptBytes, encryptStream, EnvelopeReader } from "../src/core/envelope.ts";
import { forViem, type JsonTypedData } from "../src/core/eip712.ts";
import { InputError, KizunaError } from "../src/core/errors.ts";
import { canonicalJson } from "../src/importer/canonical.ts";
import { loadJson } from "../src/importer/json.ts";
import { Deidentifier, studyKey } from "../src/research/deidentify.ts";
import { deidentifyDicom, DicomUnsupported } from "../src/research/dicom.ts";
import { hkdfSha256 } from "../src/core/kdf.ts";
import { hkdf } from "@noble/hashes/hkdf";
import { sha256 } from "@noble/hashes/sha2";
import { deriveImportIdKey, ndjsonDigest, RecordIds, sourceDigest } from "../src/core/recordIds.ts";
import { blindScope } from "../src/core/scopes.ts";
import { deriveScopeDelegatingKey, deriveWalletKeys, keyDerivationTypedData, type KeyDerivationDomain, type WalletKeys } from "../src/core/walletKeys.ts";
import type { DecryptedRecord, OpenRecord } from "../src/fhir/records.ts";
import { chartSeries } from "../src/fhir/series.ts";
import type { PatientClient } from "../src/patient/patient.ts";

type Props = { records: DecryptedRecord[]; openRecord: OpenRecord };

// The pages come from helper work in progress: found when present at build time, reported as
// missing otherwise (a build without them still measures the crypto figures).
const pages = import.meta.glob("../src/pages/patient/{Timeline,Charts}.tsx");

async function page(name: "Timeline" | "Charts"): Promise<ComponentType<Props>> {
  const load = pages[`../src/pages/patient/${name}.tsx`];
  if (!load) throw new Error(`web/src/pages/patient/${name}.tsx is not in this build`);
  const module = (await load()) as Record<string, unknown>;
  const component = module[name] ?? module.default;
  if (typeof component !== "function") throw new Error(`${name}.tsx exports no ${name} component`);
  return component as ComponentType<Props>;
}

const mount = () => document.getElementById("bench") as HTMLElement;

/** Resolves once `root` shows something and the browser has painted it: two animation frames
 *  after the content is there (the first runs before that frame's paint, the second after). */
async function painted(root: HTMLElement, ready: (root: HTMLElement) => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const frame = () => new Promise<number>((resolve) => requestAnimationFrame(resolve));
  const start = performance.now();
  while (!ready(root)) {
    if (performance.now() - start > timeoutMs) throw new Error(`${what} did not appear within ${timeoutMs} ms`);
    await frame();
  }
  await frame();
  await frame();
}

// --- envelope throughput -----------------------------------------------------------------------

/** Seconds to encrypt `megabytes` MB (10^6 bytes) as one streamed envelope, each round: the
 *  upload path's `encryptStream` over a Blob's stream (what a dropped File gives). Beside it,
 *  the least WebCrypto itself takes: raw AES-256-GCM over the same bytes in the same 1 MiB
 *  pieces (no header, no stream, no key wrapping). */
async function envelope(megabytes: number, rounds: number): Promise<{ seconds: number[]; webcrypto: number[]; bytes: number; envelope: number }> {
  const size = megabytes * 1_000_000;
  const data = new Uint8Array(size);
  for (let at = 0; at < size; at += 65_536) crypto.getRandomValues(data.subarray(at, Math.min(at + 65_536, size)));
  const file = new Blob([data]);
  const owner = umbral.SecretKey.random();
  const seconds: number[] = [];
  let total = 0;
  for (let round = 0; round < rounds; round++) {
    const recordId = crypto.getRandomValues(new Uint8Array(32));
    const start = performance.now();
    const { chunks } = await encryptStream(file.stream(), { ownerKey: owner.publicKey(), recordId, contentType: "application/octet-stream" });
    total = 0;
    for await (const chunk of chunks) total += chunk.length;
    seconds.push((performance.now() - start) / 1000);
  }
  const raw = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt"]);
  const webcrypto: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const start = performance.now();
    for (let at = 0; at < size; at += DEFAULT_SEGMENT_SIZE) {
      await crypto.subtle.encrypt({ name: "AES-GCM", iv }, raw, data.subarray(at, Math.min(at + DEFAULT_SEGMENT_SIZE, size)));
    }
    webcrypto.push((performance.now() - start) / 1000);
  }
  return { seconds, webcrypto, bytes: size, envelope: total };
}

/** The most WebCrypto gives in this browser, whatever an envelope does: raw AES-256-GCM in
 *  `workers` Web Workers at once (aes.worker.ts), each over its own buffer of `piece` bytes,
 *  `megabytes` MB in all. MB/s. With `piece` = the envelope's segment (1 MiB, fixed by the
 *  format) this bounds any page envelope; smaller pieces show what the segment size costs. */
async function webcryptoCeiling(megabytes: number, workers: number, piece: number): Promise<number> {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const count = Math.max(1, Math.round((megabytes * 1_000_000) / piece / workers));
  const started: Promise<void>[] = [];
  const finished: Promise<void>[] = [];
  const pool = Array.from({ length: workers }, () => new Worker(new URL("./aes.worker.ts", import.meta.url), { type: "module" }));
  try {
    await Promise.all(pool.map((worker) => new Promise<void>((ready, fail) => {
      let begin: () => void = () => undefined;
      let end: () => void = () => undefined;
      started.push(new Promise<void>((resolve) => (begin = resolve)));
      finished.push(new Promise<void>((resolve) => (end = resolve)));
      worker.onerror = (event) => fail(new Error(`the AES worker failed: ${event.message}`));
      worker.onmessage = (event: MessageEvent<string>) => {
        if (event.data === "ready") ready();
        else if (event.data === "started") begin();
        else end();
      };
    })));
    const start = performance.now();
    for (const worker of pool) worker.postMessage({ key, piece, count });
    await Promise.all(started);
    await Promise.all(finished);
    return (workers * count * piece) / 1e6 / ((performance.now() - start) / 1000);
  } finally {
    for (const worker of pool) worker.terminate();
  }
}

// --- timeline and charts -----------------------------------------------------------------------

type Listed = { recordId: string; label: string; scopeId: string; contentType: string; createdAt: number; offset: number; length: number; commitment: string };
type TimelineInput = { signature: string; account: string; chainId: number; verifyingContract: string };
type Info = { id: string; label: string; contentType: string; createdAt: number; scopeId: Uint8Array; epoch: number; commitment: Uint8Array; offset: number; length: number };

async function listing(): Promise<Info[]> {
  const listed = (await (await fetch("/bench/records.json")).json()) as Listed[];
  return listed.map((r) => ({ id: r.recordId, label: r.label, contentType: r.contentType, createdAt: r.createdAt,
    scopeId: hexToBytes(r.scopeId), epoch: 0, commitment: hexToBytes(r.commitment), offset: r.offset, length: r.length }));
}

const walletKeys = (input: TimelineInput) =>
  deriveWalletKeys(input.signature, input.account, { chainId: input.chainId, verifyingContract: input.verifyingContract });

const timelineShown = (root: HTMLElement) => (root.textContent ?? "").trim().length > 0 && !root.querySelector("[aria-busy='true']");

/** The patient's library loaded by the app's loader (web/src/app/library.ts `loadLibrary`:
 *  the listing, then `readMany` with its parallelism, FHIR JSON parsed), each read as
 *  `readRecord`, then the Timeline rendered until its first screen is painted. Seconds.
 *  `bulk`: a what-if, every envelope in one download first (no GET per record). */
async function timeline(input: TimelineInput, bulk = false) {
  const Timeline = await page("Timeline");
  const keys = await walletKeys(input); // the wallet's signature, asked once at unlock
  const start = performance.now();
  const all = bulk ? new Uint8Array(await (await fetch("/bench/envelopes.bin")).arrayBuffer()) : null;
  const sealed = (info: Info) => all?.subarray(info.offset, info.offset + info.length);
  // The loader's only calls on its client: the listing, and the bulk read with its callback.
  const client = {
    records: listing,
    readMany: async (records: readonly Info[], onEach?: (index: number, record: Info, content: Uint8Array) => void, parallel = 6) => {
      const out: Uint8Array[] = new Array(records.length);
      let next = 0;
      const reader = async () => {
        while (next < records.length) {
          const index = next++;
          out[index] = await readRecord(keys, records[index]!, sealed(records[index]!));
          onEach?.(index, records[index]!, out[index]!);
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, records.length)) }, reader));
      return out;
    },
  } as unknown as PatientClient;
  const records = await loadLibrary(client);
  const decrypted = performance.now();
  const root = mount();
  render(null, root);
  const rendering = performance.now();
  const byId = new Map((await listing()).map((r) => [r.id, r]));
  const openRecord: OpenRecord = (id) => readRecord(keys, byId.get(id)!);
  render(<Timeline records={records} openRecord={openRecord} />, root);
  await painted(root, timelineShown, "the timeline");
  const end = performance.now();
  return {
    records: records.length,
    parsed: records.filter((r) => r.resource !== null).length,
    decrypt_s: (decrypted - start) / 1000,
    render_s: (end - rendering) / 1000,
    total_s: (end - start) / 1000,
    items_on_screen: root.querySelectorAll("li, article").length,
  };
}

/** The same reads split over `workers` Web Workers (decrypt.worker.ts, `readRecord` in each),
 *  then parsed and rendered as in `timeline`: a what-if for the app, which reads on the page's
 *  own thread (umbral-pre's WASM unwrap is synchronous there). */
async function timelineWorkers(input: TimelineInput, workers: number) {
  const Timeline = await page("Timeline");
  const start = performance.now();
  const listed = await listing();
  const shares = Array.from({ length: workers }, (_, w) => listed.flatMap((info, index) => (index % workers === w ? [{ index, info }] : [])));
  const answers = await Promise.all(shares.map((share) => new Promise<{ index: number; plaintext: Uint8Array }[]>((resolve, reject) => {
    const worker = new Worker(new URL("./decrypt.worker.ts", import.meta.url), { type: "module" });
    worker.onmessage = (event) => {
      if (event.data === "ready") return worker.postMessage({ wallet: input, records: share });
      resolve(event.data);
      worker.terminate();
    };
    worker.onerror = (event) => { reject(new Error(event.message)); worker.terminate(); };
  })));
  const records: DecryptedRecord[] = new Array(listed.length);
  const decoder = new TextDecoder();
  for (const { index, plaintext } of answers.flat()) {
    const info = listed[index]!;
    records[index] = { recordId: info.id, label: info.label, contentType: info.contentType, createdAt: info.createdAt,
      resource: JSON.parse(decoder.decode(plaintext)) as DecryptedRecord["resource"] };
  }
  const decrypted = performance.now();
  const root = mount();
  render(null, root);
  const openRecord: OpenRecord = async (id) => { throw new Error(`no files here (${id})`); };
  render(<Timeline records={records} openRecord={openRecord} />, root);
  await painted(root, timelineShown, "the timeline");
  const end = performance.now();
  return { workers, records: records.filter(Boolean).length, decrypt_s: (decrypted - start) / 1000, total_s: (end - start) / 1000 };
}

/** Where a record's read goes, over the first `count` sealed records (ms a record): the scope
 *  key's derivation, the header's parse and the Umbral unwrap of the data key, then the whole
 *  decryption (commitment, AES-GCM) with the key already derived. */
async function decryptProfile(input: TimelineInput, count: number) {
  const keys = await walletKeys(input);
  const listed = (await listing()).slice(0, count);
  const bodies = await Promise.all(listed.map(async (info) => new Uint8Array(await (await fetch(`/bench/records/${info.id}/content`)).arrayBuffer())));
  let start = performance.now();
  const secrets: umbral.SecretKey[] = [];
  for (const info of listed) secrets.push(await keys.scopeDelegatingKey(info.scopeId, info.epoch));
  const scopeKey = (performance.now() - start) / listed.length;
  start = performance.now();
  for (const [i, body] of bodies.entries()) {
    const reader = await EnvelopeReader.open(body);
    reader.header.unwrapForOwner(secrets[i]!);
  }
  const unwrap = (performance.now() - start) / listed.length;
  start = performance.now();
  for (const [i, info] of listed.entries()) {
    await decryptBytes(bodies[i]!, { ownerSecretKey: secrets[i]!, expectedCommitment: info.commitment });
  }
  const whole = (performance.now() - start) / listed.length;
  start = performance.now();
  for (const info of listed) await (await fetch(`/bench/records/${info.id}/content`)).arrayBuffer();
  const get = (performance.now() - start) / listed.length;
  return { records: listed.length, scope_key_ms: scopeKey, parse_unwrap_ms: unwrap, decrypt_ms: whole, get_ms: get };
}

/** What an envelope's two 32-byte keys cost a record, µs: WebCrypto's HKDF-SHA256 (envelope.ts's
 *  `hkdfSha256`: importKey and deriveBits, each a round trip to WebCrypto's thread) against the
 *  same in JavaScript (@noble/hashes), a what-if: a CPU trace under load blamed WebCrypto's HKDF
 *  for a timeline's time, but the JavaScript one measures slower. Beside them, the AES key's
 *  import and a 4 KB segment's AES-GCM decryption. Rounds interleaved. */
async function kdfProfile(count: number, rounds: number) {
  const ikm = crypto.getRandomValues(new Uint8Array(32));
  const salt = crypto.getRandomValues(new Uint8Array(39));
  const a = new TextEncoder().encode("kizuna/envelope/v1/aes-256-gcm");
  const b = new TextEncoder().encode("kizuna/envelope/v1/key-commitment");
  let js = Infinity, webcrypto = Infinity, aes = Infinity;
  const data = new Uint8Array(4096);
  const iv = new Uint8Array(12);
  const key = await crypto.subtle.importKey("raw", ikm, "AES-GCM", false, ["encrypt", "decrypt"]);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, data));
  for (let round = 0; round < rounds; round++) {
    let start = performance.now();
    for (let i = 0; i < count; i++) { hkdf(sha256, ikm, salt, a, 32); hkdf(sha256, ikm, salt, b, 32); }
    js = Math.min(js, ((performance.now() - start) * 1000) / count);
    start = performance.now();
    for (let i = 0; i < count; i++) { await hkdfSha256(ikm, salt, a, 32); await hkdfSha256(ikm, salt, b, 32); }
    webcrypto = Math.min(webcrypto, ((performance.now() - start) * 1000) / count);
    start = performance.now();
    for (let i = 0; i < count; i++) {
      const k = await crypto.subtle.importKey("raw", ikm, "AES-GCM", false, ["decrypt"]);
      await crypto.subtle.decrypt({ name: "AES-GCM", iv }, k, sealed);
    }
    aes = Math.min(aes, ((performance.now() - start) * 1000) / count);
  }
  return { hkdf_js_us: js, hkdf_webcrypto_us: webcrypto, aes_import_decrypt_4kb_us: aes };
}

/** Render the Charts page over the records in /bench/chart.json until its chart is painted. */
async function chart() {
  const Charts = await page("Charts");
  const records = (await fetch("/bench/chart.json").then((r) => r.json())) as DecryptedRecord[];
  const root = mount();
  render(null, root);
  const openRecord: OpenRecord = async (id) => {
    throw new Error(`the chart benchmark has no files (${id})`);
  };
  const start = performance.now();
  render(<Charts records={records} openRecord={openRecord} />, root);
  await painted(root, (r) => r.querySelector("canvas, svg") !== null, "the chart");
  const end = performance.now();
  // Where the time goes: the series built from the records alone (web/src/fhir/series.ts), and
  // how many table rows the page rendered beside the chart.
  const seriesStart = performance.now();
  const series = chartSeries(records);
  const seriesMs = performance.now() - seriesStart;
  return {
    points: records.length,
    render_ms: end - start,
    series_ms: seriesMs,
    charts: series.length,
    canvases: root.querySelectorAll("canvas").length,
    table_rows: root.querySelectorAll("tbody tr").length,
  };
}

// --- the committed vectors, re-derived here ----------------------------------------------------

// Epochs as decimal strings: they go up to 2^64 - 1, beyond a JavaScript number.
type WalletInput = { private_key: `0x${string}`; account: string; domain: KeyDerivationDomain; labels: string[]; epochs: string[] };

/** What this browser derives for one tests/vectors/wallet_keys.json entry, from its inputs
 *  only (private key, account, domain, scope labels, epochs). */
async function walletVector(input: WalletInput) {
  const typedData = keyDerivationTypedData(input.account.toLowerCase(), input.domain);
  const forViem = { ...typedData, domain: { ...typedData.domain, chainId: BigInt(typedData.domain.chainId) } };
  const account = privateKeyToAccount(input.private_key);
  const signature = await account.signTypedData(forViem);
  const keys = await deriveWalletKeys(signature, input.account, input.domain);
  const pk = (key: umbral.SecretKey) => bytesToHex(key.publicKey().toCompressedBytes());
  const scopeIds: Record<string, string> = {};
  const delegating: Record<string, string> = {};
  const byEpoch: Record<string, Record<string, string>> = {};
  for (const label of input.labels) {
    const id = await blindScope(keys.scopeKey, label);
    scopeIds[label] = bytesToHex0x(id);
    delegating[label] = pk(await keys.scopeDelegatingKey(id));
    for (const epoch of input.epochs) {
      (byEpoch[epoch] ??= {})[label] = pk(await deriveScopeDelegatingKey(keys.decryptingKey, id, BigInt(epoch)));
    }
  }
  return {
    account: account.address,
    typed_data: typedData,
    digest: hashTypedData(forViem),
    signature,
    umbral_public_key: bytesToHex(keys.publicKey.toCompressedBytes()),
    umbral_verifying_key: bytesToHex(keys.verifyingKey.toCompressedBytes()),
    scope_ids: scopeIds,
    scope_delegating_keys: delegating,
    scope_delegating_keys_by_epoch: byEpoch,
  };
}



/** What this browser derives for one tests/vectors/record_ids.json entry, from its inputs
 *  only (private key, account, domain, the files, each id's digest and index). */
async function recordIdVector(input: { private_key: `0x${string}`; account: string; domain: KeyDerivationDomain; files: string[]; ids: Array<{ digest: string; index: number }> }) {
  const typed = keyDerivationTypedData(input.account, input.domain);
  const signature = await privateKeyToAccount(input.private_key).signTypedData({ ...typed, domain: { ...typed.domain, chainId: BigInt(typed.domain.chainId) } });
  const keys = await deriveWalletKeys(signature, input.account, input.domain);
  const ids = await RecordIds.derive(keys.decryptingKey);
  const files = input.files.map((f) => hexToBytes(f));
  return {
    import_id_key: bytesToHex0x(await deriveImportIdKey(keys.decryptingKey)),
    bundle_digest: bytesToHex0x(await sourceDigest(files[0]!)),
    ndjson_digest: bytesToHex0x(await ndjsonDigest(files)),
    record_ids: await Promise.all(input.ids.map(async (c) => bytesToHex0x(await ids.of(hexToBytes(c.digest), c.index)))),
  };
}

/** What this browser makes of tests/vectors/deidentify.json (issue 16): each key's offset,
 *  pseudonym key, pseudonyms and UIDs, and each case's copy as canonical JSON (null: not
 *  shared), or the field a refused case names; from the inputs only. */
async function deidentifyVector(input: {
  as_of: string;
  keys: Array<{ secret_key: string; study_id: string; pseudonyms: string[]; uids: string[] }>;
  cases: Array<{ key: number; types: Record<string, string>; input: string }>;
}) {
  const keys = await Promise.all(input.keys.map((k) => studyKey(hexToBytes(k.secret_key), hexToBytes(k.study_id))));
  return {
    keys: input.keys.map((k, i) => {
      const deid = new Deidentifier(keys[i]!);
      return {
        offset_days: keys[i]!.offsetDays,
        pseudonym_key: bytesToHex0x(keys[i]!.revealPseudonymKey()),
        pseudonyms: Object.fromEntries(k.pseudonyms.map((p) => [p, deid.pseudonym(p)])),
        uids: Object.fromEntries(k.uids.map((u) => [u, deid.uid(u)])),
      };
    }),
    cases: input.cases.map((c) => {
      try {
        const copy = new Deidentifier(keys[c.key]!, { types: c.types, asOf: input.as_of }).resource(loadJson(c.input, 1000));
        return { output: copy === null ? null : new TextDecoder().decode(canonicalJson(copy)) };
      } catch (error) {
        if (error instanceof InputError) return { field: error.field };
        throw error;
      }
    }),
  };
}

/** What this browser makes of tests/vectors/deidentify_dicom.json: each file's study copy
 *  (base64), or the refusal's field and reason (`unsupported`: a file the page does not read). */
async function deidentifyDicomVector(input: {
  keys: Array<{ secret_key: string; study_id: string }>;
  cases: Array<{ key: number; input: string }>;
}) {
  const keys = await Promise.all(input.keys.map((k) => studyKey(hexToBytes(k.secret_key), hexToBytes(k.study_id))));
  return input.cases.map((c) => {
    try {
      return { output: bytesToBase64(deidentifyDicom(base64ToBytes(c.input), keys[c.key]!)) };
    } catch (error) {
      if (error instanceof InputError) return { field: error.field, reason: error.reason, unsupported: error instanceof DicomUnsupported };
      throw error;
    }
  });
}

/** What this browser computes for one tests/vectors/eip712.json action: digest, signature,
 *  signer and the address the signature recovers to. */
async function eip712Vector(input: { privateKey: `0x${string}`; typedData: JsonTypedData }) {
  const typed = forViem(input.typedData);
  const account = privateKeyToAccount(input.privateKey);
  const signature = await account.signTypedData(typed);
  return {
    signer: account.address,
    digest: hashTypedData(typed),
    signature,
    recovered: await recoverTypedDataAddress({ ...typed, signature }),
  };
}

/** Envelopes sealed by Python opened here (in memory and streamed in `chunk`-byte pieces). */
async function openEnvelope(input: { owner_secret_key: string; envelope: string; chunk: number; commitment: string }) {
  const sk = umbral.SecretKey.fromBEBytes(hexToBytes(input.owner_secret_key));
  const envelope = hexToBytes(input.envelope);
  const expectedCommitment = hexToBytes(input.commitment);
  try {
    const whole = await decryptBytes(envelope, { ownerSecretKey: sk, expectedCommitment });
    let at = 0;
    const pieces = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (at >= envelope.length) return controller.close();
        controller.enqueue(envelope.slice(at, at + input.chunk));
        at += input.chunk;
      },
    });
    const reader = await EnvelopeReader.open(pieces);
    const parts: Uint8Array[] = [];
    for await (const part of reader.decrypt(reader.header.unwrapForOwner(sk), { expectedCommitment })) parts.push(part);
    return {
      plaintext: bytesToHex(whole),
      streamed: bytesToHex(concatBytes(...parts)),
      content_type: reader.header.contentType,
      record_id: bytesToHex(reader.header.recordId),
    };
  } catch (error) {
    if (error instanceof KizunaError) return { error: error.name, message: error.message };
    throw error;
  }
}

/** Plaintexts sealed here to a Python-made public key, for Python to open. */
async function sealEnvelope(input: { owner_public_key: string; record_id: string; content_type: string; segment_size: number; plaintext: string }) {
  const envelope = await encryptBytes(hexToBytes(input.plaintext), {
    ownerKey: umbral.PublicKey.fromCompressedBytes(hexToBytes(input.owner_public_key)),
    recordId: hexToBytes(input.record_id),
    contentType: input.content_type,
    segmentSize: input.segment_size,
  });
  return { envelope: bytesToHex(envelope) };
}

const bench = {
  pages: Object.keys(pages).map((path) => path.replace(/^.*\/(\w+)\.tsx$/, "$1")),
  envelope,
  webcryptoCeiling,
  kdfProfile,
  timeline,
  decryptProfile,
  timelineWorkers,
  chart,
  walletVector,
  recordIdVector,
  deidentifyVector,
  deidentifyDicomVector,
  eip712Vector,
  openEnvelope,
  sealEnvelope,
};

declare global {
  interface Window {
    kizunaBench?: typeof bench;
  }
}

window.kizunaBench = bench;
mount().dataset.ready = "true";
