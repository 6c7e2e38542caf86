// Threshold proxy nodes in the page (docs/proxies.md; the Python twin is kizuna/client/threshold.py).
// With a ProxyRegistry (GET /version names it; the nodes are read from the chain through the
// wallet, not on the service's word), a provider's ONE signed read request goes to every node at
// once. Each node checks the grant at the chain head itself, keeps its own receipt and answers
// its one capsule fragment with the patient's signed NodeKfrag statement of it: the proxy set and
// m come from that signature (a node can neither lower m nor add itself), and only nodes of
// that set count. reads.ts verifies each fragment (Umbral's proof) and decrypts; this module
// asks, checks the statements, and picks m verified fragments from distinct nodes, naming every
// node it skipped and why. The nodes are reached directly (the page's CSP lists the registered
// nodes' origins, and each node answers CORS for this page): routing through the service would
// make the one service able to stop every threshold read again, which is what the nodes are for.

import { getAddress, recoverTypedDataAddress, type Hex } from "viem";
import type * as umbral from "@nucypher/umbral-pre";
import type { Schemas } from "../api/client.ts";
import { equalBytes, hexToBytes } from "../core/bytes.ts";
import { forViem, type JsonTypedData } from "../core/eip712.ts";
import { KizunaError } from "../core/errors.ts";
import {
  NodeFailure, nodeKfragTypedData, postNode, type NodeKfragFields, type ProxyNode, type RecordAnnouncement, type StatementScope,
} from "../core/proxyNodes.ts";
import { countOf, shortAddress } from "../ui/format.ts";

type ReadGrant = Schemas["ReadOut"];

/** A node's fragment as the provider sees it: the patient's signed statement, with the
 * kfrag's digest in place of the kfrag (kizuna/proxy/threshold.py NodeStatement). */
export type NodeStatement = NodeKfragFields & { signature: Hex };

/** A node's statement, believed only when the patient's signature recovers over it (naming
 * this node, this provider and the record's scope); a NodeFailure saying why otherwise. */
export async function checkedStatement(raw: unknown, node: Hex, scope: StatementScope): Promise<NodeStatement> {
  const given = raw as { epoch?: unknown; nodes?: unknown; threshold?: unknown; kfrag_digest?: unknown; signature?: unknown } | null;
  if (!given || typeof given !== "object") throw new NodeFailure("sent no statement of its fragment");
  let statement: NodeStatement;
  let typed: JsonTypedData;
  try {
    statement = {
      node, nodes: (given.nodes as string[]).map((n) => getAddress(n)), threshold: Number(given.threshold), epoch: Number(given.epoch),
      kfragDigest: String(given.kfrag_digest) as Hex, signature: String(given.signature) as Hex,
    };
    typed = nodeKfragTypedData(statement, scope);
  } catch (error) {
    throw new NodeFailure(`sent a malformed statement (${error instanceof Error ? error.message : String(error)})`);
  }
  let signer: Hex;
  try {
    signer = await recoverTypedDataAddress({ ...forViem(typed), signature: statement.signature } as Parameters<typeof recoverTypedDataAddress>[0]);
  } catch {
    throw new NodeFailure("sent a statement whose signature does not recover");
  }
  if (signer !== getAddress(scope.patient)) throw new NodeFailure(`sent a statement signed by ${shortAddress(signer)}, not by the patient`);
  return statement;
}

/** One node's answer to a read: its grant (one cfrag) and the patient's statement, or why not. */
export type NodeAnswer = { node: ProxyNode; grant?: ReadGrant; statement?: NodeStatement; error?: string; status?: number };

/** Send one signed read to every node at once; each node's answer or why it gave none (never
 * a failure of the whole read: the threshold decides). A node that does not know the record
 * (404) is told of it, when `announce` says how, and asked again. */
export async function askNodes(nodes: readonly ProxyNode[], body: { request: unknown; signature: string }, scope: StatementScope, announce?: RecordAnnouncement): Promise<NodeAnswer[]> {
  return Promise.all(nodes.map(async (node): Promise<NodeAnswer> => {
    try {
      let answer: unknown;
      try {
        answer = await postNode(node, "/node/reads", body);
      } catch (error) {
        if (!(announce && (error as { status?: number }).status === 404)) throw error;
        await postNode(node, "/node/records", announce);
        answer = await postNode(node, "/node/reads", body);
      }
      const grant = answer as ReadGrant & { node_statement?: unknown };
      if (!Array.isArray(grant?.cfrags) || grant.cfrags.length !== 1) {
        throw new NodeFailure(`answered ${Array.isArray(grant?.cfrags) ? grant.cfrags.length : "no"} capsule fragments, not its one`);
      }
      if (String(grant.scope_id).toLowerCase() !== scope.scopeId.toLowerCase() || getAddress(grant.patient) !== getAddress(scope.patient)) {
        throw new NodeFailure("answered for another patient or scope than the record's");
      }
      return { node, grant, statement: await checkedStatement(grant.node_statement, node.address, scope) };
    } catch (error) {
      const why = error instanceof NodeFailure ? error.shortMessage : `answered something unexpected (${error instanceof Error ? error.message : String(error)})`;
      return { node, error: why, status: (error as { status?: number }).status };
    }
  }));
}

/** Who served a threshold read and who was skipped, why. */
export type NodeReport = { threshold: number; of: number; servedBy: ProxyNode[]; skipped: { node: ProxyNode; why: string }[] };

/** "Node 0x12…cdef (http://…)": how a node is named to people. */
export function nodeName(node: ProxyNode): string {
  return `Node ${shortAddress(node.address)}${node.endpoint ? ` (${node.endpoint})` : ""}`;
}

