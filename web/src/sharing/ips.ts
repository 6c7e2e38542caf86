// The International Patient Summary (HL7 FHIR IPS, R4) built in the page, from the records
// decrypted here: the rules of kizuna/sharing/ips.py, ported one for one (the sections, what
// goes in each, the narrative lines, the urn:uuid: fullUrls and the reference rewriting), so
// the page's summary of a patient is the Python builder's. tests/web/test_web_ips.py builds
// both from the same Synthea records and compares them whole.
//
// Python's value rules are kept where JSON alone would differ in JavaScript: truthiness
// (`[]`, `{}`, `0` and `""` are "nothing"), `str()` of non-strings (None, True, numbers as
// Python prints them), html.escape of the narrative, code-point string order. One rule is
// NOT here: Kizuna's FHIR validation of each resource (kizuna/storage/fhir/validate.py), which
// the Python builder runs after the IPS structure checks; the page runs the structure checks
// (ipsIssues) only. The records were validated when they were added.

import { sha1 } from "@noble/hashes/legacy.js";
import { KizunaError } from "../core/errors.ts";
import type { FhirResource } from "../fhir/records.ts";

export const LOINC = "http://loinc.org";
export const EMPTY_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/list-empty-reason";
export const BUNDLE_PROFILE = "http://hl7.org/fhir/uv/ips/StructureDefinition/Bundle-uv-ips";
export const COMPOSITION_PROFILE = "http://hl7.org/fhir/uv/ips/StructureDefinition/Composition-uv-ips";
export const SUMMARY_CODE = "60591-5";
export const IDENTIFIER_SYSTEM = "urn:ietf:rfc:3986";
/** Names the fullUrl of a resource whose id is not a UUID (uuid5 of `Type/id`): ips.py _NAMESPACE. */
const NAMESPACE = "1b9f4f5e-6d0a-4c55-9a53-3f1c2a1d0e16";

type Json = unknown;
type Obj = Record<string, Json>;
export type IpsBundle = Obj & { resourceType: "Bundle"; id: string; timestamp: string; entry: Array<{ fullUrl: string; resource: Obj }> };

export type SectionKey = "problems" | "allergies" | "medications" | "immunizations" | "results" | "vital_signs";
export type Section = { key: SectionKey; title: string; code: string; display: string; required: boolean; types: ReadonlySet<string> };

export const SECTIONS: readonly Section[] = [
  { key: "problems", title: "Problems", code: "11450-4", display: "Problem list - Reported", required: true, types: new Set(["Condition"]) },
  { key: "allergies", title: "Allergies and intolerances", code: "48765-2", display: "Allergies and adverse reactions Document", required: true, types: new Set(["AllergyIntolerance"]) },
  { key: "medications", title: "Medications", code: "10160-0", display: "History of Medication use Narrative", required: true, types: new Set(["MedicationStatement", "MedicationRequest"]) },
  { key: "immunizations", title: "Immunizations", code: "11369-6", display: "History of Immunization Narrative", required: false, types: new Set(["Immunization"]) },
  { key: "results", title: "Results", code: "30954-2", display: "Relevant diagnostic tests/laboratory data Narrative", required: false, types: new Set(["Observation", "DiagnosticReport"]) },
  { key: "vital_signs", title: "Vital signs", code: "8716-3", display: "Vital signs", required: false, types: new Set(["Observation"]) },
];

const ACTIVE_CONDITION = new Set(["active", "recurrence", "relapse"]);
const ACTIVE_MEDICATION = new Set(["active", "on-hold", "intended"]);
const NOT_ALLERGIES = new Set(["refuted", "entered-in-error"]);

/** Why a summary cannot be made (no Patient) or is not a valid IPS: each (path, reason). */
export class IpsError extends KizunaError {
  readonly issues: ReadonlyArray<readonly [string, string]>;
  constructor(issues: ReadonlyArray<readonly [string, string]>) {
    super(issues.map(([path, reason]) => `${path}: ${reason}`).join("; "));
    this.issues = issues;
  }
}

// --- Python's value rules -----------------------------------------------------------------

