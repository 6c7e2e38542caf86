// A FHIR resource as a patient reads it: a name, a value, a status, a few labelled facts, an
// out-of-range flag, its date. Pure (no DOM): the timeline renders these, Node tests check them.

import { parseFhirDate, timelineDate, type FhirDate } from "./dates.ts";
import { recordIdFromUrl, type FhirResource } from "./records.ts";
import { defaultRange, flagByDefault, LOINC } from "./measures.ts";
import { displayUnit } from "./units.ts";
import { countOf } from "../ui/format.ts";

/** Why a value is highlighted: above or below its reference range, or flagged abnormal. */
export type Flag = "high" | "low" | "abnormal";

export interface Fact {
  readonly label: string;
  readonly value: string;
}

/** A file a resource describes: another record (`urn:kizuna:record:0x…`), inline base64
 *  `data`, or an external URL. */
export interface AttachmentInfo {
  readonly recordId: string | null;
  readonly url: string | null;
  readonly data: string | null;
  readonly contentType: string | null;
  readonly title: string | null;
  readonly size: number | null;
}

/** One series of an ImagingStudy. */
export interface SeriesInfo {
  readonly modality: string;
  readonly description: string | null;
  readonly bodySite: string | null;
  readonly instances: number | null;
}

export interface Summary {
  readonly resourceType: string;
  /** What kind of item this is, in words ("Lab result", "Vaccination", ...). */
  readonly kind: string;
  readonly title: string;
  /** The headline value ("146/83 mmHg", "500 mg twice a day"), if there is one. */
  readonly value: string | null;
  readonly flag: Flag | null;
  readonly status: string | null;
  readonly facts: readonly Fact[];
  readonly date: FhirDate | null;
  readonly attachments: readonly AttachmentInfo[];
  readonly series: readonly SeriesInfo[];
}

// ---- reading untyped JSON ---------------------------------------------------------------------

type Json = Record<string, unknown>;

function obj(value: unknown): Json | null {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Json) : null;
}

function list(value: unknown): Json[] {
  return Array.isArray(value) ? value.map(obj).filter((v): v is Json => v !== null) : [];
}

function str(value: unknown): string | null {
  return typeof value === "string" && value.trim() !== "" ? value : null;
}

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** Upper-case the first letter ("active" → "Active"). */
function cap(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The readable text of a CodeableConcept: its text, else the first coding's display, else its
 *  code. */
export function conceptText(value: unknown): string | null {
  const concept = obj(value);
  if (!concept) return null;
  const text = str(concept.text);
  if (text) return text;
  const codings = list(concept.coding);
  for (const coding of codings) {
    const display = str(coding.display);
    if (display) return display;
  }
  const first = codings[0];
  return first ? str(first.code) : null;
}

function codingCode(value: unknown): string | null {
  const concept = obj(value);
  for (const coding of list(concept?.coding)) {
    const code = str(coding.code);
    if (code) return code;
  }
  return null;
}

function referenceText(value: unknown): string | null {
  const ref = obj(value);
  return ref ? str(ref.display) : null;
}

// Intl formatters are costly to build: one of each for the whole page (a timeline formats
// thousands of dates).
const FORMAT = {
  month: new Intl.DateTimeFormat(undefined, { year: "numeric", month: "long", timeZone: "UTC" }),
  day: new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" }),
  time: new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  }),
};

/** A FHIR date or dateTime for people: "12 Mar 2024", "12 Mar 2024, 14:05", "March 2024". */
export function formatDate(date: FhirDate | string | null | undefined): string | null {
  const parsed = typeof date === "string" ? parseFhirDate(date) : date;
  if (!parsed) return typeof date === "string" ? date : null;
  if (parsed.precision === "year") return parsed.text.slice(0, 4);
  return FORMAT[parsed.precision].format(parsed.time);
}

