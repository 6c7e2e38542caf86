// A what-if for the timeline (benchmarks/web.py `timeline_2000_workers_s`): the app's per-record
// read (bench.tsx `readRecord`, as PatientClient's) run in a Web Worker, so that both cores
// unwrap Umbral capsules at once. The page's own loader reads on the main thread; this
// measures what moving the reads into workers would give, with the same core code.
import { readRecord } from "./read.ts";
import { deriveWalletKeys } from "../src/core/walletKeys.ts";

type Job = {
  wallet: { signature: string; account: string; chainId: number; verifyingContract: string };
  records: { index: number; info: { id: string; scopeId: Uint8Array; epoch: number; commitment: Uint8Array } }[];
};

self.onmessage = async (event: MessageEvent<Job>) => {
  const { wallet, records } = event.data;
  const keys = await deriveWalletKeys(wallet.signature, wallet.account, { chainId: wallet.chainId, verifyingContract: wallet.verifyingContract });
  const out: { index: number; plaintext: Uint8Array }[] = new Array(records.length);
  let next = 0;
  const reader = async () => {
    while (next < records.length) {
      const at = next++;
      const { index, info } = records[at]!;
      out[at] = { index, plaintext: await readRecord(keys, info) };
    }
  };
  await Promise.all([reader(), reader(), reader()]); // a few downloads in flight per worker
  (self as unknown as Worker).postMessage(out, out.map((o) => o.plaintext.buffer as ArrayBuffer));
};
// umbral-pre's WASM loads by top-level await: a message sent before this module finished
// evaluating would be dropped, so the page waits for this one before sending the job.
(self as unknown as Worker).postMessage("ready");
