// Key fragments of a scope's key for one receiving key: the one place the page makes them
// (kizuna.crypto.pre.generate_kfrags), for the service (1 of 1) and for threshold proxy
// nodes (m of n, one per node).

import * as umbral from "@nucypher/umbral-pre";
import type { Hex } from "viem";
import { bytesToHex0x } from "../core/bytes.ts";
import type { PatientContext } from "./context.ts";

/** Fragments (serialised) letting `receivingKey` open the scope's records of `epoch`: any
 * `threshold` of the `shares` together, each signed over both keys; and the scope's delegating
 * public key they were made from. */
export async function makeKFrags(ctx: PatientContext, scopeId: Uint8Array, epoch: number, receivingKey: Uint8Array,
                                 threshold = 1, shares = 1): Promise<{ kfrags: Hex[]; delegatingKey: Hex }> {
  const delegating = await ctx.keys.scopeDelegatingKey(scopeId, epoch);
  const receiving = umbral.PublicKey.fromCompressedBytes(receivingKey);
  const signer = ctx.keys.signer();
  try {
    const delegatingKey = bytesToHex0x(delegating.publicKey().toCompressedBytes());
    const kfrags = umbral.generateKFrags(delegating, receiving, signer, threshold, shares, true, true).map((k) => {
      const bytes = bytesToHex0x(k.toBytes());
      k.free();
      return bytes;
    });
    return { kfrags, delegatingKey };
  } finally {
    signer.free();
    receiving.free();
    delegating.free();
  }
}