function periodText(value: unknown): string | null {
  const period = obj(value);
  if (!period) return null;
  const start = formatDate(str(period.start));
  const end = formatDate(str(period.end));
  if (start && end) return start === end ? start : `${start} – ${end}`;
  if (start) return `since ${start}`;
  return end ? `until ${end}` : null;
}

/** A number with its display unit ("98 /min", "6.2%"). */
function withUnit(amount: number | string, unit: string): string {
  return unit ? `${amount}${unit.startsWith("%") ? "" : " "}${unit}` : String(amount);
}

/** The end of a period when it differs from its start. */
function endOf(value: unknown): string | null {
  const period = obj(value);
  const start = formatDate(str(period?.start)), end = formatDate(str(period?.end));
  return end && end !== start ? end : null;
}

/** A Quantity as text: "146.7 mmHg", "< 5 mg/dL". */
export function quantityText(value: unknown): string | null {
  const q = obj(value);
  if (!q) return null;
  const amount = num(q.value);
  if (amount === null) return null;
  const unit = displayUnit(str(q.unit) ?? str(q.code));
  const comparator = str(q.comparator);
  return `${comparator ? comparator + " " : ""}${withUnit(amount, unit)}`;
}

function quantityUnit(value: unknown): string | null {
  const q = obj(value);
  return q ? str(q.code) ?? str(q.unit) : null;
}

function fact(facts: Fact[], label: string, value: string | null | undefined): void {
  if (value) facts.push({ label, value });
}

// ---- reference ranges and flags ---------------------------------------------------------------

/** A reference range in the value's own unit. */
export interface Range {
  readonly low: number | null;
  readonly high: number | null;
  readonly unit: string | null;
  readonly text: string | null;
}

/** The first usable referenceRange of an Observation (or of one of its components). */
export function referenceRange(element: Json): Range | null {
  for (const range of list(element.referenceRange)) {
    const low = obj(range.low), high = obj(range.high);
    const lowValue = num(low?.value), highValue = num(high?.value);
    const text = str(range.text);
    if (lowValue !== null || highValue !== null || text) {
      return {
        low: lowValue, high: highValue,
        unit: quantityUnit(low) ?? quantityUnit(high), text,
      };
    }
  }
  return null;
}

export function rangeText(range: Range | null, unit?: string | null): string | null {
  if (!range) return null;
  const u = displayUnit(unit ?? range.unit);
  if (range.low !== null && range.high !== null) {
    return range.low === 0 ? `below ${withUnit(range.high, u)}` : withUnit(`${range.low}–${range.high}`, u);
  }
  if (range.high !== null) return `below ${withUnit(range.high, u)}`;
  if (range.low !== null) return `above ${withUnit(range.low, u)}`;
  return range.text;
}

// HL7 v3 ObservationInterpretation codes (https://terminology.hl7.org/CodeSystem-v3-ObservationInterpretation.html).
const HIGH = new Set(["H", "HH", "HU", ">"]);
const LOW = new Set(["L", "LL", "LU", "<"]);
const ABNORMAL = new Set(["A", "AA", "POS", "DET", "R", "W"]);
const NORMAL = new Set(["N", "NEG", "ND", "S"]);

/** The flag an interpretation states: a Flag, "normal", or null when it states nothing. */
export function interpretationFlag(element: Json): Flag | "normal" | null {
  for (const concept of list(element.interpretation)) {
    for (const coding of list(concept.coding)) {
      const code = str(coding.code)?.toUpperCase();
      if (!code) continue;
      if (HIGH.has(code)) return "high";
      if (LOW.has(code)) return "low";
      if (ABNORMAL.has(code)) return "abnormal";
      if (NORMAL.has(code)) return "normal";
    }
  }
  return null;
}

/** A value against a range (in the same unit): high, low, or null when inside or unknown. */
export function compareToRange(value: number, range: { low: number | null; high: number | null } | null): Flag | null {
  if (!range) return null;
  if (range.high !== null && value > range.high) return "high";
  if (range.low !== null && value < range.low) return "low";
  return null;
}

