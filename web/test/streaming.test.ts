// Streaming keeps memory flat: 256 MiB go through encryptStream -> EnvelopeReader (1 MiB
// segments, a source of 64 KiB chunks made on the fly) while the ArrayBuffer memory of the
// process stays far below the size of the data (what is left is garbage not yet collected; a
// whole-buffer implementation would need at least 256 MiB here).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as umbral from "@nucypher/umbral-pre";
import { EnvelopeReader, encryptStream } from "../src/core/envelope.ts";

const TOTAL = 256 << 20;

async function* source(total: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < total; at += 1 << 16) yield new Uint8Array(1 << 16).fill((at >> 16) & 0xff);
}

test("256 MiB stream through encryption and decryption in flat memory", async () => {
  const sk = umbral.SecretKey.random();
  const base = process.memoryUsage().arrayBuffers;
  let peak = 0;
  let seen = 0;
  const { chunks } = await encryptStream(source(TOTAL), {
    ownerKey: sk.publicKey(),
    recordId: new Uint8Array(32),
    contentType: "application/octet-stream",
  });
  const reader = await EnvelopeReader.open(chunks);
  for await (const chunk of reader.decrypt(reader.header.unwrapForOwner(sk))) {
    assert.equal(chunk[0], (seen >> 16) & 0xff);
    seen += chunk.length;
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
  }
  assert.equal(seen, TOTAL);
  assert.ok(peak < 96 * 2 ** 20, `peak ${(peak / 2 ** 20).toFixed(1)} MiB of ArrayBuffers`);
});