function isObj(value: Json): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Python truthiness of a JSON value. */
function truthy(value: Json): boolean {
  if (Array.isArray(value)) return value.length > 0;
  if (isObj(value)) return Object.keys(value).length > 0;
  return Boolean(value);
}

/** `repr(float)`: the shortest round-trip digits (as JavaScript finds them), written fixed for
 *  exponents -4..15 and as `d.ddde±XX` otherwise; an integral float of JSON (`72.0`) is
 *  parsed by JavaScript as 72 and so printed as Python prints the int 72 (ips.py `_number`). */
function pyNumber(value: number): string {
  if (!Number.isFinite(value)) return value > 0 ? "inf" : value < 0 ? "-inf" : "nan";
  if (Number.isInteger(value) && Math.abs(value) < 1e16) return String(value);
  const [mantissa, exp] = value.toExponential().split("e") as [string, string];
  const e = Number(exp);
  if (e >= -4 && e < 16) {
    const negative = mantissa.startsWith("-");
    const digits = mantissa.replace("-", "").replace(".", "");
    let text: string;
    if (e < 0) text = "0." + "0".repeat(-e - 1) + digits;
    else if (digits.length > e + 1) text = digits.slice(0, e + 1) + "." + digits.slice(e + 1);
    else text = digits + "0".repeat(e + 1 - digits.length) + ".0";
    return (negative ? "-" : "") + text;
  }
  return `${mantissa}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
}

/** Python's `str()` of a JSON value (the builder's f-strings). */
function pyStr(value: Json): string {
  if (value === undefined || value === null) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return pyNumber(value);
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/** Python's string order (code points), not JavaScript's UTF-16 units. */
function pyCompare(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i += 1) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** html.escape(text, quote=True). */
function htmlEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#x27;");
}

// --- UUIDs (Python's uuid module) -----------------------------------------------------------

/** `str(uuid.UUID(text))`, or null where Python raises ValueError (the usual spellings: with
 *  or without hyphens, braces, a `urn:uuid:` prefix). */
function parseUuid(text: string): string | null {
  const hex = text.replaceAll("urn:", "").replaceAll("uuid:", "").replace(/^\{+|\}+$/g, "").replaceAll("-", "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return null;
  const h = hex.toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** uuid.uuid5(namespace, name) (RFC 4122: SHA-1 of the namespace's bytes and the UTF-8 name). */
export function uuid5(namespace: string, name: string): string {
  const ns = namespace.replaceAll("-", "");
  const nameBytes = new TextEncoder().encode(name);
  const data = new Uint8Array(16 + nameBytes.length);
  for (let i = 0; i < 16; i += 1) data[i] = parseInt(ns.slice(2 * i, 2 * i + 2), 16);
  data.set(nameBytes, 16);
  const hash = sha1(data).slice(0, 16);
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  return parseUuid([...hash].map((b) => b.toString(16).padStart(2, "0")).join(""))!;
}

// --- reading a resource -------------------------------------------------------------------

function codes(concept: Json): string[] {
  if (!isObj(concept)) return [];
  const coding = truthy(concept.coding) && Array.isArray(concept.coding) ? concept.coding : [];
  return coding.filter(isObj).map((c) => pyStr(c.code));
}

function categories(resource: Obj): Set<string> {
  const list = truthy(resource.category) && Array.isArray(resource.category) ? resource.category : [];
  return new Set(list.flatMap((concept) => codes(concept)));
}

/** What a person reads of a CodeableConcept: its text, else its first display, else code. */
export function conceptText(concept: Json): string {
  if (!isObj(concept)) return "";
  if (truthy(concept.text)) return pyStr(concept.text);
  const coding = truthy(concept.coding) && Array.isArray(concept.coding) ? concept.coding : [];
  for (const c of coding) {
    if (isObj(c) && (truthy(c.display) || truthy(c.code))) return pyStr(truthy(c.display) ? c.display : c.code);
  }
  return "";
}

const WHEN_KEYS = ["effectiveDateTime", "onsetDateTime", "occurrenceDateTime", "authoredOn", "recordedDate", "issued", "dateAsserted"];

/** The resource's clinically relevant date (the first of the usual fields), ISO text. */
function when(resource: Obj): string {
  for (const key of WHEN_KEYS) if (truthy(resource[key])) return pyStr(resource[key]);
  for (const key of ["effectivePeriod", "onsetPeriod"]) {
    const period = resource[key];
    if (isObj(period) && truthy(period.start)) return pyStr(period.start);
  }
  return "";
}

function value(resource: Obj): string {
  const quantity = resource.valueQuantity;
  if (isObj(quantity) && "value" in quantity) {
    const unit = truthy(quantity.unit) ? quantity.unit : truthy(quantity.code) ? quantity.code : "";
    return `${pyStr(quantity.value)} ${pyStr(unit)}`.trim();
  }
  if (truthy(resource.valueCodeableConcept)) return conceptText(resource.valueCodeableConcept);
  if (resource.valueString !== undefined && resource.valueString !== null) return pyStr(resource.valueString);
  const components = truthy(resource.component) && Array.isArray(resource.component) ? resource.component : [];
  const parts = components.filter(isObj).map((c) => `${conceptText(c.code)}: ${value(c)}`);
  return parts.filter((p) => !p.endsWith(": ")).join("; ");
}

function first10(text: string): string {
  return [...text].slice(0, 10).join("");
}

function referenceOf(value: Json): Json {
  return isObj(value) ? value.reference : undefined;
}

/** One line a person reads for an entry (the narrative and the page both use it). */
export function describe(resource: Obj, medications?: ReadonlyMap<string, Obj>): string {
  const kind = resource.resourceType;
  const date = first10(when(resource));
  if (kind === "Condition") {
    const text = conceptText(resource.code) || "condition";
    return date ? `${text} (since ${date})` : text;
  }
  if (kind === "AllergyIntolerance") {
    const text = conceptText(resource.code) || "allergy";
    return truthy(resource.criticality) ? `${text}, criticality ${pyStr(resource.criticality)}` : text;
  }
  if (kind === "MedicationRequest" || kind === "MedicationStatement") {
    let text = conceptText(resource.medicationCodeableConcept);
    const ref = referenceOf(truthy(resource.medicationReference) ? resource.medicationReference : {});
    if (!text && medications !== undefined && typeof ref === "string" && medications.has(ref)) text = conceptText(medications.get(ref)!.code);
    return date ? `${text || "medication"} (from ${date})` : (text || "medication");
  }
  if (kind === "Immunization") {
    const text = conceptText(resource.vaccineCode) || "vaccine";
    return date ? `${text} on ${date}` : text;
  }
  if (kind === "Observation") {
    const text = conceptText(resource.code) || "observation";
    const v = value(resource);
    const line = v ? `${text}: ${v}` : text;
    return date ? `${line} (${date})` : line;
  }
  return conceptText(resource.code) || pyStr(kind);
}

// --- choosing what goes in ------------------------------------------------------------------

/** Stable sort by key (Python's sorted(key=..., reverse=...): equal keys keep their order). */
function sortedBy<T>(items: T[], key: (item: T) => string, reverse = false): T[] {
  return items.map((item, i) => ({ item, i, k: key(item) }))
    .sort((a, b) => (reverse ? pyCompare(b.k, a.k) : pyCompare(a.k, b.k)) || a.i - b.i)
    .map((x) => x.item);
}

/** The most recent Observation of each code (by its date), in order of code text. */
function latestPerCode(observations: Obj[]): Obj[] {
  const latest = new Map<string, Obj>();
  for (const obs of observations) {
    const key = codes(obs.code).sort(pyCompare).join("|") || conceptText(obs.code);
    const seen = latest.get(key);
    if (seen === undefined || pyCompare(when(obs), when(seen)) > 0) latest.set(key, obs);
  }
  return sortedBy([...latest.values()], (o) => conceptText(o.code).toLowerCase());
}

function pick(resources: Obj[]): Record<SectionKey, Obj[]> {
  const chosen: Record<SectionKey, Obj[]> = { problems: [], allergies: [], medications: [], immunizations: [], results: [], vital_signs: [] };
  const labs: Obj[] = [];
  const vitals: Obj[] = [];
  const FINAL = new Set(["final", "amended", "corrected"]);
  for (const resource of resources) {
    const kind = resource.resourceType;
    const status = typeof resource.status === "string" ? resource.status : null;
    if (kind === "Condition") {
      if (codes(resource.clinicalStatus).some((c) => ACTIVE_CONDITION.has(c))) chosen.problems.push(resource);
    } else if (kind === "AllergyIntolerance") {
      if (!codes(resource.verificationStatus).some((c) => NOT_ALLERGIES.has(c))) chosen.allergies.push(resource);
    } else if (kind === "MedicationRequest" || kind === "MedicationStatement") {
      if (status !== null && ACTIVE_MEDICATION.has(status)) chosen.medications.push(resource);
    } else if (kind === "Immunization") {
      if (status === "completed") chosen.immunizations.push(resource);
    } else if (kind === "Observation" && status !== null && FINAL.has(status)) {
      const cats = categories(resource);
      if (cats.has("laboratory")) labs.push(resource);
      else if (cats.has("vital-signs")) vitals.push(resource);
    }
  }
  chosen.results = latestPerCode(labs);
  chosen.vital_signs = latestPerCode(vitals);
  // One entry per active problem: a record often holds the same finding noted at each visit
  // (Synthea's "Medication review due" every year); the latest stands for it.
  chosen.problems = latestPerCode(chosen.problems);
  for (const key of ["problems", "allergies", "medications", "immunizations"] as const) chosen[key] = sortedBy(chosen[key], when, true);
  return chosen;
}

// --- references ---------------------------------------------------------------------------

/** The `urn:uuid:` a resource has in the summary: its id when that is a UUID. */
export function fullUrl(resource: Obj): string {
  const rid = "id" in resource ? pyStr(resource.id) : "";
  const parsed = parseUuid(rid);
  return `urn:uuid:${parsed ?? uuid5(NAMESPACE, `${pyStr(resource.resourceType)}/${rid}`)}`;
}

/** The ways the patient's records refer to a resource (`Type/id`, `urn:uuid:id`). */
function aliases(resource: Obj): string[] {
  const rid = "id" in resource ? pyStr(resource.id) : "";
  return [`${pyStr(resource.resourceType)}/${rid}`, `urn:uuid:${rid}`, fullUrl(resource)];
}

/** A copy of `value` with each reference to an included resource pointing at its fullUrl, and
 *  each other reference reduced to its display (the document is self-contained). */
function rewrite(value: Json, targets: ReadonlyMap<string, string>): Json {
  if (Array.isArray(value)) return value.map((v) => rewrite(v, targets));
  if (!isObj(value)) return value;
  const out: Obj = {};
  for (const [k, v] of Object.entries(value)) out[k] = rewrite(v, targets);
  const ref = value.reference;
  if (typeof ref === "string" && !ref.startsWith("#")) {
    const target = targets.get(ref);
    if (target !== undefined) out.reference = target;
    else {
      delete out.reference;
      if (!("display" in out)) out.display = "not included in this summary";
    }
  }
  return out;
}

// --- the document ---------------------------------------------------------------------------

function div(lines: Iterable<string>): string {
  const items = [...lines].map((line) => `<li>${htmlEscape(line)}</li>`).join("");
  return `<div xmlns="http://www.w3.org/1999/xhtml"><ul>${items}</ul></div>`;
}

function emptyDiv(title: string): string {
  return `<div xmlns="http://www.w3.org/1999/xhtml"><p>No ${htmlEscape(title.toLowerCase())} in the patient's records.</p></div>`;
}

