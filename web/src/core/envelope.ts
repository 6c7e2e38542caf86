// The Kizuna envelope, format version 1, in the browser (docs/envelope.md; the Python code
// kizuna/storage/envelope.py is the reference and tests/web/test_envelope_parity.py proves both
// directions byte for byte):
//
//   preamble  = header (magic "KZEN", version, flags, segment size, record id, nonce prefix,
//                       key commitment, content type) + key block (Umbral capsule + wrapped key)
//   segment i = AES-256-GCM(aes_key, nonce_i, plaintext_i, associated data = preamble)
//   nonce_i   = nonce prefix (7) || i (u32, big-endian) || last (0x00, or 0x01 on the final)
//
// AES-GCM and HKDF run in WebCrypto, Umbral in @nucypher/umbral-pre (WASM). Streaming keeps
// memory flat: one segment in hand and one looked ahead at. Decryption releases a segment only
// after its tag verified, and the final one only once the end of the stream was seen.

import * as umbral from "@nucypher/umbral-pre";
import { sha256 } from "@noble/hashes/sha2";
import { bufferSource, concatBytes, equalBytes, asciiBytes, type Bytes } from "./bytes.ts";
import { EnvelopeFormatError, InputError, IntegrityError } from "./errors.ts";
import { hkdfSha256 } from "./kdf.ts";

export const MAGIC: Bytes = new Uint8Array([0x4b, 0x5a, 0x45, 0x4e]); // "KZEN"
export const VERSION = 1;
export const DEFAULT_SEGMENT_SIZE = 1 << 20;
export const MIN_SEGMENT_SIZE = 16;
export const MAX_SEGMENT_SIZE = 1 << 24;
export const TAG_SIZE = 16;
export const NONCE_PREFIX_SIZE = 7;
export const RECORD_ID_SIZE = 32;
export const KEY_COMMITMENT_SIZE = 32;
export const DATA_KEY_SIZE = 32;
export const MAX_KEY_BLOCK_PART = 1024;
export const MAX_SEGMENTS = 2 ** 32;
export const FIXED_HEADER_SIZE = 82; // magic .. content-type length (">4sBBI32s7s32sB")
/** No valid preamble is longer: the first this-many bytes always hold the whole header. */
export const MAX_PREAMBLE_SIZE = FIXED_HEADER_SIZE + 255 + 2 * (2 + MAX_KEY_BLOCK_PART);

