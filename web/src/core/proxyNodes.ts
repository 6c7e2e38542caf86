// Threshold proxy nodes, the part both sides of the page share (docs/proxies.md; the Python twins
// are kizuna/proxy/threshold.py and kizuna/client/threshold.py): the deployment's active nodes,
// read from its ProxyRegistry through the wallet (GET /version names the registry; the nodes are
// not taken on the service's word), the patient's NodeKfrag statement binding a fragment to its
// node, and one POST to a node. The patient's grant (patient/threshold.ts) hands each node its
// own fragment with it; the provider's read (provider/threshold.ts) checks it in every answer.

import { getAddress, keccak256, parseAbi, type Hex, type PublicClient } from "viem";
import { errorOf } from "../api/client.ts";
import { bytesToHex0x, concatBytes, hexToBytes } from "./bytes.ts";
import { proxyTypedData, type JsonTypedData } from "./eip712.ts";
import { InputError, KizunaError } from "./errors.ts";

const PROXY_REGISTRY_ABI = parseAbi([
  "function nodes() view returns (address[])",
  "function nodeOf(address node) view returns (string endpoint, bytes verifyingKey, bool active, uint64 registeredAt)",
]);

/** kizuna/proxy/threshold.py NODE_KFRAG_FIELDS. */
const NODE_KFRAG_FIELDS = [
  { name: "patient", type: "address" },
  { name: "scopeId", type: "bytes32" },
  { name: "provider", type: "address" },
  { name: "epoch", type: "uint64" },
  { name: "node", type: "address" },
  { name: "nodesDigest", type: "bytes32" },
  { name: "threshold", type: "uint8" },
  { name: "kfragDigest", type: "bytes32" },
] as const;

/** How long the page waits for a node before it counts it as not answering. */
export const NODE_TIMEOUT_MS = 15_000;

/** A node the registry lists as active, at an endpoint this page may reach. */
export type ProxyNode = { address: Hex; endpoint: string; origin: string };

/** What finding the nodes needs: the deployment's contracts and a chain client (the wallet's). */
export type NodesContext = { deployment: { contracts: Record<string, string> }; chain: { client: PublicClient } };

/** The threshold a grant asks for by default (kizuna/proxy/threshold.py default_threshold):
 * 2-of-n once there are at least 3 nodes, else 1. */
export function defaultThreshold(nodes: number): number {
  return nodes >= 3 ? 2 : 1;
}

/** The origin of a registered endpoint (scheme://host[:port], http or https, no credentials),
 * or null: the rule of the page's connect-src (kizuna/chain/agents/proxies.py node_origin). */
export function nodeOrigin(endpoint: string): string | null {
  let url: URL;
  try {
    url = new URL(endpoint.trim());
  } catch {
    return null;
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.username || url.password) return null;
  if (!/^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$|^\[[0-9a-f:.]+\]$/.test(url.hostname)) return null;
  return url.origin;
}

const listed = new WeakMap<NodesContext, { at: number; nodes: Promise<ProxyNode[]> }>();
const LISTING_TTL_MS = 30_000;

/** The deployment's active proxy nodes, read from its ProxyRegistry through the wallet (at
 * most every 30 s); [] when the deployment names no registry (the service's 1-of-1 path). */
export function proxyNodes(ctx: NodesContext): Promise<ProxyNode[]> {
  const registry = ctx.deployment.contracts["ProxyRegistry"];
  if (!registry) return Promise.resolve([]);
  const known = listed.get(ctx);
  if (known && Date.now() - known.at < LISTING_TTL_MS) return known.nodes;
  const nodes = readRegistry(ctx.chain.client, getAddress(registry));
  listed.set(ctx, { at: Date.now(), nodes });
  nodes.catch(() => listed.delete(ctx)); // a failed read is not kept
  return nodes;
}

async function readRegistry(client: PublicClient, registry: Hex): Promise<ProxyNode[]> {
  let addresses: readonly Hex[];
  try {
    addresses = await client.readContract({ address: registry, abi: PROXY_REGISTRY_ABI, functionName: "nodes" });
  } catch (error) {
    throw new KizunaError("The list of proxy nodes could not be read from the blockchain. Check that your wallet's network is up, then try again.", { cause: error });
  }
  const entries = await Promise.all(addresses.map(async (address) => {
    const [endpoint, , active] = await client.readContract({ address: registry, abi: PROXY_REGISTRY_ABI, functionName: "nodeOf", args: [address] });
    return { address: getAddress(address), endpoint, active };
  }));
  const nodes: ProxyNode[] = [];
  for (const entry of entries) {
    const origin = nodeOrigin(entry.endpoint);
    // A node at an endpoint that is not a plain http(s) URL cannot be reached from here (the
    // service's CSP leaves it out too): it counts as not answering.
    if (entry.active) nodes.push({ address: entry.address, endpoint: origin ? entry.endpoint.trim().replace(/\/+$/, "") : "", origin: origin ?? "" });
  }
  return nodes;
}

