// The messages between the page and its decryption workers (decrypt.worker.ts, pool.ts).

/** One envelope to open: the scope and epoch of its key, the envelope, and the commitment the
 * chain (or a batch manifest checked against the chain's root) holds for it. */
export type OpenJob = { scopeId: Uint8Array; epoch: number; envelope: Uint8Array; expected: Uint8Array };

export type ToWorker =
  /** The owner's decrypting key, once per session (memory only; the worker derives the
   * per-scope delegating keys from it as the page does). */
  | { kind: "key"; decryptingKey: Uint8Array }
  | { kind: "open"; id: number; jobs: OpenJob[] };

export type FromWorker =
  | { kind: "ready" }
  | { kind: "opened"; id: number; contents: Uint8Array[] }
  | { kind: "failed"; id: number; name: string; message: string };
