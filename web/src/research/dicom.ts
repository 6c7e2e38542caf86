// DICOM de-identification for a research study, made in the page: Python's PS3.15 Annex E Basic
// Profile (kizuna/storage/attachments.py deidentify_dicom, with the study's UID key:
// kizuna/research/deidentify.py deidentify_dicom_for_study), which uses pydicom; here a small
// Part 10 reader and writer of its own.
//
// The profile's tables are NOT kept here: dicom_rules.generated.json is written from the Python
// module (and pydicom's dictionary) by tests/research/deidentify_vectors.py, and a test fails
// while it is stale: each tag's action (X remove, Z empty, D dummy value, U new UID), the dummy
// values, the dictionary VRs this reader needs (every SQ and PN tag, and the profile's own: an
// implicit VR file does not carry them, and pydicom reads a known tag stored as UN as its
// dictionary VR), the transfer syntaxes, what pydicom completes in a file meta header, and
// what the profile records in the copy. What is here is the walk, which follows
// _deidentify_dataset step by step:
//
//   * private attributes (odd groups), curves (50xx) and overlay comments (60xx,4000): removed;
//   * each attribute of the table: removed, emptied, a dummy value, or its UIDs replaced by the
//     study's (2.25. + HMAC of the UID: Deidentifier.uid, the same as ImagingStudy's copy);
//   * any other person's name with a value: the dummy (stricter than the table);
//   * sequences: the same inside every item, at every depth;
//   * a file flagged BurnedInAnnotation = YES is refused, as Python refuses it;
//   * the file meta header follows the new SOP instance UID, loses the source AE title and is
//     completed as pydicom completes it; PatientIdentityRemoved and the method are recorded.
//
// The copy is written as pydicom writes it: elements in tag order, the input's transfer syntax
// and preamble, lengths recomputed, defined and undefined lengths kept as the input had them,
// odd values padded (UIDs with NUL, text with a space), no retired group lengths past the file
// meta. Values the profile does not touch keep
// their bytes. On files pydicom itself wrote the copy is byte for byte Python's
// (tests/vectors/deidentify_dicom.json); where pydicom would normalise a value it re-reads (a
// text with extra trailing spaces, a known tag stored as UN that is not in the rules' VR table)
// the page keeps the original bytes: the same attributes and values once read, not the same bytes.
//
// Read here: implicit and explicit VR little endian, and the encapsulated (compressed) syntaxes,
// whose pixel data is kept as it is. Refused with DicomUnsupported, naming why: big endian,
// deflated, a transfer syntax pydicom does not know, a file without the Part 10 header, a
// sequence stored as UN, a file whose VRs are not what its transfer syntax says. pydicom reads
// these (and files cut short); the command line is the way for them.

import { asciiBytes, concatBytes, type Bytes } from "../core/bytes.ts";
import { InputError } from "../core/errors.ts";
import { Deidentifier, type StudyKey } from "./deidentify.ts";
import RULES from "./dicom_rules.generated.json" with { type: "json" };

const ACTIONS: Readonly<Record<string, string>> = RULES.actions;
const DUMMY: Readonly<Record<string, string>> = RULES.dummy;
const DICTIONARY_VR: Readonly<Record<string, string>> = RULES.vr;
const SYNTAXES: Readonly<Record<string, string>> = RULES.transfer_syntaxes;

/** pydicom's VRs whose explicit length field is 16 bits (valuerep.EXPLICIT_VR_LENGTH_16). */
const SHORT_VRS = new Set(["AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"]);
const LONG_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]);
const UNDEFINED = 0xffffffff;
const ITEM = 0xfffee000, ITEM_END = 0xfffee00d, SEQUENCE_END = 0xfffee0dd;
const PIXEL_DATA = 0x7fe00010;
const MAX_DEPTH = 32;
const BURNED_IN = 0x00280301, SOP_CLASS = 0x00080016, SOP_INSTANCE = 0x00080018;
const IDENTITY_REMOVED = 0x00120062, METHOD = 0x00120063, METHOD_CODES = 0x00120064;
const CODE_TAGS: Record<string, [number, string]> = {
  CodeValue: [0x00080100, "SH"], CodingSchemeDesignator: [0x00080102, "SH"], CodeMeaning: [0x00080104, "LO"],
};
const META = {
  groupLength: 0x00020000, version: 0x00020001, sopClass: 0x00020002, sopInstance: 0x00020003,
  syntax: 0x00020010, implementationClass: 0x00020012, implementationVersion: 0x00020013, sourceTitle: 0x00020016,
};

