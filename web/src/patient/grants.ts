// Sharing in the page (kizuna/client/patient.py grant / revoke / revoke_all / rekey_scopes):
// key fragments are made HERE, from the scope's delegating key of each epoch, for the
// provider's key as the chain's registry has it; the service only relays the signed Grant /
// Revoke (or confirms the wallet's own transaction) and keeps the fragments for its proxy.
// With threshold proxy nodes in the deployment (threshold.ts), the fragments go m-of-n to the
// nodes, each its own, and the service keeps none.
// A revocation moves the scope's key epoch: the grantees that remain get fragments of the new
// epoch at once, as in Python.

import type { Hex } from "viem";
import { ok, type Schemas } from "../api/client.ts";
import { bytesToHex0x, hexToBytes, type Bytes } from "../core/bytes.ts";
import { InputError, KizunaError } from "../core/errors.ts";
import { checkedAddress } from "./chain.ts";
import type { PatientContext } from "./context.ts";
import { makeKFrags } from "./kfrags.ts";
import type { Records } from "./records.ts";
import { labelForPeople, type Scopes } from "./scopes.ts";
import { announceRecords, epochsToHand, handOut, nodeSet, prepareEpoch, recordRows, type Handout, type NodeSet } from "./threshold.ts";

export type TxResult = { txHash: Hex; blockNumber: number };

/** What a revocation's rekey did: per scope, its new epoch and who got fragments of it. */
export type Rekeyed = Array<{ scopeId: Hex; epoch: number; providers: Hex[] }>;
export type RevokeResult = TxResult & { rekeyed: Rekeyed };
/** `nodes`: the grant went through threshold proxy nodes (m of n), none to the service. */
export type GrantResult = TxResult & { scopeIds: Hex[]; kfragsStored: number; nodes?: { threshold: number; of: number } };

export type GrantInfo = {
  provider: Hex;
  scopeId: Hex;
  label: string | null;
  expiresAt: number;
  grantedBlock: number;
  live: boolean;
};

function txResult(out: Schemas["TxOut"]): TxResult {
  return { txHash: out.tx_hash as Hex, blockNumber: out.block_number };
}

function when(expiresAt: number): string {
  return new Date(expiresAt * 1000).toUTCString();
}

/** Key fragments (serialised) letting `receivingKey` open the scope's records of `epoch`:
 * one fragment, threshold one, signed over both keys (kizuna.crypto.pre.generate_kfrags). */
export async function kfragsFor(ctx: PatientContext, scopeId: Uint8Array, epoch: number, receivingKey: Uint8Array): Promise<Hex[]> {
  return (await makeKFrags(ctx, scopeId, epoch, receivingKey)).kfrags;
}

export class Grants {
  readonly #ctx: PatientContext;
  readonly #scopes: Scopes;
  readonly #records: Records;

  constructor(ctx: PatientContext, scopes: Scopes, records: Records) {
    this.#ctx = ctx;
    this.#scopes = scopes;
    this.#records = records;
  }

