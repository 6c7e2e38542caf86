// De-identification of a patient's FHIR resources for a research study, made in the page: a
// port of kizuna/research/deidentify.py, byte for byte (tests/vectors/deidentify.json, written
// by Python, is checked in Node by web/test/deidentify.test.ts and in Chromium by
// tests/web/test_web_deidentify.py; a whole Synthea life by tests/web/test_web_deidentify_parity.py).
//
// The rules' tables (the keys dropped, the types never shared, the date patterns, the HKDF salt
// and info, the age group) are NOT kept here: rules.generated.json is written from the Python
// module by tests/research/deidentify_vectors.py, and a test fails while it is stale. What is
// here is the walk, which follows Python's step by step (read deidentify.py's module text for
// the why of each rule):
//
//   * names, identifiers, addresses, telecom, photos, contacts, free text, a Reference's display,
//     string-like value[x], attachments' data and URLs: removed;
//   * resource ids and references: pseudonyms, a UUID from HMAC-SHA256(study key, original id);
//   * Practitioner, Organization, Location, RelatedPerson, Person, PractitionerRole: not shared;
//   * every date moved by the patient's offset for this study (HKDF of their decrypting key);
//   * ages of 90 or more: a Patient's birth date becomes the age group "90+", an Age ">= 90".
//
// Python's own behaviour is kept where JavaScript would differ: `\d` and int() take any Unicode
// decimal digit, `$` also matches before a final newline, decimals are Python floats (72.0 stays
// "72.0", 1.50 becomes "1.5"), integers keep every digit, and an empty list inside a list stays.
//
// DICOM is in dicom.ts (the PS3.15 Basic Profile of kizuna/storage/attachments.py, with the
// study's UIDs from Deidentifier.uid here), loaded by consent.ts only when a DICOM file is chosen.

import { hmac } from "@noble/hashes/hmac";
import { sha256 } from "@noble/hashes/sha2";
import { asciiBytes, concatBytes, utf8Encode, type Bytes } from "../core/bytes.ts";
import { InputError } from "../core/errors.ts";
import { hkdfSha256 } from "../core/kdf.ts";
import { isObject, JsonNumber, type Json, type JsonObject } from "../importer/json.ts";
import RULES from "./rules.generated.json" with { type: "json" };

export const AGE_GROUP_URL: string = RULES.age_group_url;
export const NOT_SHARED: ReadonlySet<string> = new Set(RULES.not_shared);
const DROP: ReadonlySet<string> = new Set(RULES.drop);
const UCUM = RULES.ucum;
const MAX_SHIFT_DAYS = RULES.max_shift_days;
const HKDF_SALT = asciiBytes(RULES.hkdf_salt, "salt");
const INFO_STUDY_KEY = asciiBytes(RULES.info_study_key, "info");
const DICOM_UID_PREFIX = asciiBytes(RULES.dicom_uid_prefix, "prefix");

/** A Python `re` pattern as a JavaScript one with Python's meaning: `\d` is any Unicode decimal
 * digit (str patterns are Unicode in Python), and `$` also matches before one final newline. */
function pythonPattern(rule: { pattern: string; ignore_case: boolean }): RegExp {
  let source = rule.pattern.replaceAll("\\d", "\\p{Nd}");
  if (source.endsWith("$")) source = `${source.slice(0, -1)}(?=\\n?$)`;
  return new RegExp(source, rule.ignore_case ? "iu" : "u");
}

const DATE = pythonPattern(RULES.date);
const DATE_KEY = pythonPattern(RULES.date_key);
const ND = /\p{Nd}/u;

/** Python's int() of a run of Unicode decimal digits. Every Unicode digit set is ten
 * consecutive code points from 0 to 9, so a digit's value is how many digits precede it in its
 * run of consecutive digits, modulo ten. */
function pyInt(text: string): number {
  let value = 0;
  for (const ch of text) {
    let code = ch.codePointAt(0)!;
    if (code >= 0x30 && code <= 0x39) { // ASCII: nearly every date
      value = value * 10 + code - 0x30;
      continue;
    }
    let digit = 0;
    while (ND.test(String.fromCodePoint(code - 1))) {
      code -= 1;
      digit += 1;
    }
    value = value * 10 + (digit % 10);
  }
  return value;
}

