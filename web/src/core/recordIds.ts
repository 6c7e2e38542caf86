// Deterministic record ids of imported resources, byte for byte Python's
// (kizuna/crypto/wallet_keys.py derive_import_id_key, kizuna/client/importer.py record_id_of;
// docs/keys.md; tests/vectors/record_ids.json pins the results):
//
//   import id key = HKDF-SHA256(ikm = decrypting key's 32-byte scalar, salt "kizuna/wallet-keys/v1",
//                               info "kizuna/import-record-ids/v1", 32 bytes)
//   record id     = HMAC-SHA256(import id key, source digest (32 bytes) ‖ index as uint64 big-endian)
//
// The source digest is the SHA-256 of the input file's bytes (of each NDJSON file's digest, in
// order, for several), or the commitment of a file a provider delivered (a data request's
// answer). The same file names the same records on every run, in the page as in the CLI, so an
// import started again finds what is done; keyed by the patient's wallet, so an id tells nobody
// else which file or position it came from. The key lives in memory only, like every key.

import type * as umbral from "@nucypher/umbral-pre";
import { asciiBytes, bufferSource, concatBytes, type Bytes } from "./bytes.ts";
import { InputError } from "./errors.ts";
import { hkdfSha256 } from "./kdf.ts";

const HKDF_SALT = asciiBytes("kizuna/wallet-keys/v1", "salt");
const INFO_IMPORT_IDS = asciiBytes("kizuna/import-record-ids/v1", "info");

/** Indices travel as uint64; a JavaScript number is exact up to 2^53. */
function checkedIndex(index: number): Bytes {
  if (!Number.isSafeInteger(index) || index < 0) throw new InputError("index", `must be a whole number ≥ 0, got ${index}`);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(index));
  return out;
}

/** The patient's import record ids: one HMAC key, imported once (non-extractable). */
export class RecordIds {
  readonly #key: CryptoKey;

  private constructor(key: CryptoKey) {
    this.#key = key;
  }

  /** The ids of `decryptingKey`'s owner (the wallet keys' decrypting key). */
  static async derive(decryptingKey: umbral.SecretKey): Promise<RecordIds> {
    const raw = await deriveImportIdKey(decryptingKey);
    try {
      return await RecordIds.fromKey(raw);
    } finally {
      raw.fill(0);
    }
  }

  /** From the 32-byte import id key itself (the vectors' check). */
  static async fromKey(key: Uint8Array): Promise<RecordIds> {
    if (!(key instanceof Uint8Array) || key.length !== 32) throw new InputError("import_id_key", "must be 32 bytes");
    const imported = await crypto.subtle.importKey("raw", bufferSource(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return new RecordIds(imported);
  }

  /** The record id of resource `index` of the source with `digest` (32 bytes). */
  async of(digest: Uint8Array, index: number): Promise<Bytes> {
    if (!(digest instanceof Uint8Array) || digest.length !== 32) throw new InputError("digest", "must be 32 bytes");
    return new Uint8Array(await crypto.subtle.sign("HMAC", this.#key, concatBytes(digest, checkedIndex(index))));
  }

  toString(): string {
    return "RecordIds(<secret>)";
  }

  toJSON(): string {
    return this.toString();
  }
}

/** SHA-256 of a file's bytes: the source digest of a Bundle or one NDJSON file. */
export async function sourceDigest(bytes: Uint8Array): Promise<Bytes> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bufferSource(bytes)));
}

/** The source digest of several NDJSON files imported together: SHA-256 of their digests, in
 * order (kizuna/client/importer.py ndjson_source). */
export async function ndjsonDigest(files: readonly Uint8Array[]): Promise<Bytes> {
  const digests = await Promise.all(files.map(sourceDigest));
  return sourceDigest(concatBytes(...digests));
}

/** The import id key's bytes (for the vectors only; the page never needs them). */
export async function deriveImportIdKey(decryptingKey: umbral.SecretKey): Promise<Bytes> {
  const ikm = new Uint8Array(decryptingKey.toBEBytes());
  try {
    return await hkdfSha256(ikm, HKDF_SALT, INFO_IMPORT_IDS, 32);
  } finally {
    ikm.fill(0);
  }
}