/** A file the page does not read (Python's profile may): which, and why. The command line can. */
export class DicomUnsupported extends InputError {
  override name = "DicomUnsupported";

  constructor(reason: string) {
    super("file", reason);
  }
}

type Item = { elements: Element[]; undefinedLength: boolean };
/** One data element: `vr` null for an implicit VR element whose tag the rules do not type
 * (its bytes are kept as they are); `items` for a sequence; `encapsulated` pixel data keeps
 * its fragments as they are. */
type Element = { tag: number; vr: string | null; value: Uint8Array; items: Item[] | null; undefinedLength: boolean; encapsulated?: true };

const hexTag = (tag: number) => tag.toString(16).toUpperCase().padStart(8, "0");
const named = (tag: number) => `(${hexTag(tag).slice(0, 4)},${hexTag(tag).slice(4)})`;
const latin1 = new TextDecoder("latin1");
/** A value as pydicom reads a string: trailing NULs and spaces are padding. */
const text = (value: Uint8Array) => latin1.decode(value).replace(/[\0 ]+$/, "");

class Reader {
  readonly view: DataView;
  readonly bytes: Uint8Array;
  readonly implicit: boolean;

  constructor(bytes: Uint8Array, implicit: boolean) {
    this.bytes = bytes;
    this.implicit = implicit;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  need(pos: number, length: number): void {
    if (pos + length > this.bytes.length) throw new InputError("file", "not a readable DICOM file: it is cut short (the file is incomplete)");
  }

  tag(pos: number): number {
    this.need(pos, 4);
    return ((this.view.getUint16(pos, true) << 16) | this.view.getUint16(pos + 2, true)) >>> 0;
  }

  /** Elements from `pos` until `end`, or until an item's end marker when `end` is null. */
  dataset(pos: number, end: number | null, depth: number, implicit = this.implicit): [Element[], number] {
    if (depth > MAX_DEPTH) throw new InputError("file", "not a readable DICOM file: sequences nested too deeply");
    const elements: Element[] = [];
    while (end === null || pos < end) {
      const tag = this.tag(pos);
      if (end === null && tag === ITEM_END) return [elements, pos + 8];
      const [element, next] = this.element(pos, tag, depth, implicit);
      elements.push(element);
      pos = next;
      if (end === null && pos >= this.bytes.length) this.need(pos, 8);
    }
    if (pos !== end) throw new InputError("file", "not a readable DICOM file: an item's length does not match its elements");
    return [elements, pos];
  }

  element(pos: number, tag: number, depth: number, implicit: boolean): [Element, number] {
    let vr: string | null, length: number, start: number;
    if (implicit) {
      this.need(pos, 8);
      vr = DICTIONARY_VR[hexTag(tag)] ?? null;
      length = this.view.getUint32(pos + 4, true);
      start = pos + 8;
    } else {
      this.need(pos, 8);
      vr = String.fromCharCode(this.bytes[pos + 4]!, this.bytes[pos + 5]!);
      if (LONG_VRS.has(vr)) {
        this.need(pos, 12);
        length = this.view.getUint32(pos + 8, true);
        start = pos + 12;
      } else if (SHORT_VRS.has(vr)) {
        length = this.view.getUint16(pos + 6, true);
        start = pos + 8;
      } else throw new DicomUnsupported(`element ${named(tag)} has no valid VR (the file says explicit VR; it may be implicit)`);
    }
    const isPrivate = (tag >>> 16) % 2 === 1;
    if (vr === "UN" && !isPrivate && DICTIONARY_VR[hexTag(tag)]) {
      vr = DICTIONARY_VR[hexTag(tag)]!; // pydicom reads a known tag stored as UN as its own VR
      if (vr === "SQ") throw new DicomUnsupported(`element ${named(tag)} is a sequence stored with an unknown VR (UN), which the page does not rewrite`);
    }
    if (tag === PIXEL_DATA && length === UNDEFINED) return this.encapsulated(tag, vr, start);
    const sequence = vr === "SQ" || (length === UNDEFINED && (implicit || vr === "UN"));
    if (sequence) {
      if (!isPrivate && vr !== "SQ") throw new DicomUnsupported(`element ${named(tag)} of unknown VR has an undefined length`);
      // UN of undefined length: pydicom reads its items as implicit VR (they are removed here: private)
      const inner = implicit || vr === "UN";
      const [items, next] = this.items(start, length === UNDEFINED ? null : start + length, depth, inner);
      return [{ tag, vr, value: new Uint8Array(0), items, undefinedLength: length === UNDEFINED }, next];
    }
    if (length === UNDEFINED) throw new InputError("file", `not a readable DICOM file: element ${named(tag)} has an undefined length`);
    this.need(start, length);
    return [{ tag, vr, value: this.bytes.subarray(start, start + length), items: null, undefinedLength: false }, start + length];
  }

  items(pos: number, end: number | null, depth: number, implicit: boolean): [Item[], number] {
    const items: Item[] = [];
    while (end === null || pos < end) {
      const tag = this.tag(pos);
      this.need(pos, 8);
      const length = this.view.getUint32(pos + 4, true);
      if (end === null && tag === SEQUENCE_END) return [items, pos + 8];
      if (tag !== ITEM) throw new InputError("file", "not a readable DICOM file: a sequence is malformed");
      const undefinedLength = length === UNDEFINED;
      const [elements, next] = this.dataset(pos + 8, undefinedLength ? null : pos + 8 + length, depth + 1, implicit);
      items.push({ elements, undefinedLength });
      pos = next;
    }
    if (pos !== end) throw new InputError("file", "not a readable DICOM file: a sequence's length does not match its items");
    return [items, pos];
  }

  /** Compressed pixel data: its items (offset table, fragments) kept as they are. */
  encapsulated(tag: number, vr: string | null, start: number): [Element, number] {
    let pos = start;
    for (;;) {
      const item = this.tag(pos);
      this.need(pos, 8);
      const length = this.view.getUint32(pos + 4, true);
      if (item === SEQUENCE_END) {
        return [{ tag, vr, value: this.bytes.subarray(start, pos), items: null, undefinedLength: true, encapsulated: true }, pos + 8];
      }
      if (item !== ITEM || length === UNDEFINED) throw new InputError("file", "not a readable DICOM file: the compressed pixel data is malformed");
      this.need(pos + 8, length);
      pos += 8 + length;
    }
  }
}

/** Values as pydicom writes them: an odd length padded, UIDs and bytes with NUL, text with a space. */
function padded(value: string, vr: string | null): Uint8Array {
  const bytes = asciiBytes(value, "value");
  if (bytes.length % 2 === 0) return bytes;
  return concatBytes(bytes, Uint8Array.of(vr === "UI" ? 0 : 0x20));
}

class Profile {
  readonly #deid: Deidentifier;
  readonly #uids = new Map<string, string>();

