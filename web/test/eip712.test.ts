// The consent ledger's EIP-712 actions (tests/vectors/eip712.json, written by Python) hashed,
// signed and recovered with viem, the library the pages will use for the wallet: the same
// digest, the same RFC 6979 signature, the same signer. Numbers are decimal strings in the
// JSON (uint256 does not fit a JavaScript number); viem takes them as bigint.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { hashTypedData, recoverTypedDataAddress, type TypedDataDefinition } from "viem";
import { forViem } from "../src/core/eip712.ts";
import { privateKeyToAccount } from "viem/accounts";
import { root } from "./vectors.ts";

type Field = { name: string; type: string };
type Vector = {
  name: string;
  privateKey: `0x${string}`;
  signer: `0x${string}`;
  typedData: { types: Record<string, Field[]>; primaryType: string; domain: Record<string, unknown>; message: Record<string, unknown> };
  digest: `0x${string}`;
  signature: `0x${string}`;
};
const spec = JSON.parse(readFileSync(new URL("tests/vectors/eip712.json", root), "utf8")) as { vectors: Vector[] };


test("the vectors cover the ledger's signed actions", () => {
  assert.ok(spec.vectors.length >= 5);
});

for (const vector of spec.vectors) {
  test(`viem hashes, signs and recovers ${vector.name} exactly like Python`, async () => {
    const typed = forViem(vector.typedData);
    assert.equal(hashTypedData(typed), vector.digest);
    const account = privateKeyToAccount(vector.privateKey);
    assert.equal(account.address, vector.signer);
    assert.equal(await account.signTypedData(typed), vector.signature);
    assert.equal(await recoverTypedDataAddress({ ...typed, signature: vector.signature }), vector.signer);
  });
}
