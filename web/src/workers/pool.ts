// A small pool of module workers (decrypt.worker.ts) that open the patient's envelopes off the
// page's main thread, so a timeline of thousands of records keeps the page responsive and uses
// every core. One pool per set of wallet keys: the decrypting key is handed to each worker once,
// by postMessage (memory only, never stored), and the workers end when the keys are forgotten
// (releaseDecryptPool on disconnect). Where workers cannot run (Node, a blocked worker script,
// a worker that fails), `decryptPool` answers null or `open` rejects, and the caller decrypts
// on the main thread with the same code — the rules live in core/envelope.ts either way.
import type { Bytes } from "../core/bytes.ts";
import type { WalletKeys } from "../core/walletKeys.ts";
import type { FromWorker, OpenJob, ToWorker } from "./protocol.ts";

/** Workers of a pool: both cores of a small machine, at most four. */
function poolSize(): number {
  const cores = typeof navigator !== "undefined" ? navigator.hardwareConcurrency || 2 : 2;
  return Math.min(4, Math.max(2, cores));
}

type Pending = { resolve: (contents: Bytes[]) => void; reject: (error: Error) => void };

class DecryptWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  readonly ready: Promise<void>;
  #broken: Error | null = null;
  busy = 0;

  constructor(decryptingKey: Uint8Array) {
    // Written out literally so that Vite bundles the worker (a same-origin module script:
    // the CSP's worker-src 'self').
    this.#worker = new Worker(new URL("./decrypt.worker.ts", import.meta.url), { type: "module", name: "kizuna-decrypt" });
    this.ready = new Promise<void>((resolve, reject) => {
      this.#worker.onmessage = (event: MessageEvent<FromWorker>) => {
        const message = event.data;
        if (message.kind === "ready") {
          this.#worker.postMessage({ kind: "key", decryptingKey } satisfies ToWorker, [decryptingKey.buffer as ArrayBuffer]);
          resolve();
          return;
        }
        const pending = this.#pending.get(message.id);
        if (!pending) return;
        this.#pending.delete(message.id);
        if (message.kind === "opened") pending.resolve(message.contents as Bytes[]);
        else pending.reject(Object.assign(new Error(message.message), { name: message.name }));
      };
      this.#worker.onerror = (event) => {
        event.preventDefault();
        this.#fail(new Error(`a decryption worker failed: ${event.message || "it did not load"}`));
        reject(this.#broken ?? new Error("a decryption worker failed"));
      };
    });
    // The handshake's rejection is also seen by open(); do not report it twice as unhandled.
    this.ready.catch(() => undefined);
  }

  #fail(error: Error): void {
    this.#broken = error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
    this.#worker.terminate();
  }

  get broken(): boolean {
    return this.#broken !== null;
  }

  async open(id: number, jobs: OpenJob[]): Promise<Bytes[]> {
    await this.ready;
    if (this.#broken) throw this.#broken;
    return new Promise<Bytes[]>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      // Copied (structured clone), not moved: the caller keeps its envelopes for a fallback.
      this.#worker.postMessage({ kind: "open", id, jobs } satisfies ToWorker);
    });
  }

  terminate(): void {
    this.#fail(new Error("the session ended"));
  }
}

export class DecryptPool {
  readonly #workers: DecryptWorker[];
  #next = 0;

  constructor(keys: WalletKeys, size = poolSize()) {
    this.#workers = Array.from({ length: size }, () => new DecryptWorker(new Uint8Array(keys.decryptingKey.toBEBytes())));
  }

  /** Open envelopes (each checked against its expected commitment) in one of the workers;
   * the contents in the order of `jobs`. Rejects when the worker fails or a check fails. */
  async open(jobs: OpenJob[]): Promise<Bytes[]> {
    const live = this.#workers.filter((w) => !w.broken);
    if (!live.length) throw new Error("no decryption worker is running");
    // The least busy worker: units of a bulk read in flight are spread over every core.
    const worker = live.reduce((best, w) => (w.busy < best.busy ? w : best));
    worker.busy += 1;
    try {
      return await worker.open(this.#next++, jobs);
    } finally {
      worker.busy -= 1;
    }
  }

  terminate(): void {
    for (const worker of this.#workers) worker.terminate();
  }
}

const pools = new WeakMap<WalletKeys, DecryptPool>();

/** The session's pool for these keys (created once), or null where no Web Worker can run. */
export function decryptPool(keys: WalletKeys): DecryptPool | null {
  if (typeof Worker === "undefined" || typeof window === "undefined") return null;
  let pool = pools.get(keys);
  if (!pool) {
    try {
      pool = new DecryptPool(keys);
    } catch {
      return null; // workers refused (a policy, a browser without module workers)
    }
    pools.set(keys, pool);
  }
  return pool;
}

/** End the workers of these keys (the keys are forgotten: disconnect, another account). */
export function releaseDecryptPool(keys: WalletKeys): void {
  pools.get(keys)?.terminate();
  pools.delete(keys);
}