  constructor(key: StudyKey) {
    this.#deid = new Deidentifier(key);
  }

  uid(uid: string): string {
    let found = this.#uids.get(uid);
    if (found === undefined) {
      found = this.#deid.uid(uid);
      this.#uids.set(uid, found);
    }
    return found;
  }

  /** _deidentify_dataset, in place (keep_dates off: a study copy keeps no true date). */
  dataset(elements: Element[]): Element[] {
    const out: Element[] = [];
    for (const element of elements) {
      const tag = element.tag, group = tag >>> 16;
      if (group % 2 === 1 || (group >= 0x5000 && group <= 0x50ff && group % 2 === 0) ||
        (group >= 0x6000 && group <= 0x60ff && group % 2 === 0 && (tag & 0xffff) === 0x4000)) continue;
      let action = ACTIONS[hexTag(tag)];
      if (action === undefined && element.vr === "PN" && text(element.value)) action = "D";
      if (action === undefined) {
        if (element.items) for (const item of element.items) item.elements = this.dataset(item.elements);
        out.push(element);
        continue;
      }
      if (action === "X") continue;
      if (action === "Z") {
        out.push({ tag, vr: element.vr, value: new Uint8Array(0), items: element.vr === "SQ" ? [] : null, undefinedLength: false });
      } else if (action === "D") {
        out.push({ tag, vr: element.vr, value: padded(DUMMY[element.vr ?? ""] ?? RULES.dummy_default, element.vr), items: null, undefinedLength: false });
      } else if (action === "U" && text(element.value)) {
        const uids = text(element.value).split("\\").map((u) => this.uid(u));
        out.push({ ...element, value: padded(uids.join("\\"), "UI") });
      } else out.push(element);
    }
    return out;
  }
}

function set(elements: Element[], tag: number, vr: string, value: Uint8Array | Item[]): void {
  const found = elements.find((e) => e.tag === tag);
  const items = Array.isArray(value) ? value : null;
  const bytes = Array.isArray(value) ? new Uint8Array(0) : value;
  // pydicom keeps an existing element's VR and length form and replaces its value
  if (found) Object.assign(found, { value: bytes, items });
  else elements.push({ tag, vr, value: bytes, items, undefinedLength: false });
}

const stringOf = (elements: Element[], tag: number) => {
  const found = elements.find((e) => e.tag === tag);
  return found ? text(found.value) : undefined;
};

class Writer {
  readonly #parts: Uint8Array[] = [];
  readonly implicit: boolean;

