// Wallet-derived keys in the browser (docs/keys.md; kizuna/crypto/wallet_keys.py is the
// reference, tests/vectors/wallet_keys.json pins the results):
//
//   the wallet signs (eth_signTypedData_v4) KeyDerivation(string purpose, address account)
//   in the domain {name "Kizuna", version "1", chainId, verifyingContract: ConsentLedger}
//   ikm  = r || s   (s normalised to the low half; v dropped)
//   salt = "kizuna/wallet-keys/v1"
//   decrypting key = to_scalar(HKDF(ikm, salt, "kizuna/v1/umbral-decrypting-key", 48))
//   signing key    = to_scalar(HKDF(ikm, salt, "kizuna/v1/umbral-signing-key", 48))
//   scope key      =           HKDF(ikm, salt, "kizuna/v1/scope-blinding-key", 32)
//   scope delegating key (scope id, epoch) = to_scalar(HKDF(decrypting key's 32-byte scalar,
//       salt, "kizuna/scope-delegation/v1" || scope id [|| epoch as u64 big-endian if epoch ≥ 1], 48))
//   to_scalar(b)   = int(b) mod (n - 1) + 1
//
// HKDF runs in WebCrypto, the Umbral keys come from @nucypher/umbral-pre's SecretKey.fromBEBytes.
// The keys live in memory only; the page asks the wallet again after a reload.

import * as umbral from "@nucypher/umbral-pre";
import { getAddress, isAddress, recoverTypedDataAddress, type Hex } from "viem";
import { asciiBytes, bigIntToBytes, bytesToBigInt, bytesToHex0x, concatBytes, hexToBytes, type Bytes } from "./bytes.ts";
import { EIP712_DOMAIN_FIELDS } from "./eip712.ts";
import { InputError, KeyDerivationError } from "./errors.ts";
import { hkdfSha256 } from "./kdf.ts";
import { ScopeKey } from "./scopes.ts";

export const DOMAIN_NAME = "Kizuna";
export const DOMAIN_VERSION = "1";
/** The fixed text the wallet shows. Changing one character changes every derived key. */
export const PURPOSE =
  "Kizuna: derive my encryption keys for my health records. Sign this only in Kizuna: " +
  "whoever holds this signature can read my records.";

export const KEY_DERIVATION_TYPES = {
  EIP712Domain: EIP712_DOMAIN_FIELDS,
  KeyDerivation: [
    { name: "purpose", type: "string" },
    { name: "account", type: "address" },
  ],
} as const;

const HKDF_SALT = asciiBytes("kizuna/wallet-keys/v1", "salt");
const INFO_DECRYPTING_KEY = asciiBytes("kizuna/v1/umbral-decrypting-key", "info");
const INFO_SIGNING_KEY = asciiBytes("kizuna/v1/umbral-signing-key", "info");
const INFO_SCOPE_KEY = asciiBytes("kizuna/v1/scope-blinding-key", "info");
const INFO_SCOPE_DELEGATION = asciiBytes("kizuna/scope-delegation/v1", "info");

export const MAX_EPOCH = 2n ** 64n - 1n;
export const SECP256K1_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const HALF_ORDER = SECP256K1_ORDER / 2n;

/** Where the keys belong: one chain and one Kizuna ConsentLedger contract. */
export type KeyDerivationDomain = { chainId: number; verifyingContract: string };

export type KeyDerivationTypedData = {
  types: typeof KEY_DERIVATION_TYPES;
  primaryType: "KeyDerivation";
  domain: { name: string; version: string; chainId: number; verifyingContract: Hex };
  message: { purpose: string; account: Hex };
};

function checkedAddress(field: string, value: string): Hex {
  if (typeof value !== "string" || !isAddress(value, { strict: false })) {
    throw new InputError(field, "not an Ethereum address");
  }
  return getAddress(value);
}

function checkedDomain(domain: KeyDerivationDomain): KeyDerivationDomain & { verifyingContract: Hex } {
  if (!Number.isSafeInteger(domain.chainId) || domain.chainId <= 0) {
    throw new InputError("chain_id", `must be a positive integer, got ${domain.chainId}`);
  }
  return { chainId: domain.chainId, verifyingContract: checkedAddress("verifying_contract", domain.verifyingContract) };
}

/** The EIP-712 document for `eth_signTypedData_v4`: identical to Python's
 * key_derivation_typed_data (JSON.stringify it for the wallet request). */
export function keyDerivationTypedData(account: string, domain: KeyDerivationDomain): KeyDerivationTypedData {
  const checked = checkedDomain(domain);
  return {
    types: KEY_DERIVATION_TYPES,
    primaryType: "KeyDerivation",
    domain: {
      name: DOMAIN_NAME,
      version: DOMAIN_VERSION,
      chainId: checked.chainId,
      verifyingContract: checked.verifyingContract,
    },
    message: { purpose: PURPOSE, account: checkedAddress("account", account) },
  };
}

/** A participant's keys derived from their wallet. Memory only; never serialised. */
export class WalletKeys {
  readonly account: Hex;
  readonly decryptingKey: umbral.SecretKey;
  readonly signingKey: umbral.SecretKey;
  readonly scopeKey: ScopeKey;

  constructor(fields: { account: Hex; decryptingKey: umbral.SecretKey; signingKey: umbral.SecretKey; scopeKey: ScopeKey }) {
    this.account = fields.account;
    this.decryptingKey = fields.decryptingKey;
    this.signingKey = fields.signingKey;
    this.scopeKey = fields.scopeKey;
  }

  /** What others encrypt to. */
  get publicKey(): umbral.PublicKey {
    return this.decryptingKey.publicKey();
  }

