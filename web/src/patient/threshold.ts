// The patient's grant through threshold proxy nodes in the page (docs/proxies.md; the Python twin
// is kizuna/client/threshold.py grant_through_nodes / hand_epoch). With a ProxyRegistry listing
// at least one active node, a grant makes m-of-n key fragments per (scope, key epoch) — m by
// default_threshold: 2 once there are 3 nodes, else 1 — binds each to its node by the patient's
// NodeKfrag statement (an EIP-712 signature of the wallet account, as Python's client.signer: the
// nodes and providers recover the patient's address from it, so the wallet-derived Umbral key
// cannot sign it) and sends each node only its own, directly (the page's CSP lists the nodes; each
// answers CORS for this page). The service gets no fragment: the grant goes on chain as the
// wallet's own transaction (the relayer carries Grants only with their fragments), as Python's.
// Revocations tell the nodes nothing: each node's own follower sees the chain end the grant and
// deletes its fragments; the rekey that follows hands the new epoch's fragments to the nodes.

import { keccak256, type Hex } from "viem";
import { ok, type Schemas } from "../api/client.ts";
import { bytesToHex0x } from "../core/bytes.ts";
import { KizunaError } from "../core/errors.ts";
import {
  announcementOf, defaultThreshold, NodeFailure, nodeKfragTypedData, postNode, proxyNodes, type ProxyNode,
} from "../core/proxyNodes.ts";
import { shortAddress } from "../ui/format.ts";
import type { PatientContext } from "./context.ts";
import { makeKFrags } from "./kfrags.ts";
import { labelForPeople, type Scopes } from "./scopes.ts";

/** The proxy set a grant goes through: the registry's active nodes and m. */
export type NodeSet = { nodes: ProxyNode[]; threshold: number };

/** The deployment's proxy set, or null when it lists no node (the service's 1-of-1 path). */
export async function nodeSet(ctx: PatientContext): Promise<NodeSet | null> {
  const nodes = await proxyNodes(ctx);
  return nodes.length ? { nodes, threshold: defaultThreshold(nodes.length) } : null;
}

/** One node's request: kizuna/client/threshold.py hand_kfrags' body. */
export type NodeKfragBody = {
  patient: Hex; scope_id: Hex; provider: Hex; epoch: number; nodes: Hex[]; threshold: number;
  kfrag: Hex; signature: Hex; delegating_key: Hex; verifying_key: Hex; scope_keys_signature: Hex;
};

/** A fragment made and signed for its node, not sent yet. */
export type Handout = { node: ProxyNode; body: NodeKfragBody };

/** The fragments of (scope, epoch) for `provider`, with `scopes`' ScopeKeys statement of the
 * epoch's keys (signed once per page, Scopes.register). Nothing is sent. */
export async function prepareEpoch(ctx: PatientContext, scopes: Scopes, set: NodeSet, grant: {
  provider: Hex; receivingKey: Uint8Array; scopeId: Uint8Array; epoch: number;
}): Promise<Handout[]> {
  const scopeKeysSignature = await scopes.register(grant.scopeId, grant.epoch);
  return signedHandouts(ctx, set, { ...grant, scopeKeysSignature, label: scopes.labelOf(grant.scopeId) });
}

/** The fragments of (scope, epoch) for `provider`: m-of-n, one per node, each with the patient's
 * NodeKfrag statement (one wallet signature per node, its purpose shown) and the given ScopeKeys
 * signature; the bodies of kizuna/client/threshold.py hand_kfrags. Nothing is sent. */
