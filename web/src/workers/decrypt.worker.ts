// A decryption worker of the page (pool.ts): opens the patient's envelopes off the main thread
// with the same core code the page uses (walletKeys.ts, envelope.ts) — one Umbral unwrap and
// one AES-GCM decryption per record, each envelope checked against the commitment the page
// read from the chain. The decrypting key arrives once per session by postMessage and lives
// in this worker's memory only (nothing here persists); the worker ends with the session.
import * as umbral from "@nucypher/umbral-pre";
import { decryptStream, collect } from "../core/envelope.ts";
import { deriveScopeDelegatingKey } from "../core/walletKeys.ts";
import type { FromWorker, OpenJob, ToWorker } from "./protocol.ts";

const scope = self as unknown as Worker;
let decryptingKey: umbral.SecretKey | null = null;
/** Delegating keys derived this session, by scope and epoch (one HKDF each, not one per record). */
const delegating = new Map<string, Promise<umbral.SecretKey>>();

function delegatingKey(key: umbral.SecretKey, job: OpenJob): Promise<umbral.SecretKey> {
  const name = `${Array.from(job.scopeId, (b) => b.toString(16).padStart(2, "0")).join("")}:${job.epoch}`;
  let found = delegating.get(name);
  if (!found) {
    found = deriveScopeDelegatingKey(key, job.scopeId, job.epoch);
    delegating.set(name, found);
  }
  return found;
}

const post = (message: FromWorker, transfer: Transferable[] = []) => scope.postMessage(message, transfer);

scope.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.kind === "key") {
    decryptingKey = umbral.SecretKey.fromBEBytes(message.decryptingKey);
    message.decryptingKey.fill(0);
    return;
  }
  try {
    const key = decryptingKey;
    if (!key) throw new Error("no key was given to this worker");
    const contents: Uint8Array[] = [];
    for (const job of message.jobs) {
      const secret = await delegatingKey(key, job);
      contents.push(await collect(await decryptStream(job.envelope, secret, { expectedCommitment: job.expected })));
    }
    // Each content moved back, not copied (a buffer listed once even if two views share it).
    post({ kind: "opened", id: message.id, contents }, [...new Set(contents.map((c) => c.buffer as ArrayBuffer))]);
  } catch (error) {
    const failure = error instanceof Error ? error : new Error(String(error));
    post({ kind: "failed", id: message.id, name: failure.name, message: failure.message });
  }
};
// umbral-pre's WASM loads by top-level await: a message sent before this module finished
// evaluating could be lost, so the pool sends the key only after this one.
post({ kind: "ready" });