/** An element's flag: what its interpretation states, else its value against its own range
 *  (only when the range is in the value's unit). */
export function elementFlag(element: Json): Flag | null {
  const stated = interpretationFlag(element);
  if (stated !== null) return stated === "normal" ? null : stated;
  const q = obj(element.valueQuantity);
  const value = num(q?.value);
  const range = referenceRange(element);
  if (value === null) return null;
  const unit = quantityUnit(q);
  if (!range) {
    // No range of its own: the default for its code (measures.ts), as the charts use.
    for (const code of loincCodes(element.code)) {
      const flag = flagByDefault(code, value, unit ?? "");
      if (flag !== null) return flag === "normal" ? null : flag;
    }
    return null;
  }
  if (range.unit && unit && range.unit !== unit) return null;
  return compareToRange(value, range);
}

function loincCodes(concept: unknown): string[] {
  return list(obj(concept)?.coding).filter((c) => c.system === LOINC)
    .map((c) => str(c.code)).filter((c): c is string => c !== null);
}

/** The normal range of an element in words: its own, else its code's default, said as such. */
function normalRangeText(element: Json): string | null {
  const own = referenceRange(element);
  if (own) return rangeText(own, quantityUnit(element.valueQuantity));
  for (const code of loincCodes(element.code)) {
    const range = defaultRange(code);
    if (range) return `${rangeText({ ...range, text: null }, range.unit)} (typical adult range)`;
  }
  return null;
}

export const FLAG_TEXT: Readonly<Record<Flag, string>> = {
  high: "Above normal range",
  low: "Below normal range",
  abnormal: "Abnormal",
};

// ---- values -----------------------------------------------------------------------------------

/** The value[x] of an Observation or a component, as text. */
export function valueText(element: Json): string | null {
  const quantity = quantityText(element.valueQuantity);
  if (quantity) return quantity;
  const concept = conceptText(element.valueCodeableConcept);
  if (concept) return concept;
  if (typeof element.valueString === "string") return element.valueString;
  if (typeof element.valueBoolean === "boolean") return element.valueBoolean ? "Yes" : "No";
  if (typeof element.valueInteger === "number") return String(element.valueInteger);
  const range = obj(element.valueRange);
  if (range) {
    const low = quantityText(range.low), high = quantityText(range.high);
    if (low && high) return `${low} – ${high}`;
    return low ?? high;
  }
  const ratio = obj(element.valueRatio);
  if (ratio) {
    const n = quantityText(ratio.numerator), d = quantityText(ratio.denominator);
    if (n && d) return `${n} / ${d}`;
  }
  if (typeof element.valueDateTime === "string") return formatDate(element.valueDateTime);
  if (typeof element.valueTime === "string") return element.valueTime;
  const period = periodText(element.valuePeriod);
  if (period) return period;
  const absent = conceptText(element.dataAbsentReason);
  return absent ? `No value (${absent.toLowerCase()})` : null;
}

const SYSTOLIC = "8480-6";
const DIASTOLIC = "8462-4";

function componentByCode(components: Json[], code: string): Json | undefined {
  return components.find((c) => list(obj(c.code)?.coding).some((coding) => coding.code === code));
}

// ---- per resource type ------------------------------------------------------------------------

const OBSERVATION_KIND: Readonly<Record<string, string>> = {
  "vital-signs": "Vital sign",
  laboratory: "Lab result",
  "social-history": "Social history",
  survey: "Questionnaire",
  exam: "Examination",
  imaging: "Imaging result",
  procedure: "Procedure result",
  therapy: "Therapy",
  activity: "Activity",
};

