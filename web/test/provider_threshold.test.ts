// The page's threshold reads (web/src/provider/threshold.ts) without a network: the proxy set's
// digest and the patient's NodeKfrag statement pinned to Python's (kizuna/proxy/threshold.py),
// a registered endpoint reduced to an origin by the CSP's rule, and the combination of real
// Umbral 2-of-3 capsule fragments: a liar's fragment skipped and named, m from the signed set,
// fewer than m refused naming every node and why.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as umbral from "@nucypher/umbral-pre";
import { hashTypedData, type Hex } from "viem";
import { bytesToHex0x, utf8Encode } from "../src/core/bytes.ts";
import { forViem } from "../src/core/eip712.ts";
import { commitmentOf, encryptBytes, readHeader } from "../src/core/envelope.ts";
import { openGrant, verifiedFragment, type ReadGrant } from "../src/provider/reads.ts";
import { nodeKfragTypedData, nodeOrigin, nodesDigest, type ProxyNode } from "../src/core/proxyNodes.ts";
import {
  checkedStatement, combineAnswers, ThresholdRefused, type NodeAnswer, type NodeStatement,
} from "../src/provider/threshold.ts";

const NODES: Hex[] = ["0x90F79bf6EB2c4f870365E785982E1f101E93b906", "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"];
// The patient: LocalKeySigner(0x4c08…2318) in Python.
const PATIENT: Hex = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23";
const PROVIDER: Hex = "0x976EA74026E726554dB657fA54763abd0C3a0aa9";
const SCOPE = { patient: PATIENT, provider: PROVIDER, scopeId: `0x${"11".repeat(32)}`, chainId: 31337, accessLog: "0x5FbDB2315678afecb367f032d93F642f64180aa3" };

test("the proxy set's digest and the NodeKfrag statement are Python's, and only the patient's signature is believed", async () => {
  assert.equal(nodesDigest(NODES), "0xbb64048301f2ebf5e0014792863fc347b9697c1fbd29f99f2990150376ba24ce");
  assert.equal(nodesDigest([...NODES].reverse()), nodesDigest(NODES)); // a set: order does not matter
  assert.throws(() => nodesDigest([NODES[0]!, NODES[0]!.toLowerCase()]), /each node once/);
  const statement: Omit<NodeStatement, "signature"> = { node: NODES[1]!, nodes: NODES, threshold: 2, epoch: 3, kfragDigest: `0x${"22".repeat(32)}` };
  // node_kfrag_typed_data(...).digest() and LocalKeySigner(...).sign_typed_data(...) in Python:
  assert.equal(hashTypedData(forViem(nodeKfragTypedData(statement, SCOPE))), "0xcd2f107fe75c9e231502e4795a030daa441045300b8b95d7275c873e0026a6e6");
  const signature = "0xd30bdf9e99f8ac5f7f1afa306671c02dde90fedc858281fa0d7963cba57f93923227e31bea1f0b7a1d4602ffc893470a8628ed4d47ee84c54f2721e19e2c92621c";
  const raw = { epoch: 3, nodes: NODES, threshold: 2, kfrag_digest: statement.kfragDigest, signature };
  assert.equal((await checkedStatement(raw, NODES[1]!, SCOPE)).threshold, 2);
  // Shown by another node (a node passing off another's fragment as its own): not the patient's.
  await assert.rejects(checkedStatement(raw, NODES[2]!, SCOPE), /not by the patient/);
  // m lowered by a node: the signature no longer recovers to the patient.
  await assert.rejects(checkedStatement({ ...raw, threshold: 1 }, NODES[1]!, SCOPE), /not by the patient/);
  // Another provider's read: not this statement.
  await assert.rejects(checkedStatement(raw, NODES[1]!, { ...SCOPE, provider: PATIENT }), /not by the patient/);
  await assert.rejects(checkedStatement(null, NODES[1]!, SCOPE), /sent no statement/);
  await assert.rejects(checkedStatement({ ...raw, nodes: "x" }, NODES[1]!, SCOPE), /malformed statement/);
});

test("a registered endpoint gives the page a checked origin, never another CSP directive", () => {
  assert.equal(nodeOrigin("http://127.0.0.1:8801"), "http://127.0.0.1:8801");
  assert.equal(nodeOrigin("https://Node1.Example:8443/kizuna/"), "https://node1.example:8443");
  for (const bad of ["http://a;b", "http://x' *", "http://*.example", "ftp://node.example", "http://user:pw@node.example", "node.example:8801", "javascript:alert(1)"]) {
    assert.equal(nodeOrigin(bad), null, bad);
  }
});

