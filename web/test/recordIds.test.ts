// web/src/core/recordIds.ts re-derives every committed vector of tests/vectors/record_ids.json
// (written by Python, tests/client/record_id_vectors.py) from its inputs only: the wallet's
// signature → its decrypting key → the import id key → each record id; the NDJSON digest from
// the files. The same values in Chromium: tests/web/test_web_vectors.py.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { privateKeyToAccount } from "viem/accounts";
import { bytesToHex0x, hexToBytes } from "../src/core/bytes.ts";
import { InputError } from "../src/core/errors.ts";
import { deriveImportIdKey, ndjsonDigest, RecordIds, sourceDigest } from "../src/core/recordIds.ts";
import { deriveWalletKeys, keyDerivationTypedData } from "../src/core/walletKeys.ts";
import { root } from "./vectors.ts";

type Vector = {
  label: string; private_key: `0x${string}`; account: string;
  domain: { chainId: number; verifyingContract: string };
  import_id_key: string;
  ids: Array<{ source: string; digest: string; index: number; record_id: string }>;
};
const spec = JSON.parse(readFileSync(new URL("tests/vectors/record_ids.json", root), "utf8")) as { files: string[]; document: string; vectors: Vector[] };

test("the source digests are Python's", async () => {
  const files = spec.files.map((f) => hexToBytes(f));
  const first = spec.vectors[0]!.ids;
  assert.equal(bytesToHex0x(await sourceDigest(files[0]!)), first.find((c) => c.source === "bundle")!.digest);
  assert.equal(bytesToHex0x(await ndjsonDigest(files)), first.find((c) => c.source === "ndjson")!.digest);
  // A file added on its own (a PDF, an image, DICOM, one resource): its SHA-256 (docs/keys.md).
  assert.equal(bytesToHex0x(await sourceDigest(hexToBytes(spec.document))), first.find((c) => c.source === "document")!.digest);
});

for (const vector of spec.vectors) {
  test(`the import id key and record ids equal Python's (${vector.label} on chain ${vector.domain.chainId})`, async () => {
    const typed = keyDerivationTypedData(vector.account, vector.domain);
    const signature = await privateKeyToAccount(vector.private_key).signTypedData({ ...typed, domain: { ...typed.domain, chainId: BigInt(typed.domain.chainId) } });
    const keys = await deriveWalletKeys(signature, vector.account, vector.domain);
    assert.equal(bytesToHex0x(await deriveImportIdKey(keys.decryptingKey)), vector.import_id_key);
    const ids = await RecordIds.derive(keys.decryptingKey);
    assert.equal(String(ids), "RecordIds(<secret>)");
    for (const c of vector.ids) {
      assert.equal(bytesToHex0x(await ids.of(hexToBytes(c.digest), c.index)), c.record_id, `${c.source} #${c.index}`);
    }
  });
}

test("a bad digest or index is refused naming the field", async () => {
  const ids = await RecordIds.fromKey(new Uint8Array(32).fill(7));
  await assert.rejects(ids.of(new Uint8Array(31), 0), (e: unknown) => e instanceof InputError && e.field === "digest");
  await assert.rejects(ids.of(new Uint8Array(32), -1), (e: unknown) => e instanceof InputError && e.field === "index");
  await assert.rejects(ids.of(new Uint8Array(32), 2 ** 53), (e: unknown) => e instanceof InputError && e.field === "index");
});