function observation(r: Json, out: Draft): void {
  const category = list(r.category).map(codingCode).find((code) => code && OBSERVATION_KIND[code]);
  out.kind = category ? OBSERVATION_KIND[category]! : "Measurement";
  out.title = conceptText(r.code) ?? "Observation";
  const components = list(r.component);
  const systolic = componentByCode(components, SYSTOLIC);
  const diastolic = componentByCode(components, DIASTOLIC);
  const flags: (Flag | null)[] = [elementFlag(r)];
  if (systolic && diastolic && num(obj(systolic.valueQuantity)?.value) !== null
      && num(obj(diastolic.valueQuantity)?.value) !== null) {
    const s = obj(systolic.valueQuantity)!, d = obj(diastolic.valueQuantity)!;
    const unit = displayUnit(str(s.unit) ?? str(s.code));
    out.value = withUnit(`${num(s.value)}/${num(d.value)}`, unit);
    fact(out.facts, "Systolic normal range", normalRangeText(systolic));
    fact(out.facts, "Diastolic normal range", normalRangeText(diastolic));
    flags.push(elementFlag(systolic), elementFlag(diastolic));
  } else {
    out.value = valueText(r);
    for (const component of components) {
      const name = conceptText(component.code) ?? "Component";
      const value = valueText(component);
      const flag = elementFlag(component);
      flags.push(flag);
      fact(out.facts, name, value ? value + (flag ? ` (${flag})` : "") : null);
    }
  }
  if (!systolic || !diastolic) fact(out.facts, "Normal range", normalRangeText(r));
  out.flag = flags.find((f) => f === "high" || f === "low") ?? flags.find((f) => f !== null) ?? null;
  out.status = statusText(r.status, "final");
  // A high/low/normal interpretation is the flag already; anything else is said in words.
  if (interpretationFlag(r) === null) {
    fact(out.facts, "Interpretation", list(r.interpretation).map(conceptText).filter(Boolean).join(", "));
  }
  fact(out.facts, "Body site", conceptText(r.bodySite));
  fact(out.facts, "Method", conceptText(r.method));
  fact(out.facts, "Note", list(r.note).map((n) => str(n.text)).filter(Boolean).join(" "));
}

function condition(r: Json, out: Draft): void {
  out.kind = "Condition";
  out.title = conceptText(r.code) ?? "Condition";
  const clinical = codingCode(r.clinicalStatus);
  const verification = codingCode(r.verificationStatus);
  out.status = clinical ? cap(clinical) + (verification && verification !== "confirmed" ? ` (${verification})` : "") : null;
  fact(out.facts, "Onset", formatDate(str(r.onsetDateTime)) ?? periodText(r.onsetPeriod)
    ?? str(r.onsetString) ?? quantityText(r.onsetAge)?.replace(/ a$/, " years") ?? null);
  fact(out.facts, "Resolved", formatDate(str(r.abatementDateTime)) ?? str(r.abatementString));
  fact(out.facts, "Severity", conceptText(r.severity));
  fact(out.facts, "Body site", list(r.bodySite).map(conceptText).filter(Boolean).join(", "));
  fact(out.facts, "Category", list(r.category).map((c) => CONDITION_CATEGORY[codingCode(c) ?? ""] ?? conceptText(c))
    .filter(Boolean).join(", "));
  fact(out.facts, "Recorded", formatDate(str(r.recordedDate)));
}

// http://terminology.hl7.org/CodeSystem/condition-category (and US Core's health-concern).
const CONDITION_CATEGORY: Readonly<Record<string, string>> = {
  "problem-list-item": "Problem list",
  "encounter-diagnosis": "Diagnosed at a visit",
  "health-concern": "Health concern",
};

const PERIOD_UNIT: Readonly<Record<string, [string, string]>> = {
  s: ["second", "seconds"], min: ["minute", "minutes"], h: ["hour", "hours"],
  d: ["day", "days"], wk: ["week", "weeks"], mo: ["month", "months"], a: ["year", "years"],
};

function timingText(value: unknown): string | null {
  const repeat = obj(obj(value)?.repeat);
  if (!repeat) return conceptText(obj(value)?.code);
  const frequency = num(repeat.frequency);
  const period = num(repeat.period);
  const unit = str(repeat.periodUnit);
  if (frequency === null || period === null || !unit || !PERIOD_UNIT[unit]) return null;
  const [one, many] = PERIOD_UNIT[unit]!;
  const times = frequency === 1 ? "once" : frequency === 2 ? "twice" : `${frequency} times`;
  return period === 1 ? `${times} a ${one}` : `${times} every ${period} ${many}`;
}

