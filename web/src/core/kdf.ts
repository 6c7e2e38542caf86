// HKDF-SHA256 (RFC 5869) and HMAC-SHA256 through WebCrypto: the only KDF and MAC the formats
// use (docs/envelope.md, docs/keys.md). Keys are imported non-extractable, per call.

import { bufferSource, type Bytes } from "./bytes.ts";

export async function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<Bytes> {
  const key = await crypto.subtle.importKey("raw", bufferSource(ikm), "HKDF", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: bufferSource(salt), info: bufferSource(info) },
    key,
    length * 8,
  );
  return new Uint8Array(bits);
}

export async function hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Bytes> {
  const imported = await crypto.subtle.importKey(
    "raw",
    bufferSource(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", imported, bufferSource(data)));
}