export function patientName(patient: Obj): string {
  const names = truthy(patient.name) && Array.isArray(patient.name) ? patient.name : [];
  for (const name of names) {
    if (!isObj(name)) continue;
    if (truthy(name.text)) return pyStr(name.text);
    const given = (truthy(name.given) && Array.isArray(name.given) ? name.given : []).map(pyStr).join(" ");
    return `${given} ${pyStr(name.family ?? "")}`.trim();
  }
  return "the patient";
}

/** The IPS document of the patient's `resources` (FHIR JSON), checked against the profile's
 *  required structure. `now` (Unix ms) and `documentId` fix the time and id (tests). Throws
 *  IpsError when no Patient is among the resources (an IPS names its patient). */
export function buildIps(resources: Iterable<FhirResource | Obj>, o: { now?: number; documentId?: string } = {}): IpsBundle {
  const items = [...resources].filter(isObj).map((r) => ({ ...r }) as Obj);
  const patient = items.find((r) => r.resourceType === "Patient");
  if (patient === undefined) {
    throw new IpsError([["Patient", "no Patient resource among the records: an IPS names its patient (import your demographics first)"]]);
  }
  const medications = new Map<string, Obj>();
  for (const r of items) if (r.resourceType === "Medication") for (const alias of aliases(r)) medications.set(alias, r);
  const chosen = pick(items);
  const included: Obj[] = [patient];
  const seen = new Set([fullUrl(patient)]);
  for (const section of SECTIONS) {
    for (const resource of chosen[section.key]) {
      const ref = referenceOf(truthy(resource.medicationReference) ? resource.medicationReference : {});
      const med = typeof ref === "string" ? medications.get(ref) : undefined;
      for (const extra of [...(med ? [med] : []), resource]) {
        const url = fullUrl(extra);
        if (!seen.has(url)) {
          seen.add(url);
          included.push(extra);
        }
      }
    }
  }
  const targets = new Map<string, string>();
  for (const r of included) for (const alias of aliases(r)) targets.set(alias, fullUrl(r));
  const stamp = new Date(Math.floor((o.now ?? Date.now()) / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  const docId = o.documentId ?? crypto.randomUUID();
  const name = patientName(patient);
  const subject = { reference: fullUrl(patient), display: name };
  const sections = SECTIONS.map((section) => {
    const entries = chosen[section.key];
    const out: Obj = { title: section.title, code: { coding: [{ system: LOINC, code: section.code, display: section.display }] } };
    if (entries.length > 0) {
      out.text = { status: "generated", div: div(entries.map((e) => describe(e, medications))) };
      out.entry = entries.map((e) => ({ reference: fullUrl(e) }));
    } else {
      out.text = { status: "generated", div: emptyDiv(section.title) };
      out.emptyReason = {
        coding: [{ system: EMPTY_REASON_SYSTEM, code: "unavailable", display: "Unavailable" }],
        text: "nothing of this kind in the patient's records",
      };
    }
    return out;
  });
  const composition: Obj = {
    resourceType: "Composition", id: uuid5(NAMESPACE, docId),
    meta: { profile: [COMPOSITION_PROFILE] },
    text: { status: "generated", div: div([`International Patient Summary of ${name}, made ${stamp}`]) },
    status: "final",
    type: { coding: [{ system: LOINC, code: SUMMARY_CODE, display: "Patient summary Document" }] },
    subject, date: stamp, author: [subject],
    title: `International Patient Summary of ${name}`,
    confidentiality: "N",
    section: sections,
  };
  const entry = [
    { fullUrl: `urn:uuid:${pyStr(composition.id)}`, resource: composition },
    ...included.map((r) => ({ fullUrl: fullUrl(r), resource: rewrite(r, targets) as Obj })),
  ];
  const bundle: IpsBundle = {
    resourceType: "Bundle", id: docId,
    meta: { profile: [BUNDLE_PROFILE] },
    identifier: { system: IDENTIFIER_SYSTEM, value: `urn:uuid:${docId}` },
    type: "document", timestamp: stamp, entry,
  };
  const issues = ipsIssues(bundle);
  if (issues.length > 0) throw new IpsError(issues);
  return bundle;
}

// --- the profile's required structure ---------------------------------------------------------

/** Every way `bundle` misses the IPS profile's required structure, as [path, reason] (ips.py
 *  ips_issues, from the IG's Bundle-uv-ips, Composition-uv-ips and section slices). */
export function ipsIssues(bundle: Obj): Array<[string, string]> {
  const issues: Array<[string, string]> = [];
  const need = (cond: boolean, path: string, reason: string) => {
    if (!cond) issues.push([path, reason]);
  };
  need(bundle.resourceType === "Bundle", "Bundle.resourceType", "must be Bundle");
  need(bundle.type === "document", "Bundle.type", "an IPS is a Bundle of type document");
  const identifier = bundle.identifier;
  need(isObj(identifier) && truthy(identifier.value), "Bundle.identifier", "is required (a document has a persistent identifier)");
  need(truthy(bundle.timestamp), "Bundle.timestamp", "is required");
  const entries = (truthy(bundle.entry) && Array.isArray(bundle.entry) ? bundle.entry : []).filter(isObj);
  const byUrl = new Map<string, Obj>();
  for (const e of entries) byUrl.set(pyStr(e.fullUrl), isObj(e.resource) ? e.resource : {});
  const first = entries[0]?.resource;
  if (!isObj(first) || first.resourceType !== "Composition") {
    issues.push(["Bundle.entry[0]", "the first entry of a document is its Composition"]);
    return issues;
  }
  need(entries.some((e) => isObj(e.resource) && e.resource.resourceType === "Patient"), "Bundle.entry", "an IPS carries its Patient");
  const c = "Bundle.entry[0].resource";
  need(["final", "preliminary", "amended"].includes(first.status as string), `${c}.status`, "must be final, preliminary or amended");
  need(codes(first.type).includes(SUMMARY_CODE), `${c}.type`, `must be LOINC ${SUMMARY_CODE} (Patient summary Document)`);
  const subject = referenceOf(first.subject);
  need(byUrl.get(pyStr(subject))?.resourceType === "Patient", `${c}.subject`, "must refer to the Patient entry of the Bundle");
  need(truthy(first.date), `${c}.date`, "is required");
  need(truthy(first.author), `${c}.author`, "at least one author is required");
  need(truthy(first.title), `${c}.title`, "is required");
  const found = new Set<string>();
  const known = new Map(SECTIONS.map((s) => [s.code, s]));
  const sections = truthy(first.section) && Array.isArray(first.section) ? first.section : [];
  sections.forEach((section: Json, i: number) => {
    const path = `${c}.section[${i}]`;
    const s = isObj(section) ? section : {};
    const spec = codes(s.code).map((x) => known.get(x)).find((x) => x !== undefined);
    if (spec === undefined) return; // a section the IPS does not define is allowed (open slicing)
    found.add(spec.code);
    need(truthy(s.title), `${path}.title`, "is required");
    need(isObj(s.text) && truthy(s.text.div), `${path}.text`, "a section carries its narrative");
    need(truthy(s.entry) !== truthy(s.emptyReason), path, "has entries or an emptyReason, not both and not neither");
    const list = truthy(s.entry) && Array.isArray(s.entry) ? s.entry : [];
    list.forEach((entry: Json, j: number) => {
      const target = byUrl.get(pyStr(referenceOf(entry)));
      if (target === undefined) issues.push([`${path}.entry[${j}]`, "does not resolve to an entry of the Bundle"]);
      else if (!spec.types.has(target.resourceType as string)) {
        issues.push([`${path}.entry[${j}]`, `${pyStr(target.resourceType)} is not allowed in the ${spec.title} section`]);
      }
    });
  });
  for (const spec of SECTIONS) {
    if (spec.required && !found.has(spec.code)) issues.push([`${c}.section`, `the ${spec.title} section (LOINC ${spec.code}) is required`]);
  }
  return issues;
}

// --- reading it back ------------------------------------------------------------------------

/** Each known section of an IPS document and the lines a person reads for its entries. */
export function sectionsOf(bundle: IpsBundle): Array<{ section: Section; lines: string[] }> {
  const byUrl = new Map<string, Obj>();
  for (const e of bundle.entry) byUrl.set(e.fullUrl, e.resource);
  const composition = bundle.entry[0]?.resource ?? {};
  const known = new Map(SECTIONS.map((s) => [s.code, s]));
  const meds = new Map([...byUrl].filter(([, r]) => r.resourceType === "Medication"));
  const out: Array<{ section: Section; lines: string[] }> = [];
  for (const section of (Array.isArray(composition.section) ? composition.section : []).filter(isObj)) {
    const spec = codes(section.code).map((x) => known.get(x)).find((x) => x !== undefined);
    if (spec === undefined) continue;
    const entries = Array.isArray(section.entry) ? section.entry : [];
    out.push({ section: spec, lines: entries.map((e: Json) => describe(byUrl.get(pyStr(referenceOf(e))) ?? {}, meds)) });
  }
  return out;
}