/** Fewer than m proxy nodes served the read: each node that did not, named with why. */
export class ThresholdRefused extends KizunaError {
  override name = "ThresholdRefused";
  readonly threshold: number;
  readonly served: number;
  readonly skipped: { node: ProxyNode; why: string }[];

  constructor(threshold: number, served: number, skipped: { node: ProxyNode; why: string }[]) {
    super(`This read needs ${threshold} proxy nodes and ${served === 0 ? "none" : `only ${served}`} served it: ${skipped.map((s) => `${nodeName(s.node)} ${s.why}`).join("; ")}.`);
    this.threshold = threshold;
    this.served = served;
    this.skipped = skipped;
  }
}

/** True when some node showed the patient's statement of a fragment for this read: the grant
 * is a threshold grant. None did: the nodes hold nothing of it (a grant to the service alone). */
export function isThresholdGrant(answers: readonly NodeAnswer[]): boolean {
  return answers.some((a) => a.statement);
}

/** Verify one node's capsule fragment against the patient's keys its grant names (reads.ts
 * does it: the one home of the cfrag check); throws when it does not verify. */
export type VerifyFragment = (grant: ReadGrant, cfragHex: string) => umbral.VerifiedCapsuleFrag;

/** m verified capsule fragments from distinct nodes of the set the patient signed (the grant
 * most nodes name first: a node showing an older grant's genuine statement counts only with
 * that grant), under the patient keys most nodes name (a lying node's other keys never make
 * its fragment count): kizuna/client/threshold.py threshold_grant and _combine. The grant to
 * open (its cfrags: the m chosen) and the report; ThresholdRefused naming every node skipped. */
export function combineAnswers(answers: readonly NodeAnswer[], verify: VerifyFragment): { grant: ReadGrant; report: NodeReport } {
  const answered = answers.filter((a): a is NodeAnswer & { grant: ReadGrant; statement: NodeStatement } => !!a.grant && !!a.statement);
  const groups = new Map<string, { set: Hex[]; m: number; named: Hex[] }>();
  for (const a of answered) {
    const set = [...a.statement.nodes].sort();
    const key = `${set.join(",")}/${a.statement.threshold}`;
    const group = groups.get(key) ?? { set, m: a.statement.threshold, named: [] };
    group.named.push(a.node.address);
    groups.set(key, group);
  }
  let failure: ThresholdRefused | null = null;
  for (const group of [...groups.values()].sort((a, b) => b.named.length - a.named.length)) {
    const elsewhere = new Set([...groups.values()].filter((g) => g !== group).flatMap((g) => g.named));
    const members = new Set(group.set.filter((n) => !elsewhere.has(n)));
    const pairs = new Map<string, NodeAnswer[]>();
    for (const a of answered) {
      const key = `${a.grant.delegating_key.toLowerCase()}/${a.grant.verifying_key.toLowerCase()}`;
      pairs.set(key, [...(pairs.get(key) ?? []), a]);
    }
    for (const named of [...pairs.values()].sort((a, b) => b.length - a.length)) {
      const keysOf = named[0]!.grant!;
      const kept: { node: ProxyNode; grant: ReadGrant; cfrag: string }[] = [];
      const skipped: { node: ProxyNode; why: string }[] = [];
      for (const a of answers) {
        if (!members.has(a.node.address) && !a.error) { skipped.push({ node: a.node, why: "is not in the proxy set the patient signed for this grant" }); continue; }
        if (a.error || !a.grant) { skipped.push({ node: a.node, why: a.error ?? "sent no capsule fragment" }); continue; }
        const cfrag = a.grant.cfrags[0]!;
        try {
          verify({ ...a.grant, delegating_key: keysOf.delegating_key, verifying_key: keysOf.verifying_key }, cfrag);
        } catch {
          skipped.push({ node: a.node, why: "sent a wrong capsule fragment (it does not verify: skipped)" });
          continue;
        }
        if (kept.some((k) => equalBytes(hexToBytes(k.cfrag, "cfrag"), hexToBytes(cfrag, "cfrag")))) {
          skipped.push({ node: a.node, why: "repeated another node's capsule fragment" });
          continue;
        }
        kept.push({ node: a.node, grant: a.grant, cfrag });
      }
      if (kept.length >= group.m) {
        const chosen = kept.slice(0, group.m);
        // The first serving node's answer (its receipt), under the keys the fragments verified with.
        return {
          grant: { ...chosen[0]!.grant, delegating_key: keysOf.delegating_key, verifying_key: keysOf.verifying_key, cfrags: chosen.map((k) => k.cfrag) },
          report: { threshold: group.m, of: group.set.length, servedBy: kept.map((k) => k.node), skipped },
        };
      }
      failure ??= new ThresholdRefused(group.m, kept.length, skipped);
    }
  }
  // No node showed a statement: none serves this grant (the caller reads from the service).
  throw failure ?? new ThresholdRefused(1, 0, answers.map((a) => ({ node: a.node, why: a.error ?? "sent no statement of its fragment" })));
}

/** "Served by 2 of 3 proxy nodes (2 needed)": the report in one line for the page. */
export function reportText(report: NodeReport): string {
  const served = `Served by ${report.servedBy.length} of ${countOf(report.of, "proxy node")} (${report.threshold} needed)`;
  return report.skipped.length ? `${served}; ${report.skipped.map((s) => `${nodeName(s.node)} ${s.why}`).join("; ")}` : served;
}