  constructor(implicit: boolean) {
    this.implicit = implicit;
  }

  u16(value: number): void {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, value, true);
    this.#parts.push(b);
  }

  u32(value: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value, true);
    this.#parts.push(b);
  }

  tag(tag: number): void {
    this.u16(tag >>> 16);
    this.u16(tag & 0xffff);
  }

  raw(bytes: Uint8Array): void {
    this.#parts.push(bytes);
  }

  bytes(): Bytes {
    return concatBytes(...this.#parts);
  }

  dataset(elements: readonly Element[]): void {
    for (const element of [...elements].sort((a, b) => a.tag - b.tag)) {
      // pydicom does not write the retired group lengths (gggg,0000) past the file meta (PS3.5 7.2)
      if ((element.tag & 0xffff) === 0 && element.tag >>> 16 > 6) continue;
      this.element(element);
    }
  }

  element(element: Element): void {
    let body: Uint8Array;
    if (element.items) {
      const inner = new Writer(this.implicit);
      for (const item of element.items) {
        const content = new Writer(this.implicit);
        content.dataset(item.elements);
        const bytes = content.bytes();
        inner.tag(ITEM);
        inner.u32(item.undefinedLength ? UNDEFINED : bytes.length);
        inner.raw(bytes);
        if (item.undefinedLength) { inner.tag(ITEM_END); inner.u32(0); }
      }
      body = inner.bytes();
    } else body = element.value;
    const undefinedLength = element.undefinedLength;
    this.tag(element.tag);
    if (!this.implicit) {
      let vr = element.vr ?? "UN";
      if (!LONG_VRS.has(vr) && !undefinedLength && body.length > 0xffff) vr = "UN"; // as pydicom does
      this.raw(asciiBytes(vr, "vr"));
      if (LONG_VRS.has(vr)) { this.u16(0); this.u32(undefinedLength ? UNDEFINED : body.length); }
      else this.u16(body.length);
    } else this.u32(undefinedLength ? UNDEFINED : body.length);
    this.raw(body);
    if (undefinedLength) { this.tag(SEQUENCE_END); this.u32(0); }
  }
}

/** The Part 10 header: the preamble, the file meta elements (always explicit VR little endian)
 * and where the dataset starts. */
