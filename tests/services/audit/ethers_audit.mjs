// An auditor with nothing but ethers v6 and a JSON-RPC endpoint (docs/audit.md's recipe, further):
// reads a patient's grants and revokes and the anchored receipt roots from the logs, recomputes
// receipt leaves with AbiCoder + keccak256, recovers the providers from their EIP-712 read
// requests and proves receipts with AccessLog.verifyReceipt. Input: one JSON argument; output:
// one JSON line. Driven by tests/services/audit/test_audit_ethers.py, which compares with Python.

import { AbiCoder, Contract, JsonRpcProvider, keccak256, verifyTypedData, id } from "ethers";

const input = JSON.parse(process.argv[2]);
const provider = new JsonRpcProvider(input.rpc, undefined, { staticNetwork: true });
const ledger = new Contract(input.ledger, [
  "event AccessGranted(address indexed patient, address indexed provider, bytes32 scopeId, uint64 expiresAt)",
  "event AccessRevoked(address indexed patient, address indexed provider, bytes32 scopeId)",
  "event RecordRegistered(address indexed patient, bytes32 indexed recordId, bytes32 commitment, bytes32 scopeId)",
], provider);
const accessLog = new Contract(input.accessLog, [
  "event ReceiptRootAnchored(uint64 indexed batchIndex, bytes32 indexed root, address indexed anchoredBy, uint64 count, uint64 fromTime, uint64 toTime)",
  "function verifyReceipt(bytes32 root, bytes32 leaf, bytes32[] proof) view returns (bool)",
], provider);

const from = input.deployBlock;
const grants = [];
for (const log of await ledger.queryFilter(ledger.filters.AccessGranted(input.patient), from)) {
  const block = await log.getBlock();
  grants.push({ block: log.blockNumber, tx: log.transactionHash, provider: log.args.provider,
                scopeId: log.args.scopeId, expiresAt: log.args.expiresAt.toString(),
                time: block.timestamp });
}
const revokes = (await ledger.queryFilter(ledger.filters.AccessRevoked(input.patient), from))
  .map((log) => ({ block: log.blockNumber, tx: log.transactionHash, scopeId: log.args.scopeId }));
const records = (await ledger.queryFilter(ledger.filters.RecordRegistered(input.patient), from))
  .map((log) => ({ recordId: log.args.recordId, commitment: log.args.commitment }));
const anchors = (await accessLog.queryFilter(accessLog.filters.ReceiptRootAnchored(), from))
  .map((log) => ({ root: log.args.root, count: Number(log.args.count), tx: log.transactionHash }));

const RECEIPT_TYPEHASH = id("KizunaReadReceipt(address provider,address patient,bytes32 recordId,"
  + "bytes32 requestId,uint64 issuedAt,bytes32 signatureHash,uint64 servedAt,uint64 headBlock)");
const domain = { name: "Kizuna Proxy", version: "1", chainId: input.chainId,
                 verifyingContract: input.accessLog };
const types = { ReadRequest: [
  { name: "provider", type: "address" }, { name: "patient", type: "address" },
  { name: "recordId", type: "bytes32" }, { name: "requestId", type: "bytes32" },
  { name: "issuedAt", type: "uint64" }] };
const receipts = [];
for (const r of input.receipts) {
  const m = JSON.parse(r.requestJson);
  const encoded = AbiCoder.defaultAbiCoder().encode(
    ["bytes32", "address", "address", "bytes32", "bytes32", "uint64", "bytes32", "uint64", "uint64"],
    [RECEIPT_TYPEHASH, m.provider, m.patient, m.recordId, m.requestId, m.issuedAt,
     keccak256(r.signature), r.servedAt, r.headBlock]);
  const leaf = keccak256(keccak256(encoded));
  receipts.push({
    leaf,
    signer: verifyTypedData(domain, types, m, r.signature),
    onChain: await accessLog.verifyReceipt(r.root, leaf, r.proof),
  });
}
console.log(JSON.stringify({ grants, revokes, records, anchors, receipts }));
provider.destroy();