  /** Share the scopes of `labels` with `provider` until `expiresAt` (seconds, chain time). */
  async grant(provider: string, labels: string[], expiresAt: number): Promise<GrantResult> {
    this.#ctx.ownOnly("Sharing");
    if (!Array.isArray(labels) || labels.length === 0) throw new InputError("labels", "at least one scope label is needed");
    const address = checkedAddress("provider", provider);
    if (!Number.isSafeInteger(expiresAt) || expiresAt <= 0) throw new InputError("expires_at", "must be a time in seconds");
    if (expiresAt <= (await this.#ctx.chain.now())) throw new InputError("expires_at", `${when(expiresAt)} is already past`);
    const entry = await this.#ctx.chain.activeProvider(address);
    const scoped = new Map<Hex, { scopeId: Bytes; epoch: number; label: string }>();
    for (const [i, label] of labels.entries()) {
      const current = await this.#scopes.current(label, `labels[${i}]`);
      scoped.set(bytesToHex0x(current.scopeId), current);
    }
    const set = await nodeSet(this.#ctx);
    if (set) return this.#grantThroughNodes(set, address, [...scoped.values()], entry.umbralPublicKey, expiresAt);
    const kfrags: Record<string, Hex[]> = {};
    for (const [sid, s] of scoped) kfrags[sid] = await kfragsFor(this.#ctx, s.scopeId, s.epoch, entry.umbralPublicKey);
    const scopeIds = [...scoped.keys()];
    const names = [...scoped.values()].map((s) => labelForPeople(s.label));
    const prepared = ok(await this.#ctx.api.POST("/wallet/prepare/grant", {
      params: { query: this.#ctx.acting() },
      body: { provider: address, scope_ids: scopeIds, expires_at: expiresAt, deadline: await this.#ctx.deadline() },
    }));
    const authorization = await this.#ctx.authorize(prepared, {
      title: `Share ${names.length === 1 ? names[0] : `${names.length} parts of your record`} with ${address}`,
      why: `Lets this provider read these parts of your health record until ${when(expiresAt)}. You can revoke it at any time.`,
      details: [["Provider", address], ["Shared", names.join(", ")], ["Until", when(expiresAt)]],
    });
    const tx = txResult(ok(await this.#ctx.api.POST("/patient/grants", {
      params: { query: this.#ctx.acting() },
      body: { provider: address, scope_ids: scopeIds, expires_at: expiresAt, kfrags, authorization },
    })));
    let stored = scopeIds.length;
    // Older records of a scope are encrypted to earlier epochs' keys: the grantee gets
    // fragments of each epoch the scope has records of (no chain action).
    const records = await this.#records.list();
    for (const [sid, s] of scoped) {
      const older = [...new Set(records.filter((r) => bytesToHex0x(r.scopeId) === sid && r.epoch < s.epoch).map((r) => r.epoch))].sort((a, b) => a - b);
      for (const epoch of older) {
        await this.#scopes.register(s.scopeId, epoch);
        stored += await this.#reissue(address, s.scopeId, epoch, entry.umbralPublicKey);
      }
    }
    return { ...tx, scopeIds, kfragsStored: stored };
  }

  /** kizuna/client/threshold.py grant_through_nodes: every fragment made and signed for its
   * node first (nothing is on chain if the patient stops there), then the grant as the wallet's
   * own transaction (the relayer carries a Grant only with the service's fragments), then each
   * node handed its own and told of the scopes' records. */
  async #grantThroughNodes(set: NodeSet, provider: Hex, scoped: { scopeId: Uint8Array; epoch: number; label: string }[], receivingKey: Uint8Array, expiresAt: number): Promise<GrantResult> {
    const ctx = this.#ctx;
    const rows = await recordRows(ctx);
    const handouts: Handout[] = [];
    for (const s of scoped) {
      for (const epoch of epochsToHand(rows, s.scopeId, s.epoch)) {
        handouts.push(...await prepareEpoch(ctx, this.#scopes, set, { provider, receivingKey, scopeId: s.scopeId, epoch }));
      }
    }
    const scopeIds = scoped.map((s) => bytesToHex0x(s.scopeId));
    const names = scoped.map((s) => labelForPeople(s.label));
    const prepared = ok(await ctx.api.POST("/wallet/prepare/grant", {
      params: { query: ctx.acting() },
      body: { provider, scope_ids: scopeIds, expires_at: expiresAt, deadline: await ctx.deadline() },
    }));
    const txHash = await ctx.send(prepared, {
      title: `Share ${names.length === 1 ? names[0] : `${names.length} parts of your record`} with ${provider}`,
      why: `Lets this provider read these parts of your health record until ${when(expiresAt)}, through ${set.threshold} of the ${set.nodes.length} proxy nodes that hold its key pieces. You can revoke it at any time.`,
      details: [["Provider", provider], ["Shared", names.join(", ")], ["Until", when(expiresAt)], ["Proxy nodes needed", `${set.threshold} of ${set.nodes.length}`]],
    });
    const receipt = await ctx.chain.client.waitForTransactionReceipt({ hash: txHash, timeout: 120_000 });
    if (receipt.status !== "success") throw new KizunaError(`The sharing transaction ${txHash} failed on the blockchain: nothing was shared, and no proxy node got a key piece.`);
    const handed = await handOut(set, handouts);
    await announceRecords(set, rows.filter((r) => scopeIds.includes(r.scope_id.toLowerCase() as Hex)));
    await this.#seen(provider, scopeIds, expiresAt);
    return { txHash, blockNumber: Number(receipt.blockNumber), scopeIds, kfragsStored: handed, nodes: { threshold: set.threshold, of: set.nodes.length } };
  }

  /** Wait (up to 20 s) until the service's index shows the grant the wallet sent, so the list
   * the page shows next has it; the chain holds it either way. */
  async #seen(provider: Hex, scopeIds: Hex[], expiresAt: number): Promise<void> {
    for (let tries = 0; tries < 40; tries++) {
      const live = (await this.list()).filter((g) => g.live && g.provider === provider && g.expiresAt === expiresAt);
      if (scopeIds.every((sid) => live.some((g) => g.scopeId === sid))) return;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  async #reissue(provider: Hex, scopeId: Uint8Array, epoch: number, receivingKey: Uint8Array): Promise<number> {
    const answer = ok(await this.#ctx.api.POST("/patient/kfrags", {
      params: { query: this.#ctx.acting() },
      body: { provider, scope_id: bytesToHex0x(scopeId), epoch, kfrags: await kfragsFor(this.#ctx, scopeId, epoch, receivingKey) },
    }));
    return answer.kfrags_stored;
  }

  /** Stop sharing one scope with `provider` (a signed Revoke, relayed; or the wallet's own
   * transaction); the grantees that remain get fragments of the scope's new key epoch. */
  async revoke(provider: string, label: string): Promise<RevokeResult> {
    this.#ctx.ownOnly("Revoking");
    const address = checkedAddress("provider", provider);
    const scopeId = await this.#scopes.id(label, "label");
    const prepared = ok(await this.#ctx.api.POST("/wallet/prepare/revoke", {
      params: { query: this.#ctx.acting() },
      body: { provider: address, scope_id: bytesToHex0x(scopeId), deadline: await this.#ctx.deadline() },
    }));
    const authorization = await this.#ctx.authorize(prepared, {
      title: `Stop sharing ${labelForPeople(label)} with ${address}`,
      why: "This provider will no longer be able to read this part of your health record. What they read before cannot be taken back.",
      details: [["Provider", address], ["No longer shared", labelForPeople(label)]],
    });
    const tx = txResult(ok(await this.#ctx.api.POST("/patient/revocations", {
      params: { query: this.#ctx.acting() },
      body: { provider: address, scope_id: bytesToHex0x(scopeId), authorization },
    })));
    return { ...tx, rekeyed: await this.rekey([scopeId]) };
  }