/** What one patient de-identifies with for one study (secret: never sent, never logged). */
export class StudyKey {
  readonly offsetDays: number;
  readonly #pseudonymKey: Bytes;

  constructor(offsetDays: number, pseudonymKey: Bytes) {
    this.offsetDays = offsetDays;
    this.#pseudonymKey = pseudonymKey;
  }

  /** The 32-byte pseudonym key (the vectors' check only). */
  revealPseudonymKey(): Bytes {
    return this.#pseudonymKey;
  }

  hmac(data: Uint8Array): Uint8Array {
    return hmac(sha256, this.#pseudonymKey, data);
  }

  toString(): string {
    return "StudyKey(<secret>)";
  }

  toJSON(): string {
    return this.toString();
  }
}

/** study_key: HKDF-SHA256(ikm = the decrypting key's 32-byte scalar, salt = the wallet keys'
 * salt, info = "kizuna/research-study/v1" ‖ study id, 36 bytes): 4 bytes make the day offset
 * (1..365 days earlier or later, never 0), 32 the pseudonym key. */
export async function studyKey(decryptingKeyScalar: Uint8Array, studyId: Uint8Array): Promise<StudyKey> {
  if (!(studyId instanceof Uint8Array) || studyId.length !== 32) {
    throw new InputError("study_id", `must be 32 bytes, got ${studyId?.length}`);
  }
  const okm = await hkdfSha256(decryptingKeyScalar, HKDF_SALT, concatBytes(INFO_STUDY_KEY, studyId), 36);
  const n = new DataView(okm.buffer, okm.byteOffset, 4).getUint32(0) % (2 * MAX_SHIFT_DAYS);
  const offset = n < MAX_SHIFT_DAYS ? -(n + 1) : n - MAX_SHIFT_DAYS + 1;
  const key = new StudyKey(offset, okm.slice(4));
  okm.fill(0);
  return key;
}

// -- the calendar (Python's datetime.date: proleptic Gregorian, years 1 to 9999) -------------

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Days since 0000-03-01 (Howard Hinnant's days_from_civil), for any year. */
function dayNumber(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  return era * 146097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
}

function fromDayNumber(z: number): [number, number, number] {
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (month <= 2 ? 1 : 0), month, day];
}

/** date(year, month, day) + days, or null where Python raises (not a calendar date, or
 * outside years 1..9999). */
function shifted(year: number, month: number, day: number, days: number): [number, number, number] | null {
  if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  const moved = fromDayNumber(dayNumber(year, month, day) + days);
  return moved[0] < 1 || moved[0] > 9999 ? null : moved;
}

const pad = (n: number, width: number) => String(n).padStart(width, "0");

// -- numbers as Python reads and writes them --------------------------------------------------

/** Python's repr() of the float a JSON decimal literal reads as (json.loads), as the literal
 * the canonical writer then expands: shortest round-trip digits, fixed notation when the
 * decimal point falls within 16 digits (with ".0" when integral), exponent form otherwise. */
export function pyFloatLiteral(literal: string, field: string): JsonNumber {
  const x = Number(literal);
  if (!Number.isFinite(x)) throw new InputError(field, `${literal} is not a JSON number a Python float can hold`);
  if (x === 0) return new JsonNumber(Object.is(x, -0) ? "-0.0" : "0.0");
  const [mantissa = "", exponent = "0"] = Math.abs(x).toExponential().split("e");
  const digits = mantissa.replace(".", "");
  const point = Number(exponent) + 1; // digits = 0.d1d2... × 10^point
  const sign = x < 0 ? "-" : "";
  let text: string;
  if (point <= -4 || point > 16) text = `${digits}e${point - digits.length}`;
  else if (point <= 0) text = `0.${"0".repeat(-point)}${digits}`;
  else if (point >= digits.length) text = `${digits}${"0".repeat(point - digits.length)}.0`;
  else text = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return new JsonNumber(sign + text);
}

// -- the walk ---------------------------------------------------------------------------------

type Out = Json | undefined;

export class Deidentifier {
  readonly #key: StudyKey;
  readonly #types: Map<string, string>;
  readonly #asOf: [number, number, number];
  readonly #seen = new Map<string, string>();