  /** What proxies and grantees check key fragments against. */
  get verifyingKey(): umbral.PublicKey {
    return this.signingKey.publicKey();
  }

  signer(): umbral.Signer {
    return new umbral.Signer(this.signingKey);
  }

  /** The delegating key of one scope in one epoch (docs/keys.md "Epochs"). */
  scopeDelegatingKey(scopeId: Uint8Array, epoch: number | bigint = 0): Promise<umbral.SecretKey> {
    return deriveScopeDelegatingKey(this.decryptingKey, scopeId, epoch);
  }

  toString(): string {
    return `WalletKeys(account=${this.account})`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/** Split a 65-byte signature; `KeyDerivationError` for anything that is not one. */
function splitSignature(signature: Uint8Array): [bigint, bigint, number] {
  if (signature.length !== 65) {
    throw new KeyDerivationError(`signature must be 65 bytes (r, s, v), got ${signature.length}`);
  }
  const r = bytesToBigInt(signature.subarray(0, 32));
  const s = bytesToBigInt(signature.subarray(32, 64));
  let v = signature[64] as number;
  if (v === 27 || v === 28) v -= 27;
  if (v !== 0 && v !== 1) {
    throw new KeyDerivationError(`signature v must be 0, 1, 27 or 28, got ${signature[64]}`);
  }
  if (!(r > 0n && r < SECP256K1_ORDER && s > 0n && s < SECP256K1_ORDER)) {
    throw new KeyDerivationError("signature r or s out of range");
  }
  return [r, s, v];
}

/** Derive `account`'s keys from its signature over the key-derivation message. The signature
 * must recover to `account` (`KeyDerivationError` otherwise); high-s and v in {0, 1, 27, 28}
 * are normalised, so every wallet's encoding of one signature gives the same keys. */
export async function deriveWalletKeys(
  signature: Uint8Array | string,
  account: string,
  domain: KeyDerivationDomain,
): Promise<WalletKeys> {
  const raw = typeof signature === "string" ? hexToBytes(signature, "signature") : signature;
  const typedData = keyDerivationTypedData(account, domain);
  let [r, s, v] = splitSignature(raw);
  if (s > HALF_ORDER) {
    s = SECP256K1_ORDER - s;
    v ^= 1;
  }
  const ikm = concatBytes(bigIntToBytes(r, 32), bigIntToBytes(s, 32));
  const canonical = bytesToHex0x(concatBytes(ikm, new Uint8Array([27 + v])));
  let recovered: Hex;
  try {
    recovered = await recoverTypedDataAddress({
      ...typedData,
      domain: { ...typedData.domain, chainId: BigInt(typedData.domain.chainId) },
      signature: canonical,
    });
  } catch (error) {
    throw new KeyDerivationError("signature does not recover to any account", { cause: error });
  }
  const expected = typedData.message.account;
  if (recovered !== expected) {
    throw new KeyDerivationError(
      `signature is by ${recovered}, not by ${expected} (or over another message, chain id ${domain.chainId} or contract)`,
    );
  }
  try {
    return new WalletKeys({
      account: expected,
      decryptingKey: await scalarKey(ikm, INFO_DECRYPTING_KEY),
      signingKey: await scalarKey(ikm, INFO_SIGNING_KEY),
      scopeKey: new ScopeKey(await hkdfSha256(ikm, HKDF_SALT, INFO_SCOPE_KEY, 32)),
    });
  } finally {
    ikm.fill(0);
  }
}

/** An epoch as a bigint in [0, 2^64), or `InputError` naming `field`. */
export function checkedEpoch(field: string, value: number | bigint): bigint {
  if (typeof value === "number" && !Number.isSafeInteger(value)) throw new InputError(field, "must be an integer");
  if (typeof value !== "number" && typeof value !== "bigint") throw new InputError(field, "must be an integer");
  const epoch = BigInt(value);
  if (epoch < 0n || epoch > MAX_EPOCH) throw new InputError(field, `must be between 0 and ${MAX_EPOCH}, got ${epoch}`);
  return epoch;
}

/** One delegating key per (patient, scope, epoch); epoch 0 has no suffix (the key of before
 * epochs existed), every epoch comes from the decrypting key, never from the epoch before. */
export async function deriveScopeDelegatingKey(
  decryptingKey: umbral.SecretKey,
  scopeId: Uint8Array,
  epoch: number | bigint = 0,
): Promise<umbral.SecretKey> {
  if (!(scopeId instanceof Uint8Array) || scopeId.length !== 32) {
    throw new InputError("scope_id", "must be exactly 32 bytes");
  }
  const checked = checkedEpoch("epoch", epoch);
  const info = checked ? concatBytes(INFO_SCOPE_DELEGATION, scopeId, bigIntToBytes(checked, 8)) : concatBytes(INFO_SCOPE_DELEGATION, scopeId);
  const ikm = new Uint8Array(decryptingKey.toBEBytes());
  try {
    return await scalarKey(ikm, info);
  } finally {
    ikm.fill(0);
  }
}

async function scalarKey(ikm: Uint8Array, info: Uint8Array): Promise<umbral.SecretKey> {
  const okm = await hkdfSha256(ikm, HKDF_SALT, info, 48);
  const scalar = (bytesToBigInt(okm) % (SECP256K1_ORDER - 1n)) + 1n;
  okm.fill(0);
  const bytes: Bytes = bigIntToBytes(scalar, 32);
  try {
    return umbral.SecretKey.fromBEBytes(bytes);
  } finally {
    bytes.fill(0);
  }
}
