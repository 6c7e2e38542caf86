// One record's read for the benchmark's page and its workers (bench.tsx, decrypt.worker.ts).
import { concatBytes } from "../src/core/bytes.ts";
import { decryptStream } from "../src/core/envelope.ts";
import type { WalletKeys } from "../src/core/walletKeys.ts";

/** One record's read as the app's PatientClient does it (web/src/patient/records.ts `#open`):
 *  GET its content, the scope's delegating key derived for this read, decryption streamed
 *  from the response body and checked against the commitment (which the app reads from the
 *  chain once for all records; here it comes with the listing). With `sealed` (the envelope
 *  already in memory, from one bulk download) there is no GET: the what-if of a bulk read. */
export async function readRecord(
  keys: WalletKeys,
  info: { id: string; scopeId: Uint8Array; epoch: number; commitment: Uint8Array },
  sealed?: Uint8Array,
): Promise<Uint8Array> {
  let source: ReadableStream<Uint8Array> | Uint8Array;
  if (sealed) {
    source = sealed;
  } else {
    const response = await fetch(`/bench/records/${info.id}/content`);
    if (!response.ok || !response.body) throw new Error(`GET content of ${info.id}: ${response.status}`);
    source = response.body;
  }
  const secret = await keys.scopeDelegatingKey(info.scopeId, info.epoch);
  const parts: Uint8Array[] = [];
  for await (const part of await decryptStream(source, secret, { expectedCommitment: info.commitment })) parts.push(part);
  return concatBytes(...parts);
}
