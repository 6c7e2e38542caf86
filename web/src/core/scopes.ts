// Blinded scope ids (kizuna/crypto/scopes.py, docs/keys.md): the chain stores
//   scope_id = HMAC-SHA256(scope key, label as ASCII)          (32 bytes)
// never the label. Which labels are valid (FHIR resource types, category codes) is Python's
// rule (parse_scope_label); the page will get that list generated from there (issue 13), not
// copied by hand, so this module only blinds.

import { asciiBytes, type Bytes } from "./bytes.ts";
import { InputError } from "./errors.ts";
import { hmacSha256 } from "./kdf.ts";

export const SCOPE_KEY_SIZE = 32;

/** A patient's 32-byte scope blinding key (from the wallet, walletKeys.ts). Memory only. */
export class ScopeKey {
  readonly #bytes: Bytes;

  constructor(bytes: Uint8Array) {
    if (!(bytes instanceof Uint8Array) || bytes.length !== SCOPE_KEY_SIZE) {
      throw new InputError("scope key", `must be ${SCOPE_KEY_SIZE} bytes`);
    }
    this.#bytes = new Uint8Array(bytes);
  }

  reveal(): Bytes {
    return this.#bytes;
  }

  toString(): string {
    return "ScopeKey(…)";
  }

  toJSON(): string {
    return this.toString();
  }
}

/** The 32-byte blinded id of `label` for the patient whose scope key this is. */
export async function blindScope(scopeKey: ScopeKey, label: string): Promise<Bytes> {
  if (typeof label !== "string" || !label) throw new InputError("scope", "is empty");
  return hmacSha256(scopeKey.reveal(), asciiBytes(label, "scope"));
}
