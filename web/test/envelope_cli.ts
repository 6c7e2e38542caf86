// The Node side of tests/web/test_envelope_parity.py: reads a JSON list of requests on stdin,
// answers a JSON list on stdout, using only web/src/core/envelope.ts.
//   {op: "seal", owner_public_key, record_id, content_type, segment_size, plaintext, streamed}
//     -> {envelope}
//   {op: "open", owner_secret_key, envelope, chunk, commitment?}
//     -> {plaintext, content_type, record_id} or {error, message}
// "open" decrypts twice -- in memory (decryptBytes) and streamed from a ReadableStream of
// `chunk`-byte pieces (EnvelopeReader) -- and answers an error if the two ever disagree.
// Hex everywhere; the secrets are throw-away keys the test makes.
import * as umbral from "@nucypher/umbral-pre";
import { bytesToHex, concatBytes, hexToBytes } from "../src/core/bytes.ts";
import { KizunaError } from "../src/core/errors.ts";
import { collect, decryptBytes, encryptBytes, encryptStream, EnvelopeReader } from "../src/core/envelope.ts";

type Request = Record<string, unknown>;

function pieces(data: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= data.length) return controller.close();
      controller.enqueue(data.slice(at, at + size));
      at += size;
    },
  });
}

async function seal(request: Request): Promise<object> {
  const plaintext = hexToBytes(request.plaintext as string);
  const options = {
    ownerKey: umbral.PublicKey.fromCompressedBytes(hexToBytes(request.owner_public_key as string)),
    recordId: hexToBytes(request.record_id as string),
    contentType: request.content_type as string,
    segmentSize: request.segment_size as number,
  };
  const envelope = request.streamed
    ? await collect((await encryptStream(pieces(plaintext, 13), options)).chunks)
    : await encryptBytes(plaintext, options);
  return { envelope: bytesToHex(envelope) };
}

async function open(request: Request): Promise<object> {
  const sk = umbral.SecretKey.fromBEBytes(hexToBytes(request.owner_secret_key as string));
  const envelope = hexToBytes(request.envelope as string);
  let whole: Uint8Array | KizunaError;
  let streamed: Uint8Array | KizunaError;
  let header: { contentType: string; recordId: Uint8Array } | undefined;
  const expectedCommitment = request.commitment ? hexToBytes(request.commitment as string) : undefined;
  try {
    whole = await decryptBytes(envelope, { ownerSecretKey: sk, expectedCommitment });
  } catch (error) {
    if (!(error instanceof KizunaError)) throw error;
    whole = error;
  }
  const released: Uint8Array[] = [];
  try {
    const reader = await EnvelopeReader.open(pieces(envelope, (request.chunk as number) ?? 1000));
    header = reader.header;
    const key = reader.header.unwrapForOwner(sk);
    for await (const chunk of reader.decrypt(key, { expectedCommitment })) released.push(chunk);
    streamed = concatBytes(...released);
  } catch (error) {
    if (!(error instanceof KizunaError)) throw error;
    streamed = error;
  }
  if (whole instanceof KizunaError || streamed instanceof KizunaError) {
    const a = whole instanceof KizunaError ? `${whole.name}: ${whole.message}` : "opened";
    const b = streamed instanceof KizunaError ? `${streamed.name}: ${streamed.message}` : "opened";
    if (a !== b) return { error: "Mismatch", message: `in memory: ${a}; streamed: ${b}` };
    const error = whole as KizunaError;
    return { error: error.name, message: error.message, released: bytesToHex(concatBytes(...released)) };
  }
  if (bytesToHex(whole) !== bytesToHex(streamed)) {
    return { error: "Mismatch", message: "in memory and streamed plaintexts differ" };
  }
  return {
    plaintext: bytesToHex(whole),
    content_type: header?.contentType,
    record_id: header ? bytesToHex(header.recordId) : undefined,
  };
}

const stdin: Uint8Array[] = [];
for await (const chunk of process.stdin) stdin.push(chunk as Uint8Array);
const input = new TextDecoder().decode(concatBytes(...stdin));
const answers = [];
for (const request of JSON.parse(input) as Request[]) {
  answers.push(request.op === "seal" ? await seal(request) : await open(request));
}
process.stdout.write(JSON.stringify(answers));