/** A record sealed to a scope key and 2-of-3 fragments of a grant to `receiver`: each node's answer. */
async function threshold(plaintext: Uint8Array, receiver: umbral.PublicKey) {
  const scope = umbral.SecretKey.random();
  const signing = umbral.SecretKey.random();
  const recordId = crypto.getRandomValues(new Uint8Array(32));
  const envelope = await encryptBytes(plaintext, { ownerKey: scope.publicKey(), recordId, contentType: "application/fhir+json", segmentSize: 64 });
  const kfrags = umbral.generateKFrags(scope, receiver, new umbral.Signer(signing), 2, 3, true, true);
  const header = await readHeader(envelope);
  const nodes: ProxyNode[] = NODES.map((address, i) => ({ address, endpoint: `http://127.0.0.1:880${i}`, origin: `http://127.0.0.1:880${i}` }));
  const answers: NodeAnswer[] = kfrags.map((kfrag, i) => ({
    node: nodes[i]!,
    grant: {
      record_id: bytesToHex0x(recordId), patient: PATIENT, scope_id: SCOPE.scopeId, cid: "bafy", content_type: "application/fhir+json",
      size: envelope.length, capsule: bytesToHex0x(header.capsuleBytes), cfrags: [bytesToHex0x(umbral.reencrypt(header.capsule(), kfrag).toBytes())],
      delegating_key: bytesToHex0x(scope.publicKey().toCompressedBytes()), verifying_key: bytesToHex0x(signing.publicKey().toCompressedBytes()),
      receipt_seq: i + 1, request_id: bytesToHex0x(new Uint8Array(32)), head_block: 1, served_at: 1, leaf: "0x", envelope_base64: null,
    } as ReadGrant,
    statement: { node: nodes[i]!.address, nodes: NODES, threshold: 2, epoch: 0, kfragDigest: `0x${"00".repeat(32)}`, signature: "0x" },
  }));
  return { envelope, answers, capsule: header.capsule(), commitment: await commitmentOf(envelope) };
}

test("two verified fragments from distinct nodes open the record; a liar is skipped and named; one is not enough", async () => {
  const provider = umbral.SecretKey.random();
  const text = utf8Encode(JSON.stringify({ resourceType: "Observation", id: "t" }));
  const { envelope, answers, capsule, commitment } = await threshold(text, provider.publicKey());
  const verify = (g: ReadGrant, cfrag: string) => verifiedFragment(g, cfrag, capsule, provider.publicKey());

  const all = combineAnswers(answers, verify);
  assert.equal(all.grant.cfrags.length, 2);
  assert.deepEqual(all.report.servedBy.map((n) => n.address), NODES);
  assert.deepEqual(await openGrant(all.grant, envelope, provider, commitment), text);

  // Node 0 lies (a fragment of another record's capsule): skipped, named; nodes 1 and 2 serve.
  const other = await threshold(text, provider.publicKey());
  const lying = [{ ...answers[0]!, grant: { ...answers[0]!.grant!, cfrags: other.answers[0]!.grant!.cfrags } }, answers[1]!, answers[2]!];
  const withLiar = combineAnswers(lying, verify);
  assert.deepEqual(withLiar.report.servedBy.map((n) => n.address), NODES.slice(1));
  assert.equal(withLiar.report.skipped.length, 1);
  assert.match(withLiar.report.skipped[0]!.why, /wrong capsule fragment/);
  assert.deepEqual(await openGrant(withLiar.grant, envelope, provider, commitment), text);

  // A node repeating another's fragment counts once.
  const repeated = combineAnswers([answers[0]!, { ...answers[1]!, grant: answers[0]!.grant! }, answers[2]!], verify);
  assert.match(repeated.report.skipped[0]!.why, /repeated another node's/);

  // The liar and a dead node: one honest fragment is not enough; both are named, with why.
  const dead: NodeAnswer = { node: answers[2]!.node, error: "did not answer (down, or not reachable from this page)" };
  assert.throws(() => combineAnswers([lying[0]!, answers[1]!, dead], verify), (error: unknown) => {
    assert.ok(error instanceof ThresholdRefused);
    assert.equal(error.threshold, 2);
    assert.equal(error.served, 1);
    assert.deepEqual(error.skipped.map((s) => s.node.address), [NODES[0], NODES[2]]);
    assert.match(error.message, /needs 2 proxy nodes and only 1 served it/);
    return true;
  });

  // A node outside the set the patient signed does not count.
  const outsider = { ...answers[2]!, node: { ...answers[2]!.node, address: PROVIDER }, statement: undefined };
  assert.throws(() => combineAnswers([answers[0]!, outsider], verify), ThresholdRefused);
});
