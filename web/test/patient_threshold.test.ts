// The patient's grant through threshold proxy nodes (web/src/patient/threshold.ts) without a
// network: the m-of-n fragments made for the nodes, each node's request in the shape the node
// takes (kizuna/proxynode/server.py NodeKfragIn), each NodeKfrag statement signed by the
// patient's wallet account and believed by the provider's check (provider/threshold.ts) for its
// own node only, any m of the fragments opening the scope's data and fewer not, one wallet
// prompt per node naming its purpose, and a node that does not take its fragment named.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as umbral from "@nucypher/umbral-pre";
import { keccak256, type Hex } from "viem";
import { createApi } from "../src/api/client.ts";
import { hexToBytes } from "../src/core/bytes.ts";
import { defaultThreshold, type ProxyNode } from "../src/core/proxyNodes.ts";
import { deriveWalletKeys } from "../src/core/walletKeys.ts";
import { ChainReader } from "../src/patient/chain.ts";
import { PatientContext } from "../src/patient/context.ts";
import { epochsToHand, handOut, NodesNotHanded, signedHandouts } from "../src/patient/threshold.ts";
import { checkedStatement } from "../src/provider/threshold.ts";
import type { Deployment } from "../src/wallet/connection.ts";
import { KeySigner } from "./patient_signer.ts";
import { walletSpec } from "./vectors.ts";

const vector = walletSpec.vectors[0]!;
const ACCESS_LOG: Hex = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const NODES: Hex[] = ["0x90F79bf6EB2c4f870365E785982E1f101E93b906", "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"];
const PROVIDER: Hex = "0x976EA74026E726554dB657fA54763abd0C3a0aa9";
/** kizuna/proxynode/server.py NodeKfragIn's fields (extra="forbid": one more is refused). */
const NODE_KFRAG_IN = ["delegating_key", "epoch", "kfrag", "nodes", "patient", "provider", "scope_id", "scope_keys_signature", "signature", "threshold", "verifying_key"];

async function context(): Promise<{ ctx: PatientContext; signer: KeySigner }> {
  const domain = { chainId: vector.typed_data.domain.chainId, verifyingContract: vector.typed_data.domain.verifyingContract };
  const keys = await deriveWalletKeys(vector.signature, vector.account, domain);
  const signer = new KeySigner(vector.private_key, "http://127.0.0.1:1", 31337);
  const deployment: Deployment = { version: "t", chainId: 31337, contracts: { AccessLog: ACCESS_LOG }, walletRpcUrl: "http://127.0.0.1:1" };
  const apiOptions = { token: () => null, baseUrl: "http://127.0.0.1:1" };
  const ctx = new PatientContext({ api: createApi(apiOptions), apiOptions, signer, keys, deployment, chain: ChainReader.forDeployment(deployment), gasless: true });
  return { ctx, signer };
}

const node = (address: Hex, endpoint = `http://127.0.0.1:${8801 + NODES.indexOf(address)}`): ProxyNode => ({ address, endpoint, origin: endpoint });

test("the default threshold is Python's: 2 once there are 3 nodes, else 1", () => {
  assert.deepEqual([1, 2, 3, 5].map(defaultThreshold), [1, 1, 2, 2]);
});