export async function signedHandouts(ctx: PatientContext, set: NodeSet, grant: {
  provider: Hex; receivingKey: Uint8Array; scopeId: Uint8Array; epoch: number; scopeKeysSignature: Hex; label: string | null;
}): Promise<Handout[]> {
  const { kfrags, delegatingKey } = await makeKFrags(ctx, grant.scopeId, grant.epoch, grant.receivingKey, set.threshold, set.nodes.length);
  const members = set.nodes.map((n) => n.address);
  const scopeId = bytesToHex0x(grant.scopeId);
  const scope = { patient: ctx.signer.address, provider: grant.provider, scopeId, chainId: ctx.deployment.chainId, accessLog: ctx.contract("AccessLog") };
  const label = grant.label;
  const part = label ? labelForPeople(label) : "a part of your record";
  const handouts: Handout[] = [];
  for (const [i, node] of set.nodes.entries()) {
    const kfrag = kfrags[i]!;
    const typed = nodeKfragTypedData({ node: node.address, nodes: members, threshold: set.threshold, epoch: grant.epoch, kfragDigest: keccak256(kfrag) }, scope);
    const signature = await ctx.signer.signTypedData(typed, {
      title: `Key piece ${i + 1} of ${set.nodes.length} for ${part}: proxy node ${shortAddress(node.address)}`,
      why: `Binds one piece of this sharing's key to this proxy node only. Any ${set.threshold} of the ${set.nodes.length} proxy nodes together let ${grant.provider} read ${part}; fewer cannot, and no node can use another's piece. It costs nothing.`,
      details: [["Proxy node", node.address], ["Provider", grant.provider], ["Part of your record", label ?? scopeId], ["Key version", String(grant.epoch)], ["Nodes needed", `${set.threshold} of ${set.nodes.length}`]],
    });
    handouts.push({
      node,
      body: {
        patient: ctx.signer.address, scope_id: scopeId, provider: grant.provider, epoch: grant.epoch, nodes: members, threshold: set.threshold,
        kfrag, signature, delegating_key: delegatingKey, verifying_key: bytesToHex0x(ctx.keys.verifyingKey.toCompressedBytes()),
        scope_keys_signature: grant.scopeKeysSignature,
      },
    });
  }
  return handouts;
}

/** Some nodes did not take their fragment (the grant itself stands on chain): each named, why. */
export class NodesNotHanded extends KizunaError {
  override name = "NodesNotHanded";
  readonly failed: { node: ProxyNode; why: string }[];

  constructor(set: NodeSet, failed: { node: ProxyNode; why: string }[]) {
    const took = set.nodes.length - failed.length;
    super(`The sharing is on the blockchain, but ${failed.length} of ${set.nodes.length} proxy nodes did not take their key piece: ` +
      `${failed.map((f) => `node ${shortAddress(f.node.address)} (${f.node.endpoint || "no address"}) ${f.why}`).join("; ")}. ` +
      (took >= set.threshold
        ? `Reads still work through the other ${took} (${set.threshold} needed); share again when the node is back to give it its piece.`
        : `Reads need ${set.threshold} nodes and only ${took} ${took === 1 ? "has" : "have"} a piece: share again when the nodes are back.`));
    this.failed = failed;
  }
}

/** Send each node its own fragment (in parallel); how many were taken. NodesNotHanded naming
 * each node that did not take its fragment, and why, after all were tried. */
export async function handOut(set: NodeSet, handouts: readonly Handout[]): Promise<number> {
  const failed: { node: ProxyNode; why: string }[] = [];
  await Promise.all(handouts.map(async ({ node, body }) => {
    try {
      await postNode(node, "/node/kfrags", body);
    } catch (error) {
      failed.push({ node, why: error instanceof NodeFailure ? error.shortMessage : String(error) });
    }
  }));
  if (failed.length) throw new NodesNotHanded(set, failed);
  return handouts.length;
}

/** Tell every node of the scope's records (each checks them against the chain and the store
 * itself); a node not told now is told again at the provider's first read of a record it does
 * not know, so a failure here is only counted (Python logs it). */
export async function announceRecords(set: NodeSet, records: readonly Schemas["RecordOut"][]): Promise<number> {
  let missed = 0;
  for (const record of records) {
    const told = announcementOf(record);
    await Promise.all(set.nodes.map(async (node) => {
      try {
        await postNode(node, "/node/records", told);
      } catch {
        missed += 1;
      }
    }));
  }
  return missed;
}

/** The patient's own records (the API's rows: CID, epoch, batch root and proof). */
export async function recordRows(ctx: PatientContext): Promise<Schemas["RecordOut"][]> {
  return ok(await ctx.api.GET("/patient/records", { params: { query: ctx.acting() } }));
}

/** The epochs of a scope a grantee needs fragments of: those its records are encrypted to,
 * and the current one (kizuna/client/threshold.py grant_through_nodes). */
export function epochsToHand(rows: readonly Schemas["RecordOut"][], scopeId: Uint8Array, current: number): number[] {
  const sid = bytesToHex0x(scopeId);
  return [...new Set([...rows.filter((r) => r.scope_id.toLowerCase() === sid && (r.epoch ?? 0) < current).map((r) => r.epoch ?? 0), current])].sort((a, b) => a - b);
}
