// Access requests and the inbox in the page (kizuna/client/patient.py publish_inbox_key,
// decline, inbox, open_message; kizuna/services/requests.py, care.py): what the PatientClient
// does not do itself, built on its context (the API, the signer, the keys, the chain).
//
// * Providers encrypt their messages (an access request's note, a report, a prescription, a
//   booking) to the patient's inbox key: their wallet-derived Umbral public key, published with
//   one wallet signature of the InboxKey statement so the service cannot hand out a key of its
//   own (the service and every sender check the signature over the statement they rebuild).
// * Saying yes to a request is a grant (PatientClient.grant: any grant closes the provider's open
//   request on chain); saying no is `closeRequest`, which has no signed form: the wallet sends it.
// * A message is downloaded as its envelope, checked against its on-chain reference (the
//   envelope's commitment) and decrypted HERE with the wallet-derived decrypting key.

import type { Hex } from "viem";
import { ok, rawFetch, type Schemas } from "../api/client.ts";
import { bytesToHex0x, hexToBytes, type Bytes } from "../core/bytes.ts";
import { commitmentOf, decryptBytes, readHeader } from "../core/envelope.ts";
import { IntegrityError, InputError } from "../core/errors.ts";
import { checkedAddress } from "./chain.ts";
import type { PatientClient, TxResult } from "./patient.ts";
import { proxyTypedData } from "../core/eip712.ts";

export type InboxItem = Schemas["InboxItemOut"];

/** The inbox kinds a patient gets (kizuna/services/inbox.py, care.CARE_KINDS), in words. */
export const KIND_TEXT: Readonly<Record<string, string>> = {
  "access-request": "Access request",
  report: "Visit report",
  prescription: "Prescription",
  "booking-confirmation": "Booking confirmed",
  "booking-cancellation": "Booking cancelled",
  data: "Data sent to you",
};

/** A message opened in the page: its content type (from the envelope) and its plaintext. */
export type OpenedMessage = { ref: Hex; contentType: string; content: Bytes };

const INBOX_KEY_FIELDS = [
  { name: "patient", type: "address" },
  { name: "publicKey", type: "bytes" },
];

/** The InboxKey statement a patient's wallet signs (care.inbox_key_typed_data's document, in the
 * proxy's EIP-712 domain: "Kizuna Proxy", the chain, the AccessLog contract). */
export function inboxKeyTypedData(fields: { chainId: number; accessLog: string; patient: string; publicKey: Uint8Array }): object {
  if (fields.publicKey.length !== 33) throw new InputError("public_key", `must be a 33-byte compressed key, not ${fields.publicKey.length} bytes`);
  return proxyTypedData({
    primaryType: "InboxKey",
    fields: INBOX_KEY_FIELDS,
    chainId: fields.chainId,
    accessLog: checkedAddress("accessLog", fields.accessLog),
    message: { patient: checkedAddress("patient", fields.patient), publicKey: bytesToHex0x(fields.publicKey) },
  });
}

function checkedRef(ref: string): Hex {
  const bytes = hexToBytes(ref, "ref");
  if (bytes.length !== 32) throw new InputError("ref", `must be 32 bytes, not ${bytes.length}`);
  return bytesToHex0x(bytes);
}

/** The patient's inbox (wallet-derived Umbral) public key, compressed (the WASM object freed). */
function ownPublicKey(client: PatientClient): Bytes {
  const key = client.context.keys.publicKey;
  try {
    return new Uint8Array(key.toCompressedBytes());
  } finally {
    key.free();
  }
}

export class PatientRequests {
  readonly #client: PatientClient;

  constructor(client: PatientClient) {
    this.#client = client;
  }

  /** Whether this patient's inbox key is published and is the key this page derives (false:
   * none published, or an older one: providers cannot write to the patient with this key). */
  async inboxKeyPublished(): Promise<boolean> {
    const ctx = this.#client.context;
    // The patient's own route answers "none yet" as null: a new patient's page logs no 404.
    const { published } = ok(await ctx.api.GET("/patient/inbox-key"));
    return published?.public_key.toLowerCase() === bytesToHex0x(ownPublicKey(this.#client));
  }

  /** Publish the key providers encrypt messages to: one wallet signature, no transaction. */
  async publishInboxKey(): Promise<void> {
    const ctx = this.#client.context;
    ctx.ownOnly("Publishing an inbox key");
    const publicKey = ownPublicKey(this.#client);
    const typed = inboxKeyTypedData({
      chainId: ctx.deployment.chainId, accessLog: ctx.contract("AccessLog"), patient: ctx.signer.address, publicKey,
    });
    const signature = await ctx.signer.signTypedData(typed, {
      title: "Let providers write to you",
      why: "Publishes the public key that providers encrypt access requests, reports and prescriptions to, so only you can read them. " +
        "It costs nothing and shares nothing.",
      details: [["Your account", ctx.signer.address], ["Public key", bytesToHex0x(publicKey)]],
    });
    ok(await ctx.api.POST("/patient/inbox-key", { body: { public_key: bytesToHex0x(publicKey), signature } }));
  }

  /** Requests and care messages addressed to the patient, newest first. */
  inbox(): Promise<InboxItem[]> {
    return this.#client.inbox();
  }

  /** Answer `provider`'s access request with no (`closeRequest`, sent by the wallet). */
  async decline(provider: string): Promise<TxResult> {
    const ctx = this.#client.context;
    ctx.ownOnly("Declining a request");
    const address = checkedAddress("provider", provider);
    const prepared = ok(await ctx.api.POST("/wallet/prepare/decline-request", { body: { provider: address } }));
    const txHash = await ctx.send(prepared, {
      title: `Decline ${address}'s access request`,
      why: "Closes this provider's request on the blockchain. Nothing of your record is shared; they can ask again.",
      details: [["Provider", address], ["Answer", "No"]],
    });
    const done = ok(await ctx.api.POST("/wallet/confirm/decline-request", { body: { provider: address, tx_hash: txHash } }));
    return { txHash: done.tx_hash as Hex, blockNumber: done.block_number };
  }

  /** Download a message, check it is the envelope its on-chain reference names, decrypt it. */
  async open(ref: string): Promise<OpenedMessage> {
    const ctx = this.#client.context;
    const wanted = checkedRef(ref);
    const response = await rawFetch(ctx.apiOptions, `/care/messages/${wanted}/content`);
    const envelope = new Uint8Array(await response.arrayBuffer());
    if (bytesToHex0x(await commitmentOf(envelope)) !== wanted) {
      throw new IntegrityError("The message the service sent is not the one its on-chain reference names: it was not opened.");
    }
    const header = await readHeader(envelope);
    const content = await decryptBytes(envelope, { ownerSecretKey: ctx.keys.decryptingKey });
    return { ref: wanted, contentType: header.contentType, content };
  }
}