  /** `types` maps the patient's resource ids (and urn:uuid: full URLs) to their types, so that
   * urn:uuid: references come out as Type/pseudonym; `asOf` ("YYYY-MM-DD", today in UTC by
   * default) is the day ages are computed at. */
  constructor(key: StudyKey, options: { types?: Map<string, string> | Record<string, string>; asOf?: string } = {}) {
    this.#key = key;
    const types = options.types ?? {};
    this.#types = types instanceof Map ? new Map(types) : new Map(Object.entries(types));
    const asOf = options.asOf ?? new Date().toISOString().slice(0, 10);
    const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(asOf);
    if (!match) throw new InputError("as_of", `must be a date YYYY-MM-DD, got ${asOf}`);
    this.#asOf = [Number(match[1]), Number(match[2]), Number(match[3])];
  }

  get offsetDays(): number {
    return this.#key.offsetDays;
  }

  /** The study copy's id for an original id: a version-4 UUID of HMAC-SHA256(pseudonym key, id). */
  pseudonym(originalId: string): string {
    let found = this.#seen.get(originalId);
    if (found === undefined) {
      const b = this.#key.hmac(strictUtf8(originalId, "id")).slice(0, 16);
      b[6] = (b[6]! & 0x0f) | 0x40;
      b[8] = (b[8]! & 0x3f) | 0x80;
      const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
      found = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
      this.#seen.set(originalId, found);
    }
    return found;
  }

  /** A DICOM UID's study copy: "2.25." and the first 128 bits of HMAC-SHA256(pseudonym key,
   * "dicom-uid:" ‖ UID) in decimal (Python's StudyUidMap; ImagingStudy's uids). */
  uid(uid: string): string {
    const digest = this.#key.hmac(concatBytes(DICOM_UID_PREFIX, strictUtf8(uid, "uid"))).slice(0, 16);
    let value = 0n;
    for (const byte of digest) value = (value << 8n) | BigInt(byte);
    return `2.25.${value}`;
  }

  /** The de-identified copy of one resource, or null for a type never shared. */
  resource(resource: JsonObject): JsonObject | null {
    const kind = resource["resourceType"];
    if (typeof kind !== "string") throw new InputError("resourceType", "missing: not a FHIR resource");
    if (NOT_SHARED.has(kind)) return null;
    const out = this.#object(resource);
    if (out === undefined) throw new InputError("resourceType", "nothing of the resource is left to share");
    const id = resource["id"];
    if (typeof id === "string") out["id"] = this.pseudonym(id);
    out["meta"] = { security: [{ ...RULES.deidentified_tag }] };
    if (kind === "Patient") this.#groupAge(resource, out);
    return out;
  }

  #walk(value: Json, key: string): Out {
    if (Array.isArray(value)) {
      const items: Json[] = [];
      for (const item of value) {
        const walked = this.#walk(item, key);
        // Python drops None and {} from lists (an empty list stays)
        if (walked === undefined || walked === null) continue;
        if (isObject(walked) && Object.keys(walked).length === 0) continue;
        items.push(walked);
      }
      return items;
    }
    if (typeof value === "string") return this.#string(value, key);
    if (value instanceof JsonNumber) return value.isInteger ? value : pyFloatLiteral(value.text, key);
    if (isObject(value)) return this.#object(value);
    return value;
  }

  #object(obj: JsonObject): JsonObject | undefined {
    if (Object.hasOwn(obj, "contentType") && (Object.hasOwn(obj, "data") || Object.hasOwn(obj, "url"))) {
      // An Attachment: its content (notes, scans) and its link go; the kind stays.
      return { contentType: this.#walkKept(obj["contentType"]!) };
    }
    const out: JsonObject = {};
    const isCoding = Object.hasOwn(obj, "system") && Object.hasOwn(obj, "code");
    for (const [k, v] of Object.entries(obj)) {
      if (DROP.has(k) || (k === "display" && !isCoding) || k === "meta") continue;
      if (k === "reference" && typeof v === "string") {
        out[k] = this.#reference(v);
        continue;
      }
      if (k === "uid" && typeof v === "string") {
        out[k] = this.uid(v);
        continue;
      }
      if (k === "id" || k === "fullUrl") continue; // element ids and the resource id (set by the caller)
      if (typeof v === "string") {
        out[k] = this.#string(v, k);
        continue;
      }
      if (!Array.isArray(v) && !isObject(v)) {
        out[k] = v instanceof JsonNumber && !v.isInteger ? pyFloatLiteral(v.text, k) : v; // numbers, booleans, null
        continue;
      }
      const walked = this.#walk(v, k);
      if (walked === undefined) continue;
      if (Array.isArray(walked) ? walked.length > 0 : Object.keys(walked as JsonObject).length > 0) out[k] = walked as Json;
    }
    const keys = Object.keys(out);
    if (keys.length === 1 && keys[0] === "url") return undefined; // an extension whose value was identifying
    if (out["system"] === UCUM && out["code"] === "a" && Object.hasOwn(out, "value")) capAge(out);
    return out;
  }

