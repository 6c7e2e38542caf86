// Wallet-derived keys, re-derived in JavaScript the way the browser will (docs/keys.md):
// ethers v6 signs the EIP-712 key-derivation message, node:crypto's HKDF-SHA256 derives, and
// @nucypher/umbral-pre makes the Umbral keys. Every value must equal the Python vectors in
// tests/vectors/wallet_keys.json. Then interop both ways with the Python wrappers
// (tests/crypto/interop_peer.py): kfrags made here re-encrypt in Python, and kfrags made in
// Python re-encrypt here; both grantees open the data key.
//
// Run: node --test tests/node/   (Node 24 from the venv; scripts/test does it)

import { test } from "node:test";
import assert from "node:assert/strict";
import { createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { TypedDataEncoder, Wallet, getBytes, hexlify, verifyTypedData } from "ethers";
import * as umbral from "@nucypher/umbral-pre";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const spec = JSON.parse(readFileSync(join(root, "tests/vectors/wallet_keys.json"), "utf8"));
const vectors = spec.vectors;
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const enc = (s) => new TextEncoder().encode(s);
const hex = (bytes) => Buffer.from(bytes).toString("hex");

// --- the derivation, written from docs/keys.md --------------------------------------------

function ikmFromSignature(signatureHex) {
  const sig = getBytes(signatureHex);
  assert.equal(sig.length, 65);
  const r = sig.slice(0, 32);
  let s = BigInt(hexlify(sig.slice(32, 64)));
  if (s > N / 2n) s = N - s; // low-s, as every wallet should already give
  const sBytes = getBytes("0x" + s.toString(16).padStart(64, "0"));
  return Buffer.concat([r, sBytes]);
}

function hkdf(ikm, info, length) {
  return Buffer.from(hkdfSync("sha256", ikm, enc(spec.hkdf.salt), enc(info), length));
}

function scalarKey(ikm, info) {
  const candidate = BigInt("0x" + hkdf(ikm, info, 48).toString("hex"));
  const scalar = (candidate % (N - 1n)) + 1n;
  return umbral.SecretKey.fromBEBytes(getBytes("0x" + scalar.toString(16).padStart(64, "0")));
}

function deriveKeys(signatureHex) {
  const ikm = ikmFromSignature(signatureHex);
  return {
    decrypting: scalarKey(ikm, spec.hkdf.info_decrypting_key),
    signing: scalarKey(ikm, spec.hkdf.info_signing_key),
    scopeKey: hkdf(ikm, spec.hkdf.info_scope_key, 32),
  };
}

function withoutDomainType(types) {
  const { EIP712Domain, ...rest } = types; // ethers derives the domain type itself
  return rest;
}

async function walletKeys(vector) {
  const wallet = new Wallet(vector.private_key);
  const { domain, types, message } = vector.typed_data;
  const signature = await wallet.signTypedData(domain, withoutDomainType(types), message);
  return { wallet, signature, keys: deriveKeys(signature) };
}

function python(request) {
  const py = process.env.KIZUNA_PYTHON ?? join(root, ".venv", "bin", "python");
  assert.ok(existsSync(py), `no Python at ${py} (set KIZUNA_PYTHON)`);
  const out = execFileSync(py, [join(root, "tests/crypto/interop_peer.py")], {
    cwd: root,
    input: JSON.stringify(request),
    encoding: "utf8",
  });
  return JSON.parse(out);
}

// --- vectors ------------------------------------------------------------------------------

test("the vector file covers several accounts and chains", () => {
  assert.ok(vectors.length >= 3);
  assert.ok(new Set(vectors.map((v) => v.typed_data.domain.chainId)).size >= 2);
});

for (const vector of vectors) {
  const where = `${vector.label} on chain ${vector.typed_data.domain.chainId}`;

  test(`ethers signs the key-derivation message exactly like eth-account (${where})`, async () => {
    const { wallet, signature } = await walletKeys(vector);
    assert.equal(wallet.address, vector.account);
    const { domain, types, message } = vector.typed_data;
    assert.equal(TypedDataEncoder.hash(domain, withoutDomainType(types), message), vector.digest);
    assert.equal(signature, vector.signature, "RFC 6979 signatures are deterministic");
    assert.equal(verifyTypedData(domain, withoutDomainType(types), message, signature), vector.account);
  });

  test(`the derived Umbral keys and scope ids match Python (${where})`, async () => {
    const { keys } = await walletKeys(vector);
    assert.equal(hex(keys.decrypting.publicKey().toCompressedBytes()), vector.umbral_public_key);
    assert.equal(hex(keys.signing.publicKey().toCompressedBytes()), vector.umbral_verifying_key);
    for (const [label, id] of Object.entries(vector.scope_ids)) {
      const mine = "0x" + createHmac("sha256", keys.scopeKey).update(label, "ascii").digest("hex");
      assert.equal(mine, id, label);
    }
  });

  test(`the per-scope delegating keys match Python (${where})`, async () => {
    const { keys } = await walletKeys(vector);
    const ikm = Buffer.from(keys.decrypting.toBEBytes());
    for (const [label, id] of Object.entries(vector.scope_ids)) {
      const info = Buffer.concat([enc(spec.hkdf.info_scope_delegation), getBytes(id)]);
      const okm = Buffer.from(hkdfSync("sha256", ikm, enc(spec.hkdf.salt), info, 48));
      const scalar = (BigInt("0x" + okm.toString("hex")) % (N - 1n)) + 1n;
      const scopeKey = umbral.SecretKey.fromBEBytes(
        getBytes("0x" + scalar.toString(16).padStart(64, "0")));
      assert.equal(hex(scopeKey.publicKey().toCompressedBytes()),
        vector.scope_delegating_keys[label], label);
    }
  });

  test(`the per-scope delegating keys of later key epochs match Python (${where})`, async () => {
    // docs/keys.md "Epochs": epoch e >= 1 appends e as a uint64 (8 bytes, big-endian).
    const { keys } = await walletKeys(vector);
    const ikm = Buffer.from(keys.decrypting.toBEBytes());
    const epochs = Object.entries(vector.scope_delegating_keys_by_epoch);
    assert.ok(epochs.length >= 2);
    for (const [epoch, byLabel] of epochs) {
      const suffix = Buffer.alloc(8);
      suffix.writeBigUInt64BE(BigInt(epoch));
      for (const [label, expected] of Object.entries(byLabel)) {
        const info = Buffer.concat([
          enc(spec.hkdf.info_scope_delegation), getBytes(vector.scope_ids[label]), suffix,
        ]);
        const okm = Buffer.from(hkdfSync("sha256", ikm, enc(spec.hkdf.salt), info, 48));
        const scalar = (BigInt("0x" + okm.toString("hex")) % (N - 1n)) + 1n;
        const scopeKey = umbral.SecretKey.fromBEBytes(
          getBytes("0x" + scalar.toString(16).padStart(64, "0")));
        const mine = hex(scopeKey.publicKey().toCompressedBytes());
        assert.equal(mine, expected, `${label} epoch ${epoch}`);
        assert.notEqual(mine, vector.scope_delegating_keys[label], "a new epoch, a new key");
      }
    }
  });
}

test("a different message (another chain id) gives different keys", async () => {
  const same = vectors.filter((v) => v.label === vectors[0].label);
  assert.ok(same.length >= 2, "vectors hold one account on two chains");
  assert.notEqual(same[0].signature, same[1].signature);
  assert.notEqual(same[0].umbral_public_key, same[1].umbral_public_key);
});

test("a high-s encoding of the same signature derives the same key", async () => {
  const sig = getBytes(vectors[0].signature);
  const s = BigInt(hexlify(sig.slice(32, 64)));
  const highS = getBytes("0x" + (N - s).toString(16).padStart(64, "0"));
  const flipped = hexlify(Buffer.concat([sig.slice(0, 32), highS, Buffer.from([sig[64] ^ 1])]));
  const keys = deriveKeys(flipped);
  assert.equal(hex(keys.decrypting.publicKey().toCompressedBytes()), vectors[0].umbral_public_key);
});

// --- interop with the Python wrappers -----------------------------------------------------

test("kfrags made in JavaScript verify and re-encrypt in Python; both sides open the key", async () => {
  const patient = (await walletKeys(vectors[0])).keys;
  const grantee = (await walletKeys(vectors[1])).keys;
  const dataKey = randomBytes(32);
  const [capsule, ciphertext] = umbral.encrypt(patient.decrypting.publicKey(), dataKey);
  const signer = new umbral.Signer(patient.signing);
  const kfrags = umbral.generateKFrags(
    patient.decrypting, grantee.decrypting.publicKey(), signer, 2, 3, true, true,
  );
  const answer = python({
    op: "reencrypt",
    patient_account: vectors[0].account,
    grantee_vector: vectors[1],
    delegating_key: hex(patient.decrypting.publicKey().toCompressedBytes()),
    verifying_key: hex(signer.verifyingKey().toCompressedBytes()),
    capsule: hex(capsule.toBytes()),
    ciphertext: hex(ciphertext),
    kfrags: kfrags.slice(0, 2).map((k) => hex(k.toBytes())),
    threshold: 2,
  });
  assert.equal(answer.plaintext, hex(dataKey), "Python's grantee opened the key");
  const verified = answer.cfrags.map((c) =>
    umbral.CapsuleFrag.fromBytes(Buffer.from(c, "hex")).verify(
      capsule, signer.verifyingKey(), patient.decrypting.publicKey(), grantee.decrypting.publicKey(),
    ),
  );
  const opened = umbral.decryptReencrypted(
    grantee.decrypting, patient.decrypting.publicKey(), capsule, verified, ciphertext,
  );
  assert.equal(hex(opened), hex(dataKey), "the JavaScript grantee opened Python's cfrags");
  assert.throws(() =>
    umbral.decryptReencrypted(
      grantee.decrypting, patient.decrypting.publicKey(), capsule, verified.slice(0, 1), ciphertext,
    ),
  );
});

test("kfrags made in Python verify and re-encrypt in JavaScript", async () => {
  const grantee = (await walletKeys(vectors[1])).keys;
  const granteePk = grantee.decrypting.publicKey();
  const plaintext = randomBytes(32);
  const answer = python({
    op: "delegate",
    patient_vector: vectors[0],
    receiving_key: hex(granteePk.toCompressedBytes()),
    plaintext: hex(plaintext),
  });
  assert.equal(answer.delegating_key, vectors[0].umbral_public_key);
  assert.equal(answer.verifying_key, vectors[0].umbral_verifying_key);
  const patientPk = umbral.PublicKey.fromCompressedBytes(Buffer.from(answer.delegating_key, "hex"));
  const verifyingPk = umbral.PublicKey.fromCompressedBytes(Buffer.from(answer.verifying_key, "hex"));
  const capsule = umbral.Capsule.fromBytes(Buffer.from(answer.capsule, "hex"));
  const cfrags = answer.kfrags.slice(1, 3).map((k) => {
    const kfrag = umbral.KeyFrag.fromBytes(Buffer.from(k, "hex")).verify(verifyingPk, patientPk, granteePk);
    return umbral.reencrypt(capsule, kfrag);
  });
  const opened = umbral.decryptReencrypted(
    grantee.decrypting, patientPk, capsule, cfrags, Buffer.from(answer.ciphertext, "hex"),
  );
  assert.equal(hex(opened), hex(plaintext));
  // a kfrag checked against another grantee's key is refused
  const stranger = umbral.SecretKey.random().publicKey();
  assert.throws(() =>
    umbral.KeyFrag.fromBytes(Buffer.from(answer.kfrags[0], "hex")).verify(verifyingPk, patientPk, stranger),
  );
});

// --- a Python envelope opened in JavaScript, from the wallet signature alone -----------------

function openEnvelope(envelope, secretKey) {
  // docs/envelope.md, version 1, implemented from the table only
  const view = Buffer.from(envelope);
  assert.equal(view.subarray(0, 4).toString("latin1"), "KZEN");
  assert.equal(view[4], 1, "version");
  assert.equal(view[5], 0, "flags");
  const segmentSize = view.readUInt32BE(6);
  const recordId = view.subarray(10, 42);
  const noncePrefix = view.subarray(42, 49);
  const keyCommitment = view.subarray(49, 81);
  const typeLength = view[81];
  const contentType = view.subarray(82, 82 + typeLength).toString("ascii");
  let at = 82 + typeLength;
  const capsuleLength = view.readUInt16BE(at);
  const capsule = umbral.Capsule.fromBytes(view.subarray(at + 2, at + 2 + capsuleLength));
  at += 2 + capsuleLength;
  const wrappedLength = view.readUInt16BE(at);
  const wrapped = view.subarray(at + 2, at + 2 + wrappedLength);
  at += 2 + wrappedLength;
  const preamble = view.subarray(0, at);

  const dataKey = umbral.decryptOriginal(secretKey, capsule, wrapped);
  const salt = Buffer.concat([recordId, noncePrefix]);
  const derive = (info) => Buffer.from(hkdfSync("sha256", dataKey, salt, enc(info), 32));
  assert.deepEqual(derive("kizuna/envelope/v1/key-commitment"), keyCommitment, "key commitment");
  const aesKey = derive("kizuna/envelope/v1/aes-256-gcm");

  const body = view.subarray(at);
  const stride = segmentSize + 16;
  const count = Math.max(1, Math.ceil(body.length / stride));
  const parts = [];
  for (let i = 0; i < count; i++) {
    const segment = body.subarray(i * stride, Math.min((i + 1) * stride, body.length));
    const nonce = Buffer.alloc(12);
    noncePrefix.copy(nonce, 0);
    nonce.writeUInt32BE(i, 7);
    nonce[11] = i === count - 1 ? 1 : 0;
    const decipher = createDecipheriv("aes-256-gcm", aesKey, nonce);
    decipher.setAAD(preamble);
    decipher.setAuthTag(segment.subarray(segment.length - 16));
    parts.push(decipher.update(segment.subarray(0, segment.length - 16)), decipher.final());
  }
  return { contentType, plaintext: Buffer.concat(parts) };
}

test("an envelope sealed in Python opens in JavaScript with the wallet-derived key", async () => {
  const owner = (await walletKeys(vectors[0])).keys;
  const plaintext = randomBytes(3 * 100 + 37);
  const answer = python({
    op: "seal",
    owner_vector: vectors[0],
    plaintext: hex(plaintext),
    record_id: hex(randomBytes(32)),
    content_type: "application/fhir+json",
    segment_size: 100,
  });
  const envelope = Buffer.from(answer.envelope, "hex");
  assert.equal(createHash("sha256").update(envelope).digest("hex"), answer.commitment);
  const opened = openEnvelope(envelope, owner.decrypting);
  assert.equal(opened.contentType, "application/fhir+json");
  assert.equal(hex(opened.plaintext), hex(plaintext));
  // a flipped bit in the last segment fails authentication here too
  const damaged = Buffer.from(envelope);
  damaged[damaged.length - 20] ^= 1;
  assert.throws(() => openEnvelope(damaged, owner.decrypting), /authenticate/);
  // the other wallet's key cannot unwrap the data key
  const other = (await walletKeys(vectors[1])).keys;
  assert.throws(() => openEnvelope(envelope, other.decrypting));
});
