// A provider's read, in the page (kizuna/client/provider.py `read`, docs/service.md):
//   ReadRequest (random id, now) signed by the provider's wallet (EIP-712, the proxy domain)
//   → POST /provider/reads: the service checks the grant at the head, re-encrypts, stores the
//     receipt BEFORE answering → capsule fragments (+ the envelope when small, else by CID)
//   → here: the fragments verified against the patient's keys and this provider's key, the data
//     key opened with the provider's wallet-derived key, every segment authenticated and the
//     whole envelope checked against the commitment registered ON CHAIN (read through the
//     wallet, not the service's word). Nothing unauthenticated is returned.
// With threshold proxy nodes (docs/proxies.md) the same ONE signed request goes to every node
// at once (threshold.ts: who the nodes are, their answers, the patient's statements, m of them);
// each fragment is still verified here (verifiedFragment) and the data key opened here. A grant
// no node holds anything of (made to the service alone) is read from the service as before.
// One read = one signed request = one receipt (per node that serves it). There is no batch signature: the service
// verifies one ReadRequest per signature and keeps one receipt per request, so "read all" asks
// the wallet once per record (docs/web.md "Providers").

import * as umbral from "@nucypher/umbral-pre";
import type { Hex } from "viem";
import { ApiError, ok, rawFetch, type Schemas } from "../api/client.ts";
import { BatchLeaf } from "../core/batch.ts";
import { base64ToBytes, bytesToHex0x, equalBytes, hexToBytes, type Bytes } from "../core/bytes.ts";
import { decryptBytes, readHeader, MAX_PREAMBLE_SIZE } from "../core/envelope.ts";
import { InputError, IntegrityError, KizunaError } from "../core/errors.ts";
import { checkedAddress } from "../patient/chain.ts";
import type { ProviderContext } from "./context.ts";
import { announcementOf, proxyNodes } from "../core/proxyNodes.ts";
import { askNodes, combineAnswers, isThresholdGrant, ThresholdRefused, type NodeAnswer, type NodeReport } from "./threshold.ts";

export const PROXY_DOMAIN_NAME = "Kizuna Proxy";
export const PROXY_DOMAIN_VERSION = "1";

const READ_REQUEST_FIELDS: { name: string; type: string }[] = [
  { name: "provider", type: "address" },
  { name: "patient", type: "address" },
  { name: "recordId", type: "bytes32" },
  { name: "requestId", type: "bytes32" },
  { name: "issuedAt", type: "uint64" },
];

/** The signed message (kizuna/receipts/request.py ReadRequest; issuedAt in Unix seconds). */
export type ReadRequest = { provider: Hex; patient: Hex; recordId: Hex; requestId: Hex; issuedAt: number };

export type ReadGrant = Schemas["ReadOut"];

/** A fresh request: 32 random bytes of request id, issued now (the service allows 120 s of skew). */
export function newReadRequest(provider: string, patient: string, recordId: string, now = Math.floor(Date.now() / 1000)): ReadRequest {
  return {
    provider: checkedAddress("provider", provider),
    patient: checkedAddress("patient", patient),
    recordId: bytesToHex0x(hexToBytes(recordId, "record_id")).toLowerCase() as Hex,
    requestId: bytesToHex0x(crypto.getRandomValues(new Uint8Array(32))),
    issuedAt: now,
  };
}

/** The eth_signTypedData_v4 document (Python's ReadRequest.typed_data(proxy_domain(...)).to_json()). */
export function readRequestTypedData(request: ReadRequest, domain: { chainId: number; accessLog: string }) {
  if (hexToBytes(request.recordId, "recordId").length !== 32) throw new InputError("recordId", "must be 32 bytes");
  return {
    types: {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
        { name: "chainId", type: "uint256" },
        { name: "verifyingContract", type: "address" },
      ],
      ReadRequest: READ_REQUEST_FIELDS,
    },
    primaryType: "ReadRequest" as const,
    domain: { name: PROXY_DOMAIN_NAME, version: PROXY_DOMAIN_VERSION, chainId: domain.chainId, verifyingContract: checkedAddress("verifyingContract", domain.accessLog) },
    message: request,
  };
}

/** The patient's two Umbral public keys a read answer names. */
function patientKeys(grant: ReadGrant): { delegating: umbral.PublicKey; verifying: umbral.PublicKey } {
  try {
    return {
      delegating: umbral.PublicKey.fromCompressedBytes(hexToBytes(grant.delegating_key, "delegating_key")),
      verifying: umbral.PublicKey.fromCompressedBytes(hexToBytes(grant.verifying_key, "verifying_key")),
    };
  } catch (error) {
    throw new IntegrityError("the read's patient keys are not Umbral public keys", { cause: error });
  }
}

