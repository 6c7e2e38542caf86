// A read receipt's leaf recomputed in the page from the fields the provider signed, as
// kizuna/receipts/request.py receipt_encoding / receipt_leaf define it:
// keccak256(keccak256(abi.encode(READ_RECEIPT_TYPEHASH, provider, patient, recordId, requestId,
// issuedAt, keccak256(signature), servedAt, headBlock))).

import type { Schemas } from "../api/client.ts";
import { bigIntToBytes, concatBytes, hexToBytes, utf8Encode, type Bytes } from "../core/bytes.ts";
import { keccak, leafHash } from "../core/merkle.ts";

/** A stored receipt with its proof, as GET /auditor/receipts gives it. */
export type ServiceReceipt = Schemas["ReceiptProofOut"];

export const READ_RECEIPT_TYPE =
  "KizunaReadReceipt(address provider,address patient,bytes32 recordId,bytes32 requestId," +
  "uint64 issuedAt,bytes32 signatureHash,uint64 servedAt,uint64 headBlock)";
const READ_RECEIPT_TYPEHASH = keccak(utf8Encode(READ_RECEIPT_TYPE));

/** The fields of the provider's signed ReadRequest, parsed from the stored request_json. */
export type SignedRequest = { provider: string; patient: string; recordId: Bytes; requestId: Bytes; issuedAt: number };

/** The signed request, or a sentence saying why it cannot be read. */
export function signedRequest(requestJson: string): SignedRequest | string {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(requestJson) as Record<string, unknown>;
  } catch {
    return "the signed request JSON is unreadable";
  }
  try {
    const out = {
      provider: String(m.provider), patient: String(m.patient),
      recordId: hexToBytes(String(m.recordId), "recordId"), requestId: hexToBytes(String(m.requestId), "requestId"),
      issuedAt: Number(m.issuedAt),
    };
    if (out.recordId.length !== 32 || out.requestId.length !== 32 || !Number.isSafeInteger(out.issuedAt) || out.issuedAt < 0 ||
        !/^0x[0-9a-fA-F]{40}$/.test(out.provider) || !/^0x[0-9a-fA-F]{40}$/.test(out.patient)) {
      return "the signed request has malformed fields";
    }
    return out;
  } catch {
    return "the signed request has malformed fields";
  }
}

function addressWord(address: string): Bytes {
  return concatBytes(new Uint8Array(12), hexToBytes(address, "address"));
}

/** The receipt's leaf from its signed fields, signature, servedAt and headBlock. */
export function receiptLeaf(request: SignedRequest, signature: Uint8Array, servedAt: number, headBlock: number): Bytes {
  return leafHash(concatBytes(
    READ_RECEIPT_TYPEHASH, addressWord(request.provider), addressWord(request.patient), request.recordId,
    request.requestId, bigIntToBytes(BigInt(request.issuedAt), 32), keccak(signature),
    bigIntToBytes(BigInt(servedAt), 32), bigIntToBytes(BigInt(headBlock), 32),
  ));
}
