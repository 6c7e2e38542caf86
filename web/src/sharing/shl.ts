// SMART Health Links made in the page (kizuna/sharing/shl.py and share.py; the HL7 SMART Health
// Cards and Links IG): the link's key is made HERE and never reaches the service, which keeps
// only the encrypted files (JWE) and the link's rules (expiry, passcode, attempts).
//
//   shlink:/ + base64url(JSON {url, key, exp?, flag?, label?, v: 1})
//   JWE compact, alg "dir", enc "A256GCM" under the key (the protected header's base64url is
//   the additional authenticated data), content DEFLATEd first (zip "DEF", CompressionStream
//   "deflate-raw": FHIR JSON shrinks about tenfold).
//
// tests/web/test_shl_parity.py: a link made here is opened by tests/sharing/shl_reader.py, a
// reader written from the IG that shares no code with Kizuna.

import type { Api, ApiOptions, Schemas } from "../api/client.ts";
import { ok } from "../api/client.ts";
import { utf8Encode, type Bytes } from "../core/bytes.ts";
import { InputError } from "../core/errors.ts";

export type LinkInfo = Schemas["LinkOut"];

export const SCHEME = "shlink:/";
export const KEY_BYTES = 32;
export const MAX_LABEL = 80;
export const FHIR_JSON = "application/fhir+json";

export function b64url(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function deflateRaw(data: Uint8Array): Promise<Bytes> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** `plaintext` as a compact JWE (dir + A256GCM) under `key` (encrypt_jwe). */
export async function encryptJwe(plaintext: Uint8Array, key: Uint8Array, o: { contentType: string; compress?: boolean }): Promise<string> {
  if (key.length !== KEY_BYTES) throw new InputError("key", `must be ${KEY_BYTES} bytes`);
  const compress = o.compress ?? true;
  const fields: Record<string, string> = { alg: "dir", enc: "A256GCM", cty: o.contentType };
  if (compress) fields.zip = "DEF";
  const header = b64url(utf8Encode(JSON.stringify(fields)));
  const body = compress ? await deflateRaw(plaintext) : plaintext;
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const aes = await crypto.subtle.importKey("raw", key as Uint8Array<ArrayBuffer>, "AES-GCM", false, ["encrypt"]);
  const sealed = new Uint8Array(await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: utf8Encode(header), tagLength: 128 }, aes, body as Uint8Array<ArrayBuffer>));
  return [header, "", b64url(iv), b64url(sealed.subarray(0, -16)), b64url(sealed.subarray(-16))].join(".");
}

export type LinkPayload = { url: string; key: Uint8Array; exp?: number | null; flag?: string; label?: string | null };

/** The link: shlink:/ + base64url of the payload JSON (LinkPayload.uri, the same key order). */
export function linkUri(p: LinkPayload): string {
  const body: Record<string, unknown> = { url: p.url, key: b64url(p.key) };
  if (p.exp !== undefined && p.exp !== null) body.exp = p.exp;
  if (p.flag) body.flag = p.flag;
  if (p.label) body.label = p.label;
  body.v = 1;
  return SCHEME + b64url(utf8Encode(JSON.stringify(body)));
}

export type NewLink = {
  /** FHIR JSON documents (an IPS Bundle, or chosen resources as a collection Bundle): one file each. */
  documents: ReadonlyArray<object>;
  label?: string | null;
  expiresAt?: number | null;
  passcode?: string | null;
  maxAttempts?: number;
};

export type MadeLink = { uri: string; link: LinkInfo };

/** Links of the signed-in patient: made (files encrypted here), listed with their accesses, revoked. */
export class Links {
  readonly #api: Api;
  /** Where readers reach the service (the manifest URL's origin): the page's own by default. */
  readonly #publicBase: string;

  constructor(o: { api: Api; apiOptions: ApiOptions; publicBase?: string }) {
    this.#api = o.api;
    this.#publicBase = o.publicBase ?? (o.apiOptions.baseUrl || globalThis.location?.origin || "");
  }

  async make(o: NewLink): Promise<MadeLink> {
    if (o.documents.length === 0) throw new InputError("documents", "nothing to share");
    const label = o.label?.trim() || null;
    if (label && label.length > MAX_LABEL) throw new InputError("label", `at most ${MAX_LABEL} characters`);
    const passcode = o.passcode || null;
    if (passcode !== null && (passcode.length < 4 || passcode.length > 128)) throw new InputError("passcode", "4 to 128 characters");
    if (!/^https?:\/\//.test(this.#publicBase)) throw new InputError("url", `${JSON.stringify(this.#publicBase)} is not an http(s) address readers can reach`);
    const key = crypto.getRandomValues(new Uint8Array(KEY_BYTES));
    const files = await Promise.all(o.documents.map(async (d) => ({
      content_type: FHIR_JSON, jwe: await encryptJwe(utf8Encode(JSON.stringify(d)), key, { contentType: FHIR_JSON }),
    })));
    const link = ok(await this.#api.POST("/patient/links", { body: {
      files, label, expires_at: o.expiresAt ?? null, passcode, max_attempts: o.maxAttempts ?? 5, direct: false,
    } }));
    const uri = linkUri({ url: this.#publicBase.replace(/\/+$/, "") + link.path, key, exp: o.expiresAt ?? null, flag: link.flag, label });
    key.fill(0);
    return { uri, link };
  }

  async list(): Promise<LinkInfo[]> {
    return ok(await this.#api.GET("/patient/links"));
  }

  async revoke(linkId: string): Promise<void> {
    // A refusal (404: not this patient's link) is thrown as an ApiError by the client.
    await this.#api.DELETE("/patient/links/{link_id}", { params: { path: { link_id: linkId } } });
  }
}