/** The digest of a proxy set (kizuna/proxy/threshold.py nodes_digest): keccak256 of the
 * addresses' 20 bytes, sorted by their checksummed text; a node named twice is refused. */
export function nodesDigest(nodes: readonly string[]): Hex {
  const sorted = nodes.map((n) => getAddress(n)).sort();
  if (new Set(sorted).size !== sorted.length) throw new InputError("nodes", "a proxy set names each node once");
  return keccak256(concatBytes(...sorted.map((a) => hexToBytes(a, "nodes"))));
}

/** What a NodeKfrag statement fixes of one fragment: its node, the whole set, m, the key epoch
 * and the kfrag's keccak digest (a provider sees the digest only, never the kfrag). */
export type NodeKfragFields = { node: Hex; nodes: Hex[]; threshold: number; epoch: number; kfragDigest: Hex };

/** Where a statement holds: the grant's patient, provider, scope and the proxy domain. */
export type StatementScope = { patient: string; provider: string; scopeId: string; chainId: number; accessLog: string };

/** The NodeKfrag document the patient signs for `node` (kizuna/proxy/threshold.py
 * node_kfrag_typed_data, with the kfrag's digest). */
export function nodeKfragTypedData(statement: NodeKfragFields, scope: StatementScope): JsonTypedData {
  if (!statement.nodes.some((n) => n === statement.node)) throw new InputError("node", `${statement.node} is not in the proxy set`);
  if (!Number.isInteger(statement.threshold) || statement.threshold < 1 || statement.threshold > statement.nodes.length) {
    throw new InputError("threshold", `must be in [1, ${statement.nodes.length}], got ${statement.threshold}`);
  }
  return proxyTypedData({
    primaryType: "NodeKfrag", fields: NODE_KFRAG_FIELDS, chainId: scope.chainId, accessLog: getAddress(scope.accessLog),
    message: {
      patient: getAddress(scope.patient), scopeId: bytesToHex0x(hexToBytes(scope.scopeId, "scopeId")), provider: getAddress(scope.provider),
      epoch: statement.epoch, node: statement.node, nodesDigest: nodesDigest(statement.nodes), threshold: statement.threshold,
      kfragDigest: bytesToHex0x(hexToBytes(statement.kfragDigest, "kfragDigest")),
    },
  }) as JsonTypedData;
}

/** Why one node gave no usable answer (the text after the node's name). */
export class NodeFailure extends KizunaError {
  override name = "NodeFailure";
  /** The node's HTTP status when it refused; undefined when it did not answer. */
  status?: number;
}

/** POST a JSON body to a node; its answer, or a NodeFailure (down, timed out, refused). */
export async function postNode(node: ProxyNode, path: string, body: unknown): Promise<unknown> {
  if (!node.origin) throw new NodeFailure(`is registered at ${JSON.stringify(node.endpoint)}, not an http(s) address this page may reach`);
  let response: Response;
  try {
    response = await fetch(`${node.endpoint}${path}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      signal: AbortSignal.timeout(NODE_TIMEOUT_MS), credentials: "omit", referrerPolicy: "no-referrer",
    });
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === "TimeoutError";
    throw new NodeFailure(timedOut ? `did not answer within ${NODE_TIMEOUT_MS / 1000} s` : "did not answer (down, or not reachable from this page)", { cause: error });
  }
  if (!response.ok) {
    const refused = await errorOf(response);
    const failure = new NodeFailure(`refused (${response.status}): ${refused.message.replace(/^the service answered/, "answered")}`, { cause: refused });
    failure.status = response.status;
    throw failure;
  }
  try {
    return await response.json();
  } catch (error) {
    throw new NodeFailure("answered something that is not JSON", { cause: error });
  }
}

/** What a node is told of a record it may serve (it checks the record against the chain and
 * the store itself): kizuna/client/threshold.py _record_body. */
export type RecordAnnouncement = { record_id: string; cid: string; epoch: number; batch_root?: string; scope_id?: string; commitment?: string; leaf_index?: number | null; proof?: string[] };

/** A record listing's row (the API's RecordOut, patient's or provider's) as a node is told of
 * it: its CID and epoch, and for a record of a batch its root and proof when the row has them. */
export function announcementOf(record: { record_id: string; cid: string; epoch?: number | null; scope_id: string; commitment: string; batch_root?: string | null; leaf_index?: number | null; proof?: string[] | null }): RecordAnnouncement {
  const told: RecordAnnouncement = { record_id: record.record_id, cid: record.cid, epoch: record.epoch ?? 0 };
  if (record.batch_root && record.proof) {
    Object.assign(told, { batch_root: record.batch_root, scope_id: record.scope_id, commitment: record.commitment, leaf_index: record.leaf_index ?? null, proof: record.proof });
  }
  return told;
}