/** One capsule fragment checked with Umbral's proof of correct re-encryption: made from the
 * envelope's capsule, by a fragment of the patient's grant (the answer's keys), for `receiving`
 * (this provider's key). IntegrityError when it does not verify. */
export function verifiedFragment(grant: ReadGrant, cfragHex: string, capsule: umbral.Capsule, receiving: umbral.PublicKey): umbral.VerifiedCapsuleFrag {
  const { delegating, verifying } = patientKeys(grant);
  try {
    return umbral.CapsuleFrag.fromBytes(hexToBytes(cfragHex, "cfrags")).verify(capsule, verifying, delegating, receiving);
  } catch (error) {
    throw new IntegrityError("a capsule fragment does not verify (not made for your key by the patient's grant, or altered)", { cause: error });
  }
}

/** Open a read's envelope with its capsule fragments: every check on the provider's side. */
export async function openGrant(
  grant: ReadGrant, envelope: Uint8Array, receivingKey: umbral.SecretKey, expectedCommitment: Uint8Array,
): Promise<Bytes> {
  const header = await readHeader(envelope.subarray(0, MAX_PREAMBLE_SIZE));
  if (!equalBytes(header.recordId, hexToBytes(grant.record_id, "record_id"))) {
    throw new IntegrityError("the envelope is of another record than the one read");
  }
  const capsule = header.capsule();
  const { delegating } = patientKeys(grant);
  const receiving = receivingKey.publicKey();
  const cfrags = grant.cfrags.map((hex, i) => {
    try {
      return verifiedFragment(grant, hex, capsule, receiving);
    } catch (error) {
      throw new IntegrityError(`capsule fragment ${i + 1} does not verify (not made for your key by the patient's grant, or altered)`, { cause: error });
    }
  });
  if (cfrags.length === 0) throw new IntegrityError("the read came with no capsule fragments");
  const key = header.unwrapForGrantee(receivingKey, delegating, cfrags);
  return decryptBytes(envelope, { key, expectedCommitment });
}

/** One record's listing as the provider sees it (GET /provider/records). */
export type ReadableRecord = Schemas["RecordOut"];

/** A read that worked: the plaintext and the receipt stored for it (by the service, or by the
 * first proxy node that served it; `nodes`: with threshold proxies, who served and who not). */
export type ReadResult = {
  record: ReadableRecord; content: Bytes; contentType: string;
  receipt: { seq: number; requestId: string; leaf: string; servedAt: number; headBlock: number };
  nodes?: NodeReport;
};

/** A served read: the answer to open, the envelope when it was already fetched (a threshold
 * read needs its capsule to verify the nodes' fragments), and the nodes' report. */
type Served = { grant: ReadGrant; envelope?: Bytes; nodes?: NodeReport };

/** Sign a read request for `record` and have it served — by m proxy nodes for a threshold
 * grant, else by the service (no decryption yet). */
export async function requestRead(ctx: ProviderContext, record: ReadableRecord, what = "a record"): Promise<ReadGrant> {
  return (await serveRead(ctx, record, what)).grant;
}

async function serveRead(ctx: ProviderContext, record: ReadableRecord, what: string): Promise<Served> {
  const nodes = await proxyNodes(ctx);
  const request = newReadRequest(ctx.address, record.patient, record.record_id);
  const accessLog = ctx.contract("AccessLog");
  const typed = readRequestTypedData(request, { chainId: ctx.deployment.chainId, accessLog });
  const signature = await ctx.signer.signTypedData(typed, {
    title: `Read ${what}`,
    why: nodes.length
      ? `Your signature asks the proxy nodes (${nodes.length} listed; the patient's grant says how many must serve) to re-encrypt this record for your key. Each node that serves it keeps it as its receipt of this read, which the patient and auditors can see.`
      : "Your signature asks the service to re-encrypt this record for your key. It is kept as the receipt of this read, which the patient and auditors can see.",
    details: [["Patient", request.patient], ["Record", `${request.recordId.slice(0, 10)}…`], ["Request id", `${request.requestId.slice(0, 10)}…`]],
  });
  const body = { request, signature };
  let answers: NodeAnswer[] = [];
  if (nodes.length) {
    answers = await askNodes(nodes, body, { patient: request.patient, provider: ctx.address, scopeId: record.scope_id, chainId: ctx.deployment.chainId, accessLog }, announcementOf(record));
    if (isThresholdGrant(answers)) {
      const first = answers.find((a) => a.grant)!.grant!;
      const envelope = await envelopeOf(ctx, first);
      const capsule = (await readHeader(envelope.subarray(0, MAX_PREAMBLE_SIZE))).capsule();
      const receiving = ctx.keys.decryptingKey.publicKey();
      const { grant, report } = combineAnswers(answers, (g, cfrag) => verifiedFragment(g, cfrag, capsule, receiving));
      return { grant, envelope, nodes: report };
    }
  }
  // No node holds anything of this grant: a grant to the service alone (1-of-1), read there.
  try {
    return { grant: ok(await ctx.api.POST("/provider/reads", { body })) };
  } catch (error) {
    const silent = answers.filter((a) => a.error && !a.status);
    if (error instanceof ApiError && error.kind === "NoKeyFragments" && silent.length) {
      // The service holds no fragment either: the grant's fragments are with nodes that did
      // not answer. Name them rather than the service's bare refusal.
      throw new ThresholdRefused(1, 0, answers.map((a) => ({ node: a.node, why: a.error ?? "holds no fragment of this grant" })));
    }
    throw error;
  }
}