  /** Stop sharing everything with `provider`: revokeAll has no signed form, so the wallet
   * sends it (and pays its fee) in either mode; the service confirms it from its event. */
  async revokeAll(provider: string): Promise<RevokeResult> {
    this.#ctx.ownOnly("Revoking");
    const address = checkedAddress("provider", provider);
    const held = [...new Set((await this.list()).filter((g) => g.provider === address).map((g) => g.scopeId))];
    const prepared = ok(await this.#ctx.api.POST("/wallet/prepare/revoke-all", {
      params: { query: this.#ctx.acting() },
      body: { provider: address },
    }));
    const txHash = await this.#ctx.send(prepared, {
      title: `Stop sharing everything with ${address}`,
      why: "Ends every grant, request and emergency access of this provider to your health record.",
      details: [["Provider", address]],
    });
    const tx = txResult(ok(await this.#ctx.api.POST("/patient/revocations/all", {
      params: { query: this.#ctx.acting() },
      body: { provider: address, tx_hash: txHash },
    })));
    return { ...tx, rekeyed: held.length ? await this.rekey(held.map((s) => hexToBytes(s, "scope_id"))) : [] };
  }

  /** Bring the proxy up to the current key epoch of `scopeIds`: the epoch's keys registered
   * (one signature per scope whose epoch moved) and fragments re-issued to each live grantee. */
  async rekey(scopeIds: Uint8Array[]): Promise<Rekeyed> {
    const live = (await this.list()).filter((g) => g.live);
    // With proxy nodes the new epoch's fragments go to them (kizuna/client/patient.py
    // rekey_scopes); the revocation itself told them nothing: each follows the chain.
    const set = await nodeSet(this.#ctx);
    const done: Rekeyed = [];
    for (const scopeId of scopeIds) {
      const sid = bytesToHex0x(scopeId);
      const epoch = await this.#scopes.epoch(scopeId);
      const grantees = [...new Set(live.filter((g) => g.scopeId === sid).map((g) => g.provider))].sort();
      if (grantees.length) await this.#scopes.register(scopeId, epoch);
      for (const provider of grantees) {
        const entry = await this.#ctx.chain.activeProvider(provider);
        if (set) await handOut(set, await prepareEpoch(this.#ctx, this.#scopes, set, { provider, receivingKey: entry.umbralPublicKey, scopeId, epoch }));
        else await this.#reissue(provider, scopeId, epoch, entry.umbralPublicKey);
      }
      done.push({ scopeId: sid, epoch, providers: grantees });
    }
    return done;
  }

  /** The patient's live grants at the chain head, with the labels this page can name. */
  async list(): Promise<GrantInfo[]> {
    const found = ok(await this.#ctx.api.GET("/patient/grants", { params: { query: this.#ctx.acting() } }));
    return found.map((g) => ({
      provider: checkedAddress("provider", g.provider),
      scopeId: g.scope_id.toLowerCase() as Hex,
      label: this.#scopes.labelOf(g.scope_id),
      expiresAt: g.expires_at,
      grantedBlock: g.granted_block,
      live: g.live,
    }));
  }
}
