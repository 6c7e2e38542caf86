// Byte helpers shared by the core: hex, UTF-8/ASCII, big-endian integers, concatenation.
// Everything is a plain Uint8Array backed by an ArrayBuffer (what WebCrypto accepts).

import { InputError } from "./errors.ts";

export type Bytes = Uint8Array<ArrayBuffer>;

const HEX = /^(?:0x)?((?:[0-9a-fA-F]{2})*)$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Bytes from hex, with or without `0x`; `InputError` naming `field` if it is not hex. */
export function hexToBytes(hex: string, field = "hex"): Bytes {
  const match = typeof hex === "string" ? HEX.exec(hex) : null;
  if (!match) throw new InputError(field, "is not an even-length hex string");
  const digits = match[1] ?? "";
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Lower-case hex without `0x` (the form of the Python vectors' Umbral keys). */
export function bytesToHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

/** Lower-case hex with `0x` (the form of the vectors' signatures, digests and scope ids). */
export function bytesToHex0x(bytes: Uint8Array): `0x${string}` {
  return `0x${bytesToHex(bytes)}`;
}

export function utf8Encode(text: string): Bytes {
  return encoder.encode(text) as Bytes;
}

/** Strict UTF-8 decoding: invalid bytes throw rather than turn into U+FFFD. */
export function utf8Decode(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** ASCII bytes of `text`; `InputError` naming `field` for any other character. */
export function asciiBytes(text: string, field: string): Bytes {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) throw new InputError(field, `${JSON.stringify(text)} is not ASCII`);
    out[i] = code;
  }
  return out;
}

export function concatBytes(...parts: Uint8Array[]): Bytes {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Standard base64 (with padding) of `bytes`, in slices (no one huge argument list). */
export function bytesToBase64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** Bytes from standard base64; `InputError` naming `field` if it is not base64. */
export function base64ToBytes(text: string, field = "base64"): Bytes {
  let binary: string;
  try {
    binary = atob(text);
  } catch {
    throw new InputError(field, "is not base64");
  }
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Equality in time independent of where the first difference is. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** `value` as `size` bytes big-endian (e.g. a scalar as 32 bytes, an epoch as 8). */
export function bigIntToBytes(value: bigint, size: number): Bytes {
  if (value < 0n || value >= 1n << BigInt(8 * size)) {
    throw new RangeError(`${value} does not fit in ${size} bytes`);
  }
  const out = new Uint8Array(size);
  for (let i = size - 1; i >= 0; i--) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}

export function bytesToBigInt(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

/** A view WebCrypto accepts: the same bytes when they sit in an ArrayBuffer, else a copy. */
export function bufferSource(bytes: Uint8Array): Bytes {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Bytes) : new Uint8Array(bytes);
}

/** Overwrite secret bytes in place (best effort: JavaScript may have copied them). */
export function wipe(bytes: Uint8Array): void {
  bytes.fill(0);
}
