// web/src/core/walletKeys.ts and scopes.ts re-derive every committed vector of
// tests/vectors/wallet_keys.json (written by Python, tests/crypto/wallet_vectors.py): the typed
// data, its digest, the signature (viem signs it like eth-account and MetaMask: RFC 6979), the
// Umbral keys, the blinded scope ids and the per-scope delegating keys of every epoch.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hashTypedData } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { bytesToHex, bytesToHex0x, hexToBytes, bigIntToBytes, bytesToBigInt, concatBytes } from "../src/core/bytes.ts";
import { InputError, KeyDerivationError } from "../src/core/errors.ts";
import { blindScope } from "../src/core/scopes.ts";
import {
  SECP256K1_ORDER,
  deriveScopeDelegatingKey,
  deriveWalletKeys,
  keyDerivationTypedData,
  type KeyDerivationDomain,
} from "../src/core/walletKeys.ts";
import { walletSpec, type WalletVector } from "./vectors.ts";

const vectors = walletSpec.vectors;
const domainOf = (v: WalletVector): KeyDerivationDomain => ({
  chainId: v.typed_data.domain.chainId,
  verifyingContract: v.typed_data.domain.verifyingContract,
});
const pk = (key: { publicKey(): { toCompressedBytes(): Uint8Array } }) => bytesToHex(key.publicKey().toCompressedBytes());

test("the vector file covers several accounts, chains and key epochs", () => {
  assert.ok(vectors.length >= 3);
  assert.ok(new Set(vectors.map((v) => v.typed_data.domain.chainId)).size >= 2);
  for (const v of vectors) assert.ok(Object.keys(v.scope_delegating_keys_by_epoch).length >= 2);
});

for (const vector of vectors) {
  const where = `${vector.label} on chain ${vector.typed_data.domain.chainId}`;

  test(`the typed data, digest and signature equal Python's (${where})`, async () => {
    const typedData = keyDerivationTypedData(vector.account.toLowerCase(), domainOf(vector));
    assert.deepEqual(typedData, vector.typed_data, "the same document eth_signTypedData_v4 gets");
    const forViem = { ...typedData, domain: { ...typedData.domain, chainId: BigInt(typedData.domain.chainId) } };
    assert.equal(hashTypedData(forViem), vector.digest);
    const account = privateKeyToAccount(vector.private_key);
    assert.equal(account.address, vector.account);
    assert.equal(await account.signTypedData(forViem), vector.signature, "RFC 6979: deterministic");
  });

  test(`the derived keys and blinded scope ids equal Python's (${where})`, async () => {
    const keys = await deriveWalletKeys(vector.signature, vector.account, domainOf(vector));
    assert.equal(keys.account, vector.account);
    assert.equal(bytesToHex(keys.publicKey.toCompressedBytes()), vector.umbral_public_key);
    assert.equal(bytesToHex(keys.verifyingKey.toCompressedBytes()), vector.umbral_verifying_key);
    assert.ok(Object.keys(vector.scope_ids).length >= 2);
    for (const [label, id] of Object.entries(vector.scope_ids)) {
      assert.equal(bytesToHex0x(await blindScope(keys.scopeKey, label)), id, label);
    }
    assert.doesNotMatch(String(keys) + JSON.stringify({ keys }), /[0-9a-f]{64}/, "no key in logs");
  });

  test(`the per-scope delegating keys of every epoch equal Python's (${where})`, async () => {
    const keys = await deriveWalletKeys(vector.signature, vector.account, domainOf(vector));
    for (const [label, expected] of Object.entries(vector.scope_delegating_keys)) {
      const scopeId = hexToBytes(vector.scope_ids[label] as string);
      assert.equal(pk(await keys.scopeDelegatingKey(scopeId)), expected, `${label} epoch 0 (default)`);
      assert.equal(pk(await keys.scopeDelegatingKey(scopeId, 0n)), expected, `${label} epoch 0n`);
    }
    for (const [epoch, byLabel] of Object.entries(vector.scope_delegating_keys_by_epoch)) {
      for (const [label, expected] of Object.entries(byLabel)) {
        const scopeId = hexToBytes(vector.scope_ids[label] as string);
        assert.equal(pk(await deriveScopeDelegatingKey(keys.decryptingKey, scopeId, BigInt(epoch))), expected, `${label} epoch ${epoch}`);
        assert.equal(pk(await keys.scopeDelegatingKey(scopeId, Number(epoch))), expected);
      }
    }
  });
}

test("a high-s encoding (v flipped, v as 0/1) of the same signature derives the same keys", async () => {
  const v = vectors[0] as WalletVector;
  const sig = hexToBytes(v.signature);
  const highS = bigIntToBytes(SECP256K1_ORDER - bytesToBigInt(sig.subarray(32, 64)), 32);
  const flipped = concatBytes(sig.subarray(0, 32), highS, new Uint8Array([27 + (((sig[64] as number) - 27) ^ 1)]));
  const keys = await deriveWalletKeys(flipped, v.account, domainOf(v));
  assert.equal(bytesToHex(keys.publicKey.toCompressedBytes()), v.umbral_public_key);
  const zeroOne = concatBytes(sig.subarray(0, 64), new Uint8Array([(sig[64] as number) - 27]));
  const again = await deriveWalletKeys(zeroOne, v.account, domainOf(v));
  assert.equal(bytesToHex(again.publicKey.toCompressedBytes()), v.umbral_public_key);
});

test("a signature by another account, or over another chain, is refused", async () => {
  const [a, b] = vectors as [WalletVector, WalletVector];
  await assert.rejects(deriveWalletKeys(a.signature, b.account, domainOf(a)), KeyDerivationError);
  const otherChain = { ...domainOf(a), chainId: domainOf(a).chainId + 1 };
  await assert.rejects(deriveWalletKeys(a.signature, a.account, otherChain), /not by/);
  await assert.rejects(deriveWalletKeys(a.signature.slice(0, 60), a.account, domainOf(a)), /65 bytes/);
  await assert.rejects(deriveWalletKeys(a.signature, "0x1234", domainOf(a)), InputError);
});

test("epochs and scope ids out of range are refused, naming the field", async () => {
  const v = vectors[0] as WalletVector;
  const keys = await deriveWalletKeys(v.signature, v.account, domainOf(v));
  const id = hexToBytes(v.scope_ids[Object.keys(v.scope_ids)[0] as string] as string);
  await assert.rejects(keys.scopeDelegatingKey(id, 2n ** 64n), { name: "InputError", field: "epoch" });
  await assert.rejects(keys.scopeDelegatingKey(id, -1), { name: "InputError", field: "epoch" });
  await assert.rejects(keys.scopeDelegatingKey(id.subarray(1)), { name: "InputError", field: "scope_id" });
  await assert.rejects(blindScope(keys.scopeKey, "Observation:ラボ"), { name: "InputError", field: "scope" });
});
