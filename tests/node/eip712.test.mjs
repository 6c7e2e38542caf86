// The consent ledger's EIP-712 signed actions, checked with ethers v6 (the library the wallet
// pages use) against the vectors Python wrote (tests/vectors/eip712.json, built by
// tests/chain/eip712_vectors.py). For every vector: the type string, the struct hash, the domain
// separator and the digest are recomputed here; the signature recovers to the patient; a fresh
// ethers Wallet signs the very same bytes (RFC 6979); and tampering any message field changes
// the signer. The same file is accepted by the ledger itself in contracts/test/EIP712Vectors.t.sol.
//
// Run: node --test tests/node/   (Node 24 from the venv; scripts/test does it)

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { TypedDataEncoder, Wallet, verifyTypedData } from "ethers";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const spec = JSON.parse(readFileSync(join(root, "tests/vectors/eip712.json"), "utf8"));

// ethers takes the types without EIP712Domain (it derives the domain type from the domain).
function withoutDomain(types) {
  const { EIP712Domain, ...rest } = types;
  assert.deepEqual(
    EIP712Domain.map((f) => f.name),
    ["name", "version", "chainId", "verifyingContract"],
  );
  return rest;
}

test("the vectors cover every signed action of the ledger", () => {
  const kinds = new Set(spec.vectors.map((v) => v.typedData.primaryType));
  assert.deepEqual([...kinds].sort(), ["Grant", "GrantBatch", "RegisterBatch", "RegisterRecord", "Revoke"]);
});

test("the domain separator matches", () => {
  for (const v of spec.vectors) {
    const domain = v.typedData.domain;
    assert.equal(domain.name, "Kizuna ConsentLedger");
    assert.equal(BigInt(domain.chainId), BigInt(spec.chainId));
    assert.equal(TypedDataEncoder.hashDomain(domain), spec.domainSeparator);
  }
});

for (const v of spec.vectors) {
  test(`vector ${v.name}: type, struct hash and digest`, () => {
    const { domain, message, primaryType } = v.typedData;
    const types = withoutDomain(v.typedData.types);
    const encoder = TypedDataEncoder.from(types);
    assert.equal(encoder.primaryType, primaryType);
    assert.equal(encoder.encodeType(primaryType), v.typeString);
    assert.equal(encoder.hashStruct(primaryType, message), v.structHash);
    assert.equal(TypedDataEncoder.hash(domain, types, message), v.digest);
  });

  test(`vector ${v.name}: signature recovers to the patient and ethers signs the same`, async () => {
    const { domain, message } = v.typedData;
    const types = withoutDomain(v.typedData.types);
    assert.equal(verifyTypedData(domain, types, message, v.signature), v.signer);
    assert.equal(message.patient, v.signer);
    const wallet = new Wallet(v.privateKey);
    assert.equal(wallet.address, v.signer);
    assert.equal(await wallet.signTypedData(domain, types, message), v.signature);
  });

  test(`vector ${v.name}: any altered field recovers to someone else`, () => {
    const { domain, message } = v.typedData;
    const types = withoutDomain(v.typedData.types);
    const altered = { ...message, nonce: (BigInt(message.nonce) + 1n).toString() };
    assert.notEqual(verifyTypedData(domain, types, altered, v.signature), v.signer);
    const otherChain = { ...domain, chainId: Number(domain.chainId) + 1 };
    assert.notEqual(verifyTypedData(otherChain, types, message, v.signature), v.signer);
  });
}