test("each node gets its own fragment and the patient's statement of it, believed for that node only; any 2 of 3 open the data", async () => {
  const { ctx, signer } = await context();
  const set = { nodes: NODES.map((a) => node(a)), threshold: 2 };
  const scopeId = new Uint8Array(32).fill(0x11);
  const receiver = umbral.SecretKey.random();
  const handouts = await signedHandouts(ctx, set, {
    provider: PROVIDER, receivingKey: receiver.publicKey().toCompressedBytes(), scopeId, epoch: 3,
    scopeKeysSignature: `0x${"ab".repeat(65)}`, label: "Observation:vital-signs",
  });
  assert.deepEqual(handouts.map((h) => h.node.address), NODES);
  assert.equal(new Set(handouts.map((h) => h.body.kfrag)).size, 3, "one distinct fragment per node");
  const scope = { patient: vector.account, provider: PROVIDER, scopeId: `0x${"11".repeat(32)}`, chainId: 31337, accessLog: ACCESS_LOG };
  for (const [i, { body }] of handouts.entries()) {
    assert.deepEqual(Object.keys(body).sort(), NODE_KFRAG_IN);
    assert.deepEqual([body.patient, body.provider, body.epoch, body.threshold, body.nodes], [vector.account, PROVIDER, 3, 2, NODES]);
    const shown = { epoch: body.epoch, nodes: body.nodes, threshold: body.threshold, kfrag_digest: keccak256(body.kfrag), signature: body.signature };
    assert.equal((await checkedStatement(shown, NODES[i]!, scope)).threshold, 2);
    // The same statement shown by another node is not the patient's for that node.
    await assert.rejects(checkedStatement(shown, NODES[(i + 1) % 3]!, scope), /not by the patient/);
  }
  // One wallet prompt per node, each naming the node, the provider and m of n.
  const prompts = signer.asked.filter((a) => a.primaryType === "NodeKfrag");
  assert.equal(prompts.length, 3);
  for (const [i, p] of prompts.entries()) {
    assert.match(p.purpose.title, new RegExp(`Key piece ${i + 1} of 3 for Observation \\(vital-signs\\)`));
    assert.match(p.purpose.why, /Any 2 of the 3 proxy nodes/);
    assert.deepEqual(p.purpose.details?.find(([k]) => k === "Proxy node"), ["Proxy node", NODES[i]]);
  }
  // Each fragment verifies against the patient's keys; any two re-encrypt to what opens the data, one does not.
  const delegating = umbral.PublicKey.fromCompressedBytes(hexToBytes(handouts[0]!.body.delegating_key, "d"));
  const verifying = umbral.PublicKey.fromCompressedBytes(hexToBytes(handouts[0]!.body.verifying_key, "v"));
  const kfrags = handouts.map((h) => umbral.KeyFrag.fromBytes(hexToBytes(h.body.kfrag, "kfrag")).verify(verifying, delegating, receiver.publicKey()));
  const [capsule, ciphertext] = umbral.encrypt(delegating, new TextEncoder().encode("hemoglobin 13.1"));
  for (const pair of [[0, 1], [1, 2], [0, 2]] as const) {
    const cfrags = pair.map((i) => umbral.reencrypt(capsule, kfrags[i]!));
    const opened = umbral.decryptReencrypted(receiver, delegating, capsule, cfrags, ciphertext);
    assert.equal(new TextDecoder().decode(opened), "hemoglobin 13.1");
  }
  assert.throws(() => umbral.decryptReencrypted(receiver, delegating, capsule, [umbral.reencrypt(capsule, kfrags[0]!)], ciphertext));
});

test("a node that does not take its fragment is named with why, and whether reads still work", async () => {
  const { ctx } = await context();
  const unreachable = node(NODES[2]!, "");
  const set = { nodes: [node(NODES[0]!, ""), node(NODES[1]!, ""), unreachable], threshold: 2 };
  const handouts = await signedHandouts(ctx, { nodes: [unreachable], threshold: 1 }, {
    provider: PROVIDER, receivingKey: umbral.SecretKey.random().publicKey().toCompressedBytes(), scopeId: new Uint8Array(32), epoch: 0,
    scopeKeysSignature: "0x00", label: null,
  });
  await assert.rejects(handOut(set, handouts), (error: unknown) => {
    assert.ok(error instanceof NodesNotHanded);
    assert.match(error.message, /1 of 3 proxy nodes did not take their key piece: node 0x9965…A4dc \(no address\) is registered at "", not an http\(s\) address/);
    assert.match(error.message, /Reads still work through the other 2 \(2 needed\)/);
    return true;
  });
});

test("a grantee gets fragments of each epoch the scope has records of, and the current one", () => {
  const sid = new Uint8Array(32).fill(7);
  const row = (epoch: number, scope = sid) => ({ scope_id: `0x${Buffer.from(scope).toString("hex")}`, epoch }) as never;
  assert.deepEqual(epochsToHand([row(0), row(2), row(0), row(1, new Uint8Array(32))], sid, 3), [0, 2, 3]);
  assert.deepEqual(epochsToHand([], sid, 0), [0]);
});