function readHeader(bytes: Uint8Array): { preamble: Uint8Array; meta: Element[]; start: number } {
  if (bytes.length < 132 || latin1.decode(bytes.subarray(128, 132)) !== "DICM") {
    throw new DicomUnsupported("not a DICOM Part 10 file (no DICM header after the 128-byte preamble)");
  }
  const reader = new Reader(bytes, false);
  const meta: Element[] = [];
  let pos = 132;
  while (pos + 4 <= bytes.length && reader.tag(pos) >>> 16 === 0x0002) {
    const [element, next] = reader.element(pos, reader.tag(pos), 0, false);
    meta.push(element);
    pos = next;
  }
  return { preamble: bytes.subarray(0, 128), meta, start: pos };
}

/** One DICOM file through the Basic Profile for a study (deidentify_dicom_for_study). */
export function deidentifyDicom(content: Uint8Array, key: StudyKey): Bytes {
  const { preamble, meta, start } = readHeader(content);
  const syntax = stringOf(meta, META.syntax) ?? "";
  const encoding = SYNTAXES[syntax];
  if (encoding === undefined) {
    const why = syntax === "1.2.840.10008.1.2.2" ? "a big endian DICOM file" : syntax === "1.2.840.10008.1.2.1.99" ? "a deflated DICOM file"
      : syntax ? `a DICOM file of transfer syntax ${syntax}` : "a DICOM file without a transfer syntax";
    throw new DicomUnsupported(`${why}, which the page does not read`);
  }
  const implicit = encoding === "implicit";
  const [dataset] = new Reader(content, implicit).dataset(start, content.length, 0);
  if ((stringOf(dataset, BURNED_IN) ?? "").trim().toUpperCase() === "YES") {
    throw new InputError(RULES.burned_in.field, RULES.burned_in.reason);
  }
  const profile = new Profile(key);
  const elements = profile.dataset(dataset);
  set(elements, IDENTITY_REMOVED, "CS", padded(RULES.patient_identity_removed, "CS"));
  set(elements, METHOD, "LO", padded(RULES.method, "LO"));
  set(elements, METHOD_CODES, "SQ", RULES.method_codes.map((code) => ({
    undefinedLength: false,
    elements: Object.entries(code).map(([keyword, value]) => {
      const [tag, vr] = CODE_TAGS[keyword]!;
      return { tag, vr, value: padded(value, vr), items: null, undefinedLength: false };
    }),
  })));
  return concatBytes(preamble, asciiBytes("DICM", "prefix"), fileMeta(meta, elements), datasetBytes(elements, implicit));
}

function datasetBytes(elements: Element[], implicit: boolean): Bytes {
  const writer = new Writer(implicit);
  writer.dataset(elements);
  return writer.bytes();
}

/** _fix_file_meta, then what pydicom's save_as(enforce_file_format=True) completes and checks. */
function fileMeta(meta: Element[], dataset: Element[]): Bytes {
  let out = meta.filter((e) => e.tag !== META.sourceTitle && e.tag !== META.groupLength);
  const instance = dataset.find((e) => e.tag === SOP_INSTANCE);
  if (instance) set(out, META.sopInstance, "UI", padded(text(instance.value), "UI"));
  const sopClass = dataset.find((e) => e.tag === SOP_CLASS);
  if (!stringOf(out, META.sopClass) && sopClass) set(out, META.sopClass, "UI", padded(text(sopClass.value), "UI"));
  const empty = (tag: number) => !out.some((e) => e.tag === tag && e.value.length > 0);
  if (empty(META.version)) set(out, META.version, "OB", Uint8Array.of(0, 1));
  if (empty(META.implementationClass)) set(out, META.implementationClass, "UI", padded(RULES.implementation_class_uid, "UI"));
  if (!out.some((e) => e.tag === META.implementationVersion)) {
    set(out, META.implementationVersion, "SH", padded(RULES.implementation_version_name, "SH"));
  }
  const missing = [META.sopClass, META.sopInstance, META.syntax].filter(empty);
  if (missing.length) {
    throw new InputError("file", `cannot write the de-identified DICOM file: the file meta information lacks ${missing.map(named).join(", ")}`);
  }
  out = out.sort((a, b) => a.tag - b.tag);
  const body = datasetBytes(out, false);
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, body.length, true);
  return concatBytes(datasetBytes([{ tag: META.groupLength, vr: "UL", value: length, items: null, undefinedLength: false }], false), body);
}