/** A Dosage as text: its text, else dose + timing (+ "as needed"). */
export function dosageText(value: unknown): string | null {
  const dosage = obj(value);
  if (!dosage) return null;
  const text = str(dosage.text);
  if (text) return text;
  const parts: string[] = [];
  // MedicationAdministration.dosage has one `dose` rather than Dosage.doseAndRate.
  const single = quantityText(dosage.dose);
  if (single) parts.push(single);
  for (const rate of list(dosage.doseAndRate)) {
    const dose = quantityText(rate.doseQuantity);
    if (dose) { parts.push(dose); break; }
  }
  const timing = timingText(dosage.timing);
  if (timing) parts.push(timing);
  if (dosage.asNeededBoolean === true) parts.push("as needed");
  const asNeeded = conceptText(dosage.asNeededCodeableConcept);
  if (asNeeded) parts.push(`as needed for ${asNeeded}`);
  const route = conceptText(dosage.route);
  if (route) parts.push(route.toLowerCase());
  return parts.length ? parts.join(", ") : null;
}

function medicationName(r: Json): string {
  return conceptText(r.medicationCodeableConcept) ?? referenceText(r.medicationReference) ?? "Medication";
}

function medication(r: Json, out: Draft, kind: string, dosageElement: string): void {
  out.kind = kind;
  out.title = medicationName(r);
  const dosages = dosageElement === "dosage" ? [r.dosage] : list(r[dosageElement]);
  out.value = dosages.map(dosageText).filter(Boolean).join("; ") || null;
  out.status = statusText(r.status);
  fact(out.facts, "Intent", str(r.intent) && r.intent !== "order" ? cap(String(r.intent)) : null);
  fact(out.facts, "Reason", list(r.reasonCode).map(conceptText).filter(Boolean).join(", "));
  fact(out.facts, "Prescribed by", referenceText(r.requester));
  fact(out.facts, "Period", periodText(r.effectivePeriod));
  fact(out.facts, "Note", list(r.note).map((n) => str(n.text)).filter(Boolean).join(" "));
}

function allergy(r: Json, out: Draft): void {
  out.kind = r.type === "intolerance" ? "Intolerance" : "Allergy";
  out.title = conceptText(r.code) ?? "Allergy or intolerance";
  const clinical = codingCode(r.clinicalStatus);
  out.status = clinical ? cap(clinical) : null;
  fact(out.facts, "Category", Array.isArray(r.category) ? r.category.filter((c) => typeof c === "string").join(", ") : null);
  const criticality = str(r.criticality);
  fact(out.facts, "Criticality", criticality === "unable-to-assess" ? "Unable to assess" : criticality ? cap(criticality) : null);
  const reactions = list(r.reaction).map((reaction) => {
    const what = list(reaction.manifestation).map(conceptText).filter(Boolean).join(", ");
    const severity = str(reaction.severity);
    return what ? what + (severity ? ` (${severity})` : "") : null;
  }).filter(Boolean);
  fact(out.facts, "Reaction", reactions.join("; "));
  fact(out.facts, "Onset", formatDate(str(r.onsetDateTime)) ?? periodText(r.onsetPeriod) ?? str(r.onsetString));
  fact(out.facts, "Recorded", formatDate(str(r.recordedDate)));
  if (criticality === "high" || list(r.reaction).some((x) => x.severity === "severe")) out.flag = "abnormal";
}

