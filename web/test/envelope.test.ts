// web/src/core/envelope.ts on its own: round trips through every API, any chunking of the
// source, header errors before any key, integrity errors after. Parity with Python, both ways,
// is tests/web/test_envelope_parity.py (it drives test/envelope_cli.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as umbral from "@nucypher/umbral-pre";
import { bytesToHex } from "../src/core/bytes.ts";
import { EnvelopeFormatError, InputError, IntegrityError } from "../src/core/errors.ts";
import {
  DataKey,
  EnvelopeReader,
  collect,
  commitmentOf,
  decryptBytes,
  decryptStream,
  encryptBytes,
  encryptReadable,
  encryptStream,
  readHeader,
} from "../src/core/envelope.ts";

const sk = umbral.SecretKey.random();
const options = () => ({
  ownerKey: sk.publicKey(),
  recordId: crypto.getRandomValues(new Uint8Array(32)),
  contentType: "application/fhir+json",
  segmentSize: 32,
});
const plaintext = (size: number) => Uint8Array.from({ length: size }, (_, i) => (i * 7) % 251);

async function* chunked(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += size) yield data.slice(at, at + size);
}

for (const size of [0, 1, 31, 32, 33, 32 * 5, 32 * 5 + 9]) {
  test(`round trip of ${size} bytes through bytes, streams and readable streams`, async () => {
    const data = plaintext(size);
    const whole = await encryptBytes(data, options());
    assert.equal(whole.length, 284 + size + 16 * Math.max(1, Math.ceil(size / 32)));
    assert.deepEqual(await decryptBytes(whole, { ownerSecretKey: sk }), data);
    for (const piece of [1, 5, 32, 48, 1000]) {
      const { header, chunks } = await encryptStream(chunked(data, piece), options());
      const envelope = await collect(chunks);
      assert.equal(envelope.length, whole.length);
      assert.deepEqual(header.raw, envelope.subarray(0, header.size));
      const reader = await EnvelopeReader.open(chunked(envelope, piece));
      const key = reader.header.unwrapForOwner(sk);
      assert.deepEqual(await collect(reader.decrypt(key)), data);
      assert.deepEqual(await decryptBytes(envelope, { key }), data);
    }
    const readable = await encryptReadable(new Blob([data]).stream(), options());
    const envelope = await collect(readable as unknown as AsyncIterable<Uint8Array>);
    assert.deepEqual(await collect(await decryptStream(new Blob([envelope]).stream(), sk)), data);
  });
}

test("every envelope has a fresh data key and nonce prefix", async () => {
  const opts = options();
  const [a, b] = [await encryptBytes(plaintext(10), opts), await encryptBytes(plaintext(10), opts)];
  assert.notEqual(bytesToHex(a), bytesToHex(b));
  assert.notEqual(bytesToHex(await commitmentOf(a)), bytesToHex(await commitmentOf(b)));
});

test("the header is checked before any key, naming what is wrong", async () => {
  const envelope = await encryptBytes(plaintext(40), options());
  const withMagic = envelope.slice();
  withMagic[0] = 0x58;
  await assert.rejects(readHeader(withMagic), /not a Kizuna envelope/);
  const withVersion = envelope.slice();
  withVersion[4] = 2;
  await assert.rejects(readHeader(withVersion), /unsupported envelope version 2/);
  const withFlags = envelope.slice();
  withFlags[5] = 1;
  await assert.rejects(readHeader(withFlags), EnvelopeFormatError);
  await assert.rejects(readHeader(envelope.subarray(0, 150)), /ends inside the capsule/);
  await assert.rejects(readHeader(envelope.subarray(0, 50)), /truncated header/);
});

test("wrong keys and tampering are integrity errors; only verified segments are released", async () => {
  const data = plaintext(32 * 3 + 5);
  const envelope = await encryptBytes(data, options());
  await assert.rejects(decryptBytes(envelope, { key: DataKey.random() }), /wrong key/);
  await assert.rejects(decryptBytes(envelope, { ownerSecretKey: umbral.SecretKey.random() }), /does not open/);
  const damaged = envelope.slice();
  damaged[284 + 48 + 2]! ^= 1; // segment 1
  await assert.rejects(decryptBytes(damaged, { ownerSecretKey: sk }), /segment 1 failed authentication/);
  const reader = await EnvelopeReader.open(damaged);
  const released: Uint8Array[] = [];
  await assert.rejects(async () => {
    for await (const chunk of reader.decrypt(reader.header.unwrapForOwner(sk))) released.push(chunk);
  }, IntegrityError);
  assert.deepEqual(released, [data.subarray(0, 32)]);
  await assert.rejects(decryptBytes(envelope.subarray(0, 284), { ownerSecretKey: sk }), /header but no segments/);
  await assert.rejects(decryptBytes(envelope.subarray(0, 284 + 96), { ownerSecretKey: sk }), /not its final segment/);
});

test("with the expected commitment, another envelope is refused before its last segment", async () => {
  const data = plaintext(32 * 2 + 3);
  const envelope = await encryptBytes(data, options());
  const other = await encryptBytes(data, options());
  const commitment = await commitmentOf(envelope);
  assert.deepEqual(await collect(await decryptStream(chunked(envelope, 10), sk, { expectedCommitment: commitment })), data);
  const released: Uint8Array[] = [];
  await assert.rejects(async () => {
    for await (const chunk of await decryptStream(other, sk, { expectedCommitment: commitment })) released.push(chunk);
  }, /does not match the expected commitment/);
  assert.equal(released.length, 2, "the final segment was withheld");
});

test("bad arguments are input errors naming the field", async () => {
  await assert.rejects(encryptBytes(plaintext(1), { ...options(), contentType: "fhir" }), { name: "InputError", field: "content_type" });
  await assert.rejects(encryptBytes(plaintext(1), { ...options(), segmentSize: 8 }), { name: "InputError", field: "segment_size" });
  await assert.rejects(encryptBytes(plaintext(1), { ...options(), recordId: new Uint8Array(31) }), InputError);
  assert.equal(String(DataKey.random()), "DataKey(…)");
});