const INFO_AES_KEY = asciiBytes("kizuna/envelope/v1/aes-256-gcm", "info");
const INFO_KEY_COMMITMENT = asciiBytes("kizuna/envelope/v1/key-commitment", "info");
const TOKEN = "[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*";
const CONTENT_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:; ?${TOKEN}=${TOKEN})*$`);

/** Where bytes come from: a ReadableStream (fetch, File.stream()), an (async) iterable of
 * chunks of any size, or one buffer. */
export type ByteSource =
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array>
  | Iterable<Uint8Array>
  | Uint8Array;

/** A record's 256-bit data key. Kept in memory only; `reveal()` hands out the bytes. */
export class DataKey {
  readonly #bytes: Bytes;

  constructor(bytes: Uint8Array) {
    if (!(bytes instanceof Uint8Array) || bytes.length !== DATA_KEY_SIZE) {
      throw new InputError("data key", `must be ${DATA_KEY_SIZE} bytes`);
    }
    this.#bytes = new Uint8Array(bytes);
  }

  static random(): DataKey {
    return new DataKey(crypto.getRandomValues(new Uint8Array(DATA_KEY_SIZE)));
  }

  reveal(): Bytes {
    return this.#bytes;
  }

  toString(): string {
    return "DataKey(…)"; // never the bytes, in logs or error messages
  }

  toJSON(): string {
    return this.toString();
  }
}

/** The parsed preamble: everything before the first segment. `raw` is the exact preamble
 * (the associated data of every segment); a proxy needs only the capsule. */
export class EnvelopeHeader {
  readonly version: number;
  readonly segmentSize: number;
  readonly recordId: Bytes;
  readonly contentType: string;
  readonly noncePrefix: Bytes;
  readonly keyCommitment: Bytes;
  readonly capsuleBytes: Bytes;
  readonly wrappedKey: Bytes;
  readonly raw: Bytes;

  constructor(fields: Omit<EnvelopeHeader, "size" | "capsule" | "unwrapForOwner" | "unwrapForGrantee">) {
    this.version = fields.version;
    this.segmentSize = fields.segmentSize;
    this.recordId = fields.recordId;
    this.contentType = fields.contentType;
    this.noncePrefix = fields.noncePrefix;
    this.keyCommitment = fields.keyCommitment;
    this.capsuleBytes = fields.capsuleBytes;
    this.wrappedKey = fields.wrappedKey;
    this.raw = fields.raw;
  }

  get size(): number {
    return this.raw.length;
  }

  /** The Umbral capsule of the data key (`EnvelopeFormatError` if it does not parse). */
  capsule(): umbral.Capsule {
    try {
      return umbral.Capsule.fromBytes(this.capsuleBytes);
    } catch (error) {
      throw new EnvelopeFormatError(`capsule is malformed: ${String(error)}`);
    }
  }

  /** The data key, opened with the owner's Umbral secret key. */
  unwrapForOwner(ownerSecretKey: umbral.SecretKey): DataKey {
    const capsule = this.capsule();
    let raw: Uint8Array;
    try {
      raw = umbral.decryptOriginal(ownerSecretKey, capsule, this.wrappedKey);
    } catch {
      throw new IntegrityError(
        "the data key does not open: wrong secret key, or the capsule or wrapped key was tampered with",
      );
    }
    return dataKeyFrom(raw);
  }

  /** The data key, opened by a grantee from verified capsule fragments (enough of them). */
  unwrapForGrantee(
    receivingSecretKey: umbral.SecretKey,
    delegatingKey: umbral.PublicKey,
    cfrags: umbral.VerifiedCapsuleFrag[],
  ): DataKey {
    const capsule = this.capsule();
    let raw: Uint8Array;
    try {
      raw = umbral.decryptReencrypted(receivingSecretKey, delegatingKey, capsule, cfrags, this.wrappedKey);
    } catch {
      throw new IntegrityError(
        "the data key does not open from these capsule fragments: too few, another grant, or tampered with",
      );
    }
    return dataKeyFrom(raw);
  }
}

function dataKeyFrom(raw: Uint8Array): DataKey {
  if (raw.length !== DATA_KEY_SIZE) {
    throw new IntegrityError(`the wrapped data key is ${raw.length} bytes, not ${DATA_KEY_SIZE}`);
  }
  return new DataKey(raw);
}

function checkContentType(contentType: string): Bytes {
  if (typeof contentType !== "string") throw new InputError("content_type", "must be a string");
  if (!CONTENT_TYPE.test(contentType)) {
    throw new InputError("content_type", `${JSON.stringify(contentType)} is not a media type (type/subtype)`);
  }
  const encoded = asciiBytes(contentType, "content_type");
  if (encoded.length > 255) throw new InputError("content_type", `is ${encoded.length} bytes, at most 255`);
  return encoded;
}

function checkSegmentSize(segmentSize: number): void {
  if (!Number.isInteger(segmentSize)) throw new InputError("segment_size", "must be an integer");
  if (segmentSize < MIN_SEGMENT_SIZE || segmentSize > MAX_SEGMENT_SIZE) {
    throw new InputError("segment_size", `${segmentSize} is outside [${MIN_SEGMENT_SIZE}, ${MAX_SEGMENT_SIZE}]`);
  }
}

/** The AES-GCM key and the key commitment of one envelope. */
async function derive(key: DataKey, recordId: Uint8Array, noncePrefix: Uint8Array): Promise<[CryptoKey, Bytes]> {
  const salt = concatBytes(recordId, noncePrefix);
  const secret = key.reveal();
  const aesBytes = await hkdfSha256(secret, salt, INFO_AES_KEY, 32);
  const commitment = await hkdfSha256(secret, salt, INFO_KEY_COMMITMENT, 32);
  const aes = await crypto.subtle.importKey("raw", aesBytes, "AES-GCM", false, ["encrypt", "decrypt"]);
  aesBytes.fill(0);
  return [aes, commitment];
}

function nonce(prefix: Uint8Array, index: number, last: boolean): Bytes {
  const out = new Uint8Array(12);
  out.set(prefix, 0);
  new DataView(out.buffer).setUint32(7, index);
  out[11] = last ? 1 : 0;
  return out;
}

function gcm(prefix: Uint8Array, index: number, last: boolean, aad: Uint8Array): AesGcmParams {
  return { name: "AES-GCM", iv: nonce(prefix, index, last), additionalData: bufferSource(aad), tagLength: 128 };
}

// --- reading bytes from any source ------------------------------------------------------------

function chunksOf(source: ByteSource): AsyncIterator<Uint8Array> | Iterator<Uint8Array> {
  if (source instanceof Uint8Array) return [source][Symbol.iterator]();
  if (typeof (source as ReadableStream<Uint8Array>).getReader === "function") {
    // getReader() rather than async iteration: not every browser iterates ReadableStreams yet.
    const reader = (source as ReadableStream<Uint8Array>).getReader();
    return {
      next: async () => {
        const { done, value } = await reader.read();
        return done ? { done: true, value: undefined } : { done: false, value };
      },
      return: async () => {
        await reader.cancel();
        return { done: true, value: undefined };
      },
    };
  }
  if (Symbol.asyncIterator in source) return (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  return (source as Iterable<Uint8Array>)[Symbol.iterator]();
}

/** `read(n)`: exactly n bytes, or fewer only at the end of the source. */
class ByteReader {
  readonly #chunks: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #ended = false;

  constructor(source: ByteSource) {
    this.#chunks = chunksOf(source);
  }

  async read(size: number): Promise<Bytes> {
    while (this.#queued < size && !this.#ended) {
      const next = await this.#chunks.next();
      if (next.done) {
        this.#ended = true;
      } else if (next.value.length) {
        this.#queue.push(next.value);
        this.#queued += next.value.length;
      }
    }
    const take = Math.min(size, this.#queued);
    const head = this.#queue[0];
    if (head && head.length === take) {
      this.#queue.shift(); // a chunk of exactly the size asked for passes through uncopied
      this.#queued -= take;
      return bufferSource(head);
    }
    const out = new Uint8Array(take);
    let at = 0;
    while (at < take) {
      const chunk = this.#queue[0] as Uint8Array;
      const part = Math.min(chunk.length, take - at);
      out.set(chunk.subarray(0, part), at);
      at += part;
      if (part === chunk.length) this.#queue.shift();
      else this.#queue[0] = chunk.subarray(part);
    }
    this.#queued -= take;
    return out;
  }

  /** Fill `buffer` from the source: its length, or fewer bytes only at the end. The caller
   * owns `buffer` and may reuse it (the sealer does: no fresh allocation per segment). */
  async fill(buffer: Uint8Array): Promise<number> {
    let at = 0;
    while (at < buffer.length) {
      if (!this.#queue.length) {
        if (this.#ended) break;
        const next = await this.#chunks.next();
        if (next.done) this.#ended = true;
        else if (next.value.length) {
          this.#queue.push(next.value);
          this.#queued += next.value.length;
        }
        continue;
      }
      const chunk = this.#queue[0] as Uint8Array;
      const part = Math.min(chunk.length, buffer.length - at);
      buffer.set(part === chunk.length ? chunk : chunk.subarray(0, part), at);
      at += part;
      this.#queued -= part;
      if (part === chunk.length) this.#queue.shift();
      else this.#queue[0] = chunk.subarray(part);
    }
    return at;
  }

  async close(): Promise<void> {
    await this.#chunks.return?.();
  }
}

// --- encryption -------------------------------------------------------------------------------

export type SealOptions = {
  /** The owner's Umbral public key (the patient's, or a scope's delegating key). */
  ownerKey: umbral.PublicKey;
  /** The record's 32-byte on-chain id. */
  recordId: Uint8Array;
  contentType: string;
  segmentSize?: number;
};

type Sealer = { header: EnvelopeHeader; aes: CryptoKey };

async function newSealer(options: SealOptions): Promise<Sealer> {
  const { ownerKey, recordId, contentType } = options;
  const segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
  if (!(ownerKey instanceof umbral.PublicKey)) throw new InputError("owner_key", "must be an Umbral PublicKey");
  if (!(recordId instanceof Uint8Array) || recordId.length !== RECORD_ID_SIZE) {
    throw new InputError("record_id", `must be ${RECORD_ID_SIZE} bytes`);
  }
  checkSegmentSize(segmentSize);
  const contentTypeBytes = checkContentType(contentType);
  const key = DataKey.random();
  const noncePrefix = crypto.getRandomValues(new Uint8Array(NONCE_PREFIX_SIZE));
  const [capsule, wrappedKey] = umbral.encrypt(ownerKey, key.reveal());
  const capsuleBytes = new Uint8Array(capsule.toBytes());
  capsule.free();
  const [aes, keyCommitment] = await derive(key, recordId, noncePrefix);
  key.reveal().fill(0);
  const fixed = new Uint8Array(FIXED_HEADER_SIZE);
  const view = new DataView(fixed.buffer);
  fixed.set(MAGIC, 0);
  fixed[4] = VERSION;
  fixed[5] = 0;
  view.setUint32(6, segmentSize);
  fixed.set(recordId, 10);
  fixed.set(noncePrefix, 42);
  fixed.set(keyCommitment, 49);
  fixed[81] = contentTypeBytes.length;
  const raw = concatBytes(fixed, contentTypeBytes, u16(capsuleBytes.length), capsuleBytes, u16(wrappedKey.length), wrappedKey);
  const header = new EnvelopeHeader({
    version: VERSION,
    segmentSize,
    recordId: new Uint8Array(recordId),
    contentType,
    noncePrefix,
    keyCommitment,
    capsuleBytes,
    wrappedKey: new Uint8Array(wrappedKey),
    raw,
  });
  return { header, aes };
}

function u16(value: number): Bytes {
  return new Uint8Array([value >> 8, value & 0xff]);
}

/** Start sealing segment `index`. WebCrypto takes its copy of `plaintext` (and of the nonce
 * and associated data) before this returns (Web Crypto API, "get a copy of the bytes held by
 * the data parameter", synchronously in encrypt()), so the caller may refill the buffer at once. */
function sealSegment(sealer: Sealer, plaintext: Uint8Array, index: number, last: boolean): Promise<Bytes> {
  if (index >= MAX_SEGMENTS) throw new InputError("plaintext", `more than ${MAX_SEGMENTS} segments`);
  const { header, aes } = sealer;
  const params = gcm(header.noncePrefix, index, last, header.raw);
  return crypto.subtle.encrypt(params, aes, bufferSource(plaintext)).then((sealed) => new Uint8Array(sealed));
}

/** Segments sealed ahead of the consumer: the source is read while WebCrypto encrypts. */
const SEAL_AHEAD = 2;

async function* sealSegments(sealer: Sealer, source: ByteSource): AsyncGenerator<Bytes> {
  const size = sealer.header.segmentSize;
  const reader = new ByteReader(source);
  // Two plaintext buffers, reused for every segment: one segment in hand and the next looked
  // ahead at (the final segment is only known once the source has ended). A fresh 1 MiB buffer
  // per segment costs page faults that are slower than the encryption itself.
  let pending = new Uint8Array(size);
  let following = new Uint8Array(size);
  const sealing: Promise<Bytes>[] = [];
  try {
    yield sealer.header.raw;
    let held = await reader.fill(pending);
    let index = 0;
    while (held === size) {
      const next = await reader.fill(following);
      if (!next) break;
      sealing.push(sealSegment(sealer, pending, index, false));
      [pending, following] = [following, pending];
      held = next;
      index += 1;
      if (sealing.length >= SEAL_AHEAD) yield await (sealing.shift() as Promise<Bytes>);
    }
    sealing.push(sealSegment(sealer, pending.subarray(0, held), index, true));
    while (sealing.length) yield await (sealing.shift() as Promise<Bytes>);
  } finally {
    // A consumer that stops early: let the encryptions in flight settle unobserved.
    for (const left of sealing) left.catch(() => undefined);
    await reader.close();
  }
}

export type EncryptedStream = {
  header: EnvelopeHeader;
  /** The preamble, then one chunk per sealed segment. */
  chunks: AsyncGenerator<Bytes>;
};

/** Encrypt `source` into an envelope, streamed: about two segments in memory whatever the
 * size. Arguments are checked and the data key made before this resolves. */
export async function encryptStream(source: ByteSource, options: SealOptions): Promise<EncryptedStream> {
  const sealer = await newSealer(options);
  return { header: sealer.header, chunks: sealSegments(sealer, source) };
}

/** One data key, nonce prefix and capsule that encrypt a source to the same envelope each time:
 * a streamed upload hashes a first pass for the commitment its registration signs, then sends
 * a second pass, in flat memory. Only the pass that is sent leaves the page; if the source gave
 * other bytes the second time, the commitment the chain holds refuses the upload. */
export async function repeatableEncryption(
  options: SealOptions,
): Promise<{ header: EnvelopeHeader; encrypt(source: ByteSource): AsyncGenerator<Bytes> }> {
  const sealer = await newSealer(options);
  return { header: sealer.header, encrypt: (source) => sealSegments(sealer, source) };
}

/** The same as a ReadableStream (e.g. an upload body), pulled one segment at a time. */
export async function encryptReadable(source: ByteSource, options: SealOptions): Promise<ReadableStream<Bytes>> {
  const { chunks } = await encryptStream(source, options);
  return iterableToReadable(chunks);
}

/** Encrypt a payload held in memory into one buffer. */
export async function encryptBytes(plaintext: Uint8Array, options: SealOptions): Promise<Bytes> {
  const sealer = await newSealer(options);
  const { header } = sealer;
  const size = header.segmentSize;
  const count = Math.max(1, Math.ceil(plaintext.length / size));
  const out = new Uint8Array(header.size + plaintext.length + count * TAG_SIZE);
  out.set(header.raw, 0);
  let at = header.size;
  for (let index = 0; index < count; index++) {
    const chunk = plaintext.subarray(index * size, (index + 1) * size);
    const sealed = await sealSegment(sealer, chunk, index, index === count - 1);
    out.set(sealed, at);
    at += sealed.length;
  }
  return out;
}

// --- decryption -------------------------------------------------------------------------------

async function parseHeader(reader: ByteReader): Promise<EnvelopeHeader> {
  const fixed = await reader.read(FIXED_HEADER_SIZE);
  if (fixed.length >= 4 && !equalBytes(fixed.subarray(0, 4), MAGIC)) {
    throw new EnvelopeFormatError(`not a Kizuna envelope: magic is ${printable(fixed.subarray(0, 4))}, expected "KZEN"`);
  }
  if (fixed.length < FIXED_HEADER_SIZE) {
    throw new EnvelopeFormatError(
      `truncated header: ${fixed.length} bytes, the fixed part alone is ${FIXED_HEADER_SIZE}`,
    );
  }
  const view = new DataView(fixed.buffer, fixed.byteOffset, fixed.byteLength);
  const version = fixed[4] as number;
  const flags = fixed[5] as number;
  const segmentSize = view.getUint32(6);
  if (version !== VERSION) throw new EnvelopeFormatError(`unsupported envelope version ${version} (this reads ${VERSION})`);
  if (flags !== 0) {
    throw new EnvelopeFormatError(`header flags must be 0 in version ${VERSION}, got 0x${flags.toString(16).padStart(2, "0")}`);
  }
  if (segmentSize < MIN_SEGMENT_SIZE || segmentSize > MAX_SEGMENT_SIZE) {
    throw new EnvelopeFormatError(`segment size ${segmentSize} is outside [${MIN_SEGMENT_SIZE}, ${MAX_SEGMENT_SIZE}]`);
  }
  const contentTypeLength = fixed[81] as number;
  if (contentTypeLength === 0) throw new EnvelopeFormatError("content type is empty");
  const parts: Uint8Array[] = [fixed];
  const contentTypeBytes = await readExact(reader, contentTypeLength, "content type", parts);
  const contentType = String.fromCharCode(...contentTypeBytes);
  if (contentTypeBytes.some((byte) => byte > 0x7f) || !CONTENT_TYPE.test(contentType)) {
    throw new EnvelopeFormatError(`content type ${JSON.stringify(contentType)} is malformed`);
  }
  const capsuleBytes = await readPart(reader, "capsule", parts);
  const wrappedKey = await readPart(reader, "wrapped key", parts);
  return new EnvelopeHeader({
    version,
    segmentSize,
    recordId: fixed.slice(10, 42),
    contentType,
    noncePrefix: fixed.slice(42, 49),
    keyCommitment: fixed.slice(49, 81),
    capsuleBytes,
    wrappedKey,
    raw: concatBytes(...parts),
  });
}

function printable(bytes: Uint8Array): string {
  return JSON.stringify(String.fromCharCode(...bytes));
}

async function readExact(reader: ByteReader, size: number, what: string, parts: Uint8Array[]): Promise<Bytes> {
  const data = await reader.read(size);
  if (data.length < size) throw new EnvelopeFormatError(`truncated header: ends inside the ${what}`);
  parts.push(data);
  return data;
}

async function readPart(reader: ByteReader, what: string, parts: Uint8Array[]): Promise<Bytes> {
  const prefix = await readExact(reader, 2, `${what} length`, parts);
  const length = ((prefix[0] as number) << 8) | (prefix[1] as number);
  if (length < 1 || length > MAX_KEY_BLOCK_PART) {
    throw new EnvelopeFormatError(`${what} length ${length} is outside [1, ${MAX_KEY_BLOCK_PART}]`);
  }
  return new Uint8Array(await readExact(reader, length, what, parts));
}

/** Parse just the preamble (what a proxy needs: the capsule). */
export async function readHeader(source: ByteSource): Promise<EnvelopeHeader> {
  const reader = new ByteReader(source);
  try {
    return await parseHeader(reader);
  } finally {
    await reader.close();
  }
}

/** The segment cipher for `key`, after checking `key` against the key commitment. */
async function openAes(header: EnvelopeHeader, key: DataKey): Promise<CryptoKey> {
  if (!(key instanceof DataKey)) throw new InputError("key", "decrypting needs a DataKey");
  const [aes, commitment] = await derive(key, header.recordId, header.noncePrefix);
  if (!equalBytes(commitment, header.keyCommitment)) {
    throw new IntegrityError(
      "wrong key: the data key does not match the envelope's key commitment (or the header was tampered with)",
    );
  }
  return aes;
}

async function openSegment(aes: CryptoKey, header: EnvelopeHeader, segment: Uint8Array, index: number, last: boolean): Promise<Bytes> {
  try {
    const params = gcm(header.noncePrefix, index, last, header.raw);
    return new Uint8Array(await crypto.subtle.decrypt(params, aes, bufferSource(segment)));
  } catch {
    throw await diagnose(aes, header, segment, index, last);
  }
}

/** Say why a segment failed; never returns plaintext (the probe's result is dropped). */
async function diagnose(aes: CryptoKey, header: EnvelopeHeader, segment: Uint8Array, index: number, last: boolean): Promise<IntegrityError> {
  if (segment.length < TAG_SIZE) {
    return new IntegrityError(`truncated: segment ${index} is ${segment.length} bytes, shorter than its ${TAG_SIZE}-byte tag`);
  }
  try {
    const probe = await crypto.subtle.decrypt(gcm(header.noncePrefix, index, !last, header.raw), aes, bufferSource(segment));
    new Uint8Array(probe).fill(0);
  } catch {
    return new IntegrityError(
      `segment ${index} failed authentication: tampered with, reordered, or swapped in from another envelope`,
    );
  }
  if (last) {
    return new IntegrityError(`truncated: the envelope ends after segment ${index}, which is not its final segment`);
  }
  return new IntegrityError(`unexpected data after the final segment ${index}`);
}

/** Reads an envelope from a stream: the header at once, the plaintext on demand.
 *
 *   const reader = await EnvelopeReader.open(response.body);  // EnvelopeFormatError if not one
 *   const key = reader.header.unwrapForOwner(sk);
 *   for await (const chunk of reader.decrypt(key)) ...         // IntegrityError on tampering
 *
 * A consumer that shows or saves plaintext while it streams must treat it as unfinished until
 * the loop ends without an exception (truncation is only knowable at the end). */
export class EnvelopeReader {
  readonly header: EnvelopeHeader;
  readonly #reader: ByteReader;
  #started = false;

  constructor(header: EnvelopeHeader, reader: ByteReader) {
    this.header = header;
    this.#reader = reader;
  }

  static async open(source: ByteSource): Promise<EnvelopeReader> {
    const reader = new ByteReader(source);
    return new EnvelopeReader(await parseHeader(reader), reader);
  }

  /** Verified plaintext, segment by segment. With `expectedCommitment` (the on-chain one), the
   * SHA-256 of the whole envelope must match too, checked before the final segment is released
   * (incremental SHA-256 from @noble/hashes: WebCrypto has no streaming digest). */
  async *decrypt(key: DataKey, options: { expectedCommitment?: Uint8Array } = {}): AsyncGenerator<Bytes> {
    if (this.#started) throw new Error("an EnvelopeReader decrypts once");
    this.#started = true;
    const reader = this.#reader;
    try {
      const header = this.header;
      const aes = await openAes(header, key);
      const expected = options.expectedCommitment;
      const hasher = expected ? sha256.create().update(header.raw) : undefined;
      const stride = header.segmentSize + TAG_SIZE;
      let current = await reader.read(stride);
      if (!current.length) throw new IntegrityError("truncated: the envelope has a header but no segments");
      for (let index = 0; ; index++) {
        if (index >= MAX_SEGMENTS) throw new IntegrityError(`more than ${MAX_SEGMENTS} segments`);
        hasher?.update(current);
        const following = current.length < stride ? new Uint8Array(0) : await reader.read(stride);
        const last = following.length === 0;
        const plaintext = await openSegment(aes, header, current, index, last);
        if (last && hasher && expected && !equalBytes(hasher.digest(), expected)) {
          plaintext.fill(0);
          throw new IntegrityError("the envelope does not match the expected commitment (another envelope, or altered)");
        }
        yield plaintext;
        if (last) return;
        current = following;
      }
    } finally {
      await reader.close();
    }
  }
}

/** The owner's shortcut: parse, unwrap the data key with `ownerSecretKey`, stream plaintext. */
export async function decryptStream(
  source: ByteSource,
  ownerSecretKey: umbral.SecretKey,
  options: { expectedCommitment?: Uint8Array } = {},
): Promise<AsyncGenerator<Bytes>> {
  const reader = await EnvelopeReader.open(source);
  return reader.decrypt(reader.header.unwrapForOwner(ownerSecretKey), options);
}

export type OpenOptions = ({ key: DataKey } | { ownerSecretKey: umbral.SecretKey }) & {
  /** The on-chain commitment: the envelope's SHA-256 must match it, checked first. */
  expectedCommitment?: Uint8Array;
};

/** Decrypt an envelope held in memory into one buffer. Every segment is verified before the
 * buffer is returned; on failure it is wiped and an `IntegrityError` thrown. */
export async function decryptBytes(envelope: Uint8Array, options: OpenOptions): Promise<Bytes> {
  const header = await readHeader(envelope.subarray(0, MAX_PREAMBLE_SIZE));
  if (options.expectedCommitment && !equalBytes(await commitmentOf(envelope), options.expectedCommitment)) {
    throw new IntegrityError("the envelope does not match the expected commitment (another envelope, or altered)");
  }
  const key = "key" in options ? options.key : header.unwrapForOwner(options.ownerSecretKey);
  const aes = await openAes(header, key);
  const body = envelope.subarray(header.size);
  if (!body.length) throw new IntegrityError("truncated: the envelope has a header but no segments");
  const stride = header.segmentSize + TAG_SIZE;
  const full = Math.floor(body.length / stride);
  const rest = body.length % stride;
  const count = full + (rest ? 1 : 0);
  const out = new Uint8Array(full * header.segmentSize + Math.max(rest - TAG_SIZE, 0));
  let at = 0;
  try {
    for (let index = 0; index < count; index++) {
      const segment = body.subarray(index * stride, (index + 1) * stride);
      const plaintext = await openSegment(aes, header, segment, index, index === count - 1);
      out.set(plaintext, at);
      at += plaintext.length;
    }
  } catch (error) {
    out.fill(0); // never leave unauthenticated (or partial) plaintext lying around
    throw error;
  }
  return out;
}

/** The on-chain commitment of an envelope: SHA-256 of all its bytes (docs/envelope.md). */
export async function commitmentOf(envelope: Uint8Array): Promise<Bytes> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bufferSource(envelope)));
}

/** Collect a stream of chunks into one buffer (tests, small records). */
export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Bytes> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return concatBytes(...parts);
}

function iterableToReadable(chunks: AsyncGenerator<Bytes>): ReadableStream<Bytes> {
  return new ReadableStream<Bytes>({
    async pull(controller) {
      const next = await chunks.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await chunks.return(undefined);
    },
  });
}
