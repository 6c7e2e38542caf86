// The benchmark's raw WebCrypto worker (bench.tsx `webcryptoCeiling`): AES-256-GCM over one
// buffer of `piece` bytes, `count` times, with the key it is given. No envelope, no copies on
// this side: the most this browser's WebCrypto gives a worker, to compare the page's envelope
// (and Python's) with. Several of these at once show whether WebCrypto scales with workers.
type Job = { key: Uint8Array; piece: number; count: number };

const scope = self as unknown as Worker;
scope.onmessage = async (event: MessageEvent<Job>) => {
  const { key, piece, count } = event.data;
  const aes = await crypto.subtle.importKey("raw", new Uint8Array(key), "AES-GCM", false, ["encrypt"]);
  const data = new Uint8Array(piece);
  crypto.getRandomValues(data.subarray(0, Math.min(piece, 65_536)));
  const iv = new Uint8Array(12);
  scope.postMessage("started");
  for (let i = 0; i < count; i++) {
    new DataView(iv.buffer).setUint32(8, i);
    await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: new Uint8Array(284) }, aes, data);
  }
  scope.postMessage("done");
};
scope.postMessage("ready");