function immunization(r: Json, out: Draft): void {
  out.kind = "Vaccination";
  out.title = conceptText(r.vaccineCode) ?? "Vaccination";
  out.status = statusText(r.status, "completed");
  const dose = list(r.protocolApplied).map((p) => num(p.doseNumberPositiveInt) ?? str(p.doseNumberString)).find((d) => d !== null);
  fact(out.facts, "Dose", dose !== undefined && dose !== null ? String(dose) : null);
  fact(out.facts, "Dose quantity", quantityText(r.doseQuantity));
  fact(out.facts, "Site", conceptText(r.site));
  fact(out.facts, "Route", conceptText(r.route));
  fact(out.facts, "Lot number", str(r.lotNumber));
  fact(out.facts, "Manufacturer", referenceText(r.manufacturer));
  fact(out.facts, "Not given because", conceptText(r.statusReason));
}

function procedure(r: Json, out: Draft): void {
  out.kind = "Procedure";
  out.title = conceptText(r.code) ?? "Procedure";
  out.status = statusText(r.status, "completed");
  // The timeline shows when it started; a period's end is said here.
  fact(out.facts, "Until", endOf(r.performedPeriod));
  fact(out.facts, "When", str(r.performedString));
  fact(out.facts, "Reason", list(r.reasonCode).map(conceptText).filter(Boolean).join(", "));
  fact(out.facts, "Body site", list(r.bodySite).map(conceptText).filter(Boolean).join(", "));
  fact(out.facts, "Outcome", conceptText(r.outcome));
  fact(out.facts, "Performed by", list(r.performer).map((p) => referenceText(p.actor)).filter(Boolean).join(", "));
}

const ENCOUNTER_CLASS: Readonly<Record<string, string>> = {
  AMB: "Outpatient visit", EMER: "Emergency visit", IMP: "Hospital stay", ACUTE: "Hospital stay",
  NONAC: "Hospital stay", OBSENC: "Observation stay", PRENC: "Pre-admission", SS: "Short stay",
  VR: "Virtual visit", HH: "Home visit", FLD: "Field visit",
};

function encounter(r: Json, out: Draft): void {
  const classCode = str(obj(r.class)?.code);
  out.kind = (classCode && ENCOUNTER_CLASS[classCode]) ?? "Visit";
  out.title = list(r.type).map(conceptText).find(Boolean) ?? conceptText(r.serviceType) ?? out.kind;
  out.status = statusText(r.status, "finished");
  fact(out.facts, "Until", endOf(r.period));
  fact(out.facts, "Reason", list(r.reasonCode).map(conceptText).filter(Boolean).join(", "));
  fact(out.facts, "Where", list(r.location).map((l) => referenceText(l.location)).filter(Boolean).join(", ")
    || referenceText(r.serviceProvider));
  fact(out.facts, "With", list(r.participant).map((p) => referenceText(p.individual)).filter(Boolean).join(", "));
  fact(out.facts, "Hospitalisation", conceptText(obj(r.hospitalization)?.dischargeDisposition));
}

function attachment(value: unknown): AttachmentInfo | null {
  const a = obj(value);
  if (!a) return null;
  const url = str(a.url);
  return {
    recordId: recordIdFromUrl(url),
    url,
    data: str(a.data),
    contentType: str(a.contentType),
    title: str(a.title),
    size: num(a.size),
  };
}

/** A content type in words ("PDF document", "PNG image", "Text"). */
export function contentTypeText(type: string | null): string | null {
  if (!type) return null;
  const base = type.split(";")[0]!.trim().toLowerCase();
  if (base === "application/pdf") return "PDF document";
  if (base.startsWith("image/")) return `${base.slice(6).toUpperCase()} image`;
  if (base === "application/dicom") return "DICOM image";
  if (base.startsWith("text/")) return "Text";
  return base;
}