  /** A value Python keeps as it is (an attachment's contentType): numbers still read as floats. */
  #walkKept(value: Json): Json {
    return value instanceof JsonNumber && !value.isInteger ? pyFloatLiteral(value.text, "contentType") : value;
  }

  #string(value: string, key: string): string {
    const match = DATE.exec(value);
    if (match === null || (match[2] === undefined && !DATE_KEY.test(key))) return value;
    const [, year = "", month, day, time] = match;
    const moved = shifted(pyInt(year), month === undefined ? 1 : pyInt(month), day === undefined ? 1 : pyInt(day), this.#key.offsetDays);
    if (moved === null) return value; // not a calendar date after all (a code like 2024-13)
    if (day !== undefined) return `${pad(moved[0], 4)}-${pad(moved[1], 2)}-${pad(moved[2], 2)}${time ?? ""}`;
    if (month !== undefined) return `${pad(moved[0], 4)}-${pad(moved[1], 2)}`;
    return pad(moved[0], 4);
  }

  #reference(ref: string): string {
    if (ref.startsWith("#")) return ref; // a contained resource: local
    if (ref.startsWith("urn:uuid:")) {
      const original = ref.slice("urn:uuid:".length);
      const kind = this.#types.get(ref) || this.#types.get(original);
      return kind ? `${kind}/${this.pseudonym(original)}` : `urn:uuid:${this.pseudonym(original)}`;
    }
    const slash = ref.indexOf("/");
    let kind = slash < 0 ? ref : ref.slice(0, slash);
    const rest = slash < 0 ? "" : ref.slice(slash + 1);
    if (kind.includes("?")) { // a conditional reference, e.g. Practitioner?identifier=...|NPI
      kind = kind.slice(0, kind.indexOf("?"));
      return `${kind}/${this.pseudonym(ref)}`;
    }
    if (slash >= 0 && rest && !rest.includes("/")) return `${kind}/${this.pseudonym(rest)}`;
    return `urn:uuid:${this.pseudonym(ref)}`; // an absolute URL or a versioned reference
  }

  #groupAge(original: JsonObject, out: JsonObject): void {
    const born = original["birthDate"];
    const match = typeof born === "string" ? DATE.exec(born) : null;
    if (!match) return;
    let end = this.#asOf;
    const died = original["deceasedDateTime"];
    const d = typeof died === "string" ? DATE.exec(died) : null;
    if (d) {
      const when: [number, number, number] = [pyInt(d[1]!), d[2] ? pyInt(d[2]) : 1, d[3] ? pyInt(d[3]) : 1];
      if (shifted(...when, 0) === null) throw new InputError("deceasedDateTime", `${String(died)} is not a calendar date`);
      end = when;
    }
    const [year, month, day] = [pyInt(match[1]!), match[2] ? pyInt(match[2]) : 1, match[3] ? pyInt(match[3]) : 1];
    const age = end[0] - year - (end[1] < month || (end[1] === month && end[2] < day) ? 1 : 0);
    if (age >= 90) {
      delete out["birthDate"];
      const extension = Array.isArray(out["extension"]) ? out["extension"] : (out["extension"] = []) as Json[];
      extension.push({ url: AGE_GROUP_URL, valueCode: "90+" });
    }
  }
}

function capAge(age: JsonObject): void {
  const value = age["value"];
  if (value instanceof JsonNumber && Number(value.text) >= 90) {
    age["value"] = new JsonNumber("90");
    age["comparator"] = ">=";
  }
}

/** UTF-8 of a string Python can encode (a lone surrogate cannot: refused, naming the field). */
function strictUtf8(text: string, field: string): Bytes {
  if (/\p{Cs}/u.test(text)) throw new InputError(field, "a lone surrogate cannot be encoded as UTF-8");
  return utf8Encode(text);
}
