// A patient's scopes in the page (kizuna/client/patient.py `scope_and_epoch`): a label is
// blinded into its scope id (HMAC with the wallet-derived scope key, core/scopes.ts), each
// scope's records are encrypted to the delegating key of its current key epoch, and the keys of
// each (scope, epoch) are bound with the proxy once, by one wallet signature of the ScopeKeys
// statement (kizuna/proxy/kfrags.py `scope_keys_typed_data`, in the proxy's EIP-712 domain).

import type { Hex } from "viem";
import { bytesToHex0x, type Bytes } from "../core/bytes.ts";
import { blindScope } from "../core/scopes.ts";
import { checkedEpoch } from "../core/walletKeys.ts";
import { ok } from "../api/client.ts";
import { proxyTypedData } from "../core/eip712.ts";
import { scopeLabel, VOCABULARY } from "./vocabulary.ts";
import type { PatientContext } from "./context.ts";

export { PROXY_DOMAIN_NAME, PROXY_DOMAIN_VERSION } from "../core/eip712.ts";
const SCOPE_KEYS_FIELDS = [
  { name: "patient", type: "address" },
  { name: "scopeId", type: "bytes32" },
  { name: "epoch", type: "uint64" },
  { name: "delegatingKey", type: "bytes" },
  { name: "verifyingKey", type: "bytes" },
];

/** The ScopeKeys statement the wallet signs (Python's `scope_keys_typed_data(...).to_json()`). */
export function scopeKeysTypedData(fields: {
  chainId: number;
  accessLog: string;
  patient: string;
  scopeId: Uint8Array;
  epoch: number;
  delegatingKey: Uint8Array;
  verifyingKey: Uint8Array;
}): object {
  checkedEpoch("epoch", fields.epoch);
  return proxyTypedData({
    primaryType: "ScopeKeys",
    fields: SCOPE_KEYS_FIELDS,
    chainId: fields.chainId,
    accessLog: fields.accessLog,
    message: {
      patient: fields.patient,
      scopeId: bytesToHex0x(fields.scopeId),
      epoch: fields.epoch,
      delegatingKey: bytesToHex0x(fields.delegatingKey),
      verifyingKey: bytesToHex0x(fields.verifyingKey),
    },
  });
}

/** A human name for a label in wallet prompts ("Observation:laboratory" → "Observation (laboratory)"). */
export function labelForPeople(label: string): string {
  const at = label.indexOf(":");
  return at < 0 ? label : `${label.slice(0, at)} (${label.slice(at + 1)})`;
}

export class Scopes {
  readonly #ctx: PatientContext;
  /** (scope, epoch) → the wallet's ScopeKeys signature, kept for the page's life: proxy nodes
   * take the same statement with each fragment (no second prompt for it). */
  readonly #registered = new Map<string, Hex>();
  readonly #labels = new Map<string, string>();
  #learned = false;

  constructor(ctx: PatientContext) {
    this.#ctx = ctx;
  }

  /** The blinded id of `label` (validated: InputError naming `field`); remembered for labelOf. */
  async id(label: string, field = "label"): Promise<Bytes> {
    const valid = scopeLabel(label, field);
    const sid = await blindScope(this.#ctx.keys.scopeKey, valid);
    this.#labels.set(bytesToHex0x(sid), valid);
    return sid;
  }

  /** The label behind a scope id, after `learnVocabulary` or an earlier `id` (null: unknown). */
  labelOf(scopeId: string | Uint8Array): string | null {
    const key = typeof scopeId === "string" ? scopeId.toLowerCase() : bytesToHex0x(scopeId);
    return this.#labels.get(key) ?? null;
  }

  /** Blind the whole vocabulary once, so every imported record's scope can be named. */
  async learnVocabulary(): Promise<void> {
    if (this.#learned) return;
    await Promise.all(VOCABULARY.map((label) => this.id(label)));
    this.#learned = true;
  }

  /** The scope's key epoch at the chain head (GET /patient/scope-epochs). */
  async epoch(scopeId: Uint8Array): Promise<number> {
    const answer = ok(await this.#ctx.api.GET("/patient/scope-epochs/{scope_id}", {
      params: { path: { scope_id: bytesToHex0x(scopeId) }, query: this.#ctx.acting() },
    }));
    return answer.epoch;
  }

  /** `label`'s scope id and current epoch, the keys of that epoch bound with the proxy. */
  async current(label: string, field = "label"): Promise<{ scopeId: Bytes; epoch: number; label: string }> {
    const scopeId = await this.id(label, field);
    const epoch = await this.epoch(scopeId);
    await this.register(scopeId, epoch);
    return { scopeId, epoch, label: scopeLabel(label, field) };
  }

  /** Bind the keys of (scope, epoch) with the proxy: one wallet signature, once per page; the
   * signature (what threshold proxy nodes take with each fragment, patient/threshold.ts). */
  async register(scopeId: Uint8Array, epoch: number): Promise<Hex> {
    const key = `${bytesToHex0x(scopeId)}:${epoch}`;
    const known = this.#registered.get(key);
    if (known) return known;
    const { keys, signer, deployment } = this.#ctx;
    const delegating = (await keys.scopeDelegatingKey(scopeId, epoch)).publicKey().toCompressedBytes();
    const verifying = keys.verifyingKey.toCompressedBytes();
    const typed = scopeKeysTypedData({
      chainId: deployment.chainId, accessLog: this.#ctx.contract("AccessLog"), patient: signer.address,
      scopeId, epoch, delegatingKey: delegating, verifyingKey: verifying,
    });
    const label = this.labelOf(scopeId);
    const signature = await signer.signTypedData(typed, {
      title: `Set up sharing keys for ${label ? labelForPeople(label) : "a part of your record"}`,
      why: "Registers the public keys this part of your record is encrypted to, so that you can later share it with a provider. " +
        "It costs nothing and shares nothing yet.",
      details: [["Part of your record", label ?? bytesToHex0x(scopeId)], ["Key version", String(epoch)]],
    });
    await this.#ctx.api.POST("/patient/scope-keys", {
      body: {
        scope_id: bytesToHex0x(scopeId), epoch, delegating_key: bytesToHex0x(delegating),
        verifying_key: bytesToHex0x(verifying), signature,
      },
    });
    this.#registered.set(key, signature);
    return signature;
  }
}