/** A byte count for people. */
export function sizeText(size: number | null): string | null {
  if (size === null) return null;
  if (size < 1024) return `${size} bytes`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(0)} KB`;
  return `${(size / 1024 / 1024).toFixed(1)} MB`;
}

// Diagnostic service sections (http://terminology.hl7.org/CodeSystem/v2-0074), the common ones.
const REPORT_CATEGORY: Readonly<Record<string, string>> = {
  LAB: "Laboratory", RAD: "Radiology", HM: "Hematology", MB: "Microbiology", CH: "Chemistry",
  CT: "CT scan", PAT: "Pathology", SP: "Surgical pathology", CUS: "Cardiac ultrasound",
  EC: "Electrocardiac", NMR: "MRI", US: "Ultrasound", IMM: "Immunology", SR: "Serology",
};

function diagnosticReport(r: Json, out: Draft): void {
  out.kind = "Report";
  out.title = conceptText(r.code) ?? "Report";
  out.status = statusText(r.status, "final");
  out.value = str(r.conclusion);
  fact(out.facts, "Category", list(r.category)
    .map((c) => REPORT_CATEGORY[codingCode(c) ?? ""] && !list(c.coding).some((x) => str(x.display)) && !str(c.text)
      ? REPORT_CATEGORY[codingCode(c)!]! : conceptText(c))
    .filter(Boolean).join(", "));
  fact(out.facts, "Conclusion", list(r.conclusionCode).map(conceptText).filter(Boolean).join(", "));
  const results = list(r.result);
  fact(out.facts, "Results", results.length
    ? results.map((x) => str(x.display)).filter(Boolean).join(", ") || `${results.length} result${results.length > 1 ? "s" : ""}`
    : null);
  fact(out.facts, "By", list(r.performer).map(referenceText).filter(Boolean).join(", "));
  // Issued is worth saying only when it is not the report's own date.
  if (str(r.issued) && r.issued !== r.effectiveDateTime) fact(out.facts, "Issued", formatDate(str(r.issued)));
  out.attachments = list(r.presentedForm).map(attachment).filter((a): a is AttachmentInfo => a !== null);
}

function documentReference(r: Json, out: Draft): void {
  out.kind = "Document";
  out.attachments = list(r.content).map((c) => attachment(c.attachment)).filter((a): a is AttachmentInfo => a !== null);
  const first = out.attachments[0];
  out.title = first?.title ?? str(r.description) ?? conceptText(r.type) ?? "Document";
  out.status = statusText(r.docStatus ?? r.status, "final", "current");
  fact(out.facts, "Type", conceptText(r.type));
  fact(out.facts, "Category", list(r.category).map(conceptText).filter(Boolean).join(", "));
  fact(out.facts, "Description", out.title === str(r.description) ? null : str(r.description));
  fact(out.facts, "Format", contentTypeText(first?.contentType ?? null));
  fact(out.facts, "Size", sizeText(first?.size ?? null));
  fact(out.facts, "Author", list(r.author).map(referenceText).filter(Boolean).join(", "));
}

function imagingStudy(r: Json, out: Draft): void {
  out.kind = "Imaging";
  out.series = list(r.series).map((s) => {
    const modality = obj(s.modality);
    return {
      modality: str(modality?.display) ?? str(modality?.code) ?? "Unknown modality",
      description: str(s.description),
      bodySite: str(obj(s.bodySite)?.display) ?? str(obj(s.bodySite)?.code),
      instances: num(s.numberOfInstances) ?? (Array.isArray(s.instance) ? s.instance.length : null),
    };
  });
  const modalities = list(r.modality).map((m) => str(m.display) ?? str(m.code)).filter(Boolean);
  const names = modalities.length ? modalities : [...new Set(out.series.map((s) => s.modality))];
  out.title = str(r.description) ?? list(r.procedureCode).map(conceptText).find(Boolean)
    ?? (names.length ? `${names.join(", ")} study` : "Imaging study");
  const seriesCount = num(r.numberOfSeries) ?? out.series.length;
  const instances = num(r.numberOfInstances)
    ?? out.series.reduce((total, s) => total + (s.instances ?? 0), 0);
  out.value = `${seriesCount} series, ${countOf(instances, "image")}`;
  out.status = statusText(r.status, "available");
  fact(out.facts, "Modality", names.join(", "));
  fact(out.facts, "Reason", list(r.reasonCode).map(conceptText).filter(Boolean).join(", "));
}

function humanName(value: unknown): string | null {
  const names = list(value);
  const name = names.find((n) => n.use === "official") ?? names[0];
  if (!name) return null;
  const text = str(name.text);
  if (text) return text;
  const given = Array.isArray(name.given) ? name.given.filter((g) => typeof g === "string") : [];
  const family = str(name.family);
  return [...given, family].filter(Boolean).join(" ") || null;
}

function patient(r: Json, out: Draft): void {
  out.kind = "Personal details";
  out.title = humanName(r.name) ?? "Patient";
  fact(out.facts, "Born", formatDate(str(r.birthDate)));
  fact(out.facts, "Gender", str(r.gender) ? cap(String(r.gender)) : null);
  fact(out.facts, "Died", formatDate(str(r.deceasedDateTime)));
  const address = list(r.address)[0];
  if (address) {
    fact(out.facts, "Address", [str(address.city), str(address.state), str(address.country)].filter(Boolean).join(", "));
  }
  fact(out.facts, "Language", list(r.communication).map((c) => conceptText(c.language)).filter(Boolean).join(", "));
}

/** Elements tried, in order, for the name of a resource type without its own summary. */
const GENERIC_NAME = [
  "code", "type", "vaccineCode", "medicationCodeableConcept", "category", "serviceType",
  "description", "title", "name",
] as const;

function generic(r: Json, out: Draft, resourceType: string): void {
  out.kind = resourceType.replace(/([a-z])([A-Z])/g, "$1 $2");
  for (const element of GENERIC_NAME) {
    const value = r[element];
    const text = typeof value === "string" ? str(value)
      : element === "name" ? humanName(value) ?? null
      : Array.isArray(value) ? value.map(conceptText).find(Boolean) ?? null
      : conceptText(value);
    if (text) { out.title = text; break; }
  }
  if (resourceType === "Goal") out.title = conceptText(r.description) ?? out.title;
  out.status = statusText(r.status ?? r.lifecycleStatus);
  const period = periodText(r.period) ?? periodText(r.billablePeriod);
  fact(out.facts, "Period", period);
}

/** A status code for people, or null for the unremarkable statuses given. */
function statusText(value: unknown, ...unremarkable: string[]): string | null {
  const status = str(value);
  if (!status || unremarkable.includes(status)) return null;
  return cap(status.replace(/-/g, " "));
}

interface Draft {
  kind: string;
  title: string;
  value: string | null;
  flag: Flag | null;
  status: string | null;
  facts: Fact[];
  attachments: AttachmentInfo[];
  series: SeriesInfo[];
}

/** The readable summary of any FHIR resource (a generic one for types without their own). */
export function summarize(resource: FhirResource): Summary {
  const r = resource as Json;
  const type = resource.resourceType;
  const out: Draft = {
    kind: type, title: type, value: null, flag: null, status: null, facts: [], attachments: [], series: [],
  };
  switch (type) {
    case "Observation": observation(r, out); break;
    case "Condition": condition(r, out); break;
    case "MedicationRequest": medication(r, out, "Prescription", "dosageInstruction"); break;
    case "MedicationStatement": medication(r, out, "Medication", "dosage"); break;
    case "MedicationAdministration": medication(r, out, "Medication given", "dosage"); break;
    case "MedicationDispense": medication(r, out, "Medication dispensed", "dosageInstruction"); break;
    case "AllergyIntolerance": allergy(r, out); break;
    case "Immunization": immunization(r, out); break;
    case "Procedure": procedure(r, out); break;
    case "Encounter": encounter(r, out); break;
    case "DiagnosticReport": diagnosticReport(r, out); break;
    case "DocumentReference": documentReference(r, out); break;
    case "ImagingStudy": imagingStudy(r, out); break;
    case "Patient": patient(r, out); break;
    default: generic(r, out, type);
  }
  return { resourceType: type, date: timelineDate(resource), ...out };
}