/** The envelope of a served read: in the answer when small, else GET /content/{cid}. */
export async function envelopeOf(ctx: ProviderContext, grant: ReadGrant): Promise<Bytes> {
  if (grant.envelope_base64) return base64ToBytes(grant.envelope_base64, "envelope_base64");
  const response = await rawFetch(ctx.apiOptions, `/content/${encodeURIComponent(grant.cid)}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** The commitment the chain holds for a granted record: its RecordRegistered event or — for a
 * record the answer says is in a batch — the answer's commitment, once its proof leads from
 * the leaf to a root the chain says is the patient's batch (never the service's word alone). */
export function grantedCommitment(ctx: ProviderContext, grant: ReadGrant): Promise<Bytes> {
  const recordId = hexToBytes(grant.record_id, "record_id");
  if (!grant.batch_root) return ctx.chain.registeredCommitment(grant.patient, recordId);
  if (!grant.commitment) {
    return Promise.reject(new IntegrityError("the read answer names a batch but no commitment for the record: nothing to check against the chain"));
  }
  const leaf = new BatchLeaf(recordId, hexToBytes(grant.scope_id, "scope_id"), hexToBytes(grant.commitment, "commitment"));
  return ctx.chain.batchCommitment(grant.patient, leaf, hexToBytes(grant.batch_root, "batch_root"),
    (grant.proof ?? []).map((word) => hexToBytes(word, "proof")));
}

/** Read one record: signed request, capsule fragments, decryption here against the on-chain
 * commitment (`commitment`: one the caller read from the chain already, e.g. the batch's;
 * else grantedCommitment). */
export async function readRecord(ctx: ProviderContext, record: ReadableRecord, commitment?: Uint8Array): Promise<ReadResult> {
  const served = await serveRead(ctx, record, "a record");
  const grant = served.grant;
  const [envelope, expected] = await Promise.all([
    served.envelope ?? envelopeOf(ctx, grant),
    commitment ?? grantedCommitment(ctx, grant),
  ]);
  const content = await openGrant(grant, envelope, ctx.keys.decryptingKey, expected);
  const result: ReadResult = {
    record, content, contentType: grant.content_type,
    receipt: { seq: grant.receipt_seq, requestId: grant.request_id, leaf: grant.leaf, servedAt: grant.served_at, headBlock: grant.head_block },
  };
  if (served.nodes) result.nodes = served.nodes;
  return result;
}

/** A record the chain has no registration of (the batch's one query found none). */
function missingCommitment(record: ReadableRecord): never {
  throw new KizunaError(`The chain has no registration of record ${record.record_id}: it cannot be checked, so it is not shown.`);
}

/** Read many records of one patient, one after the other (each its own signed request, so
 * its own wallet prompt and receipt); ONE chain query for every commitment of a record
 * registered alone (a record of one of the patient's batches is checked by its read's proof).
 * `onEach` hears each outcome (a result or the error that stopped that one read); the others
 * go on. */
export async function readMany(
  ctx: ProviderContext, patient: string, records: readonly ReadableRecord[],
  onEach: (index: number, outcome: ReadResult | Error) => void | Promise<void>, stop: () => boolean = () => false,
): Promise<void> {
  const [registered, batches] = await Promise.all([ctx.chain.registeredCommitments(patient), ctx.chain.registeredBatches(patient)]);
  for (let i = 0; i < records.length && !stop(); i++) {
    const record = records[i]!;
    let outcome: ReadResult | Error;
    try {
      // Not registered alone and the patient has no batch: refused before anything is signed.
      const commitment = registered.get(record.record_id.toLowerCase()) ?? (batches.length ? undefined : missingCommitment(record));
      outcome = await readRecord(ctx, record, commitment);
    } catch (error) {
      outcome = error instanceof Error ? error : new KizunaError(String(error));
    }
    await onEach(i, outcome);
  }
}
