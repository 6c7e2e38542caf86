// Where a resource sits on the timeline: the same element list, in the same order of
// preference, as the Python importer (kizuna/storage/fhir/importer.py TIMELINE_DATE; a Node test
// compares the two tables), and FHIR date/dateTime/instant values read as instants.

import type { FhirResource } from "./records.ts";

/** Resource type → elements (in order of preference) holding its timeline date. */
export const TIMELINE_DATE: Readonly<Record<string, readonly string[]>> = {
  AdverseEvent: ["date", "detected", "recordedDate"],
  AllergyIntolerance: ["onsetDateTime", "onsetPeriod.start", "recordedDate"],
  Appointment: ["start", "created"],
  CarePlan: ["period.start", "created"],
  CareTeam: ["period.start"],
  Claim: ["billablePeriod.start", "created"],
  ClaimResponse: ["created"],
  ClinicalImpression: ["effectiveDateTime", "effectivePeriod.start", "date"],
  Communication: ["sent", "received"],
  Composition: ["date"],
  Condition: ["onsetDateTime", "onsetPeriod.start", "recordedDate"],
  Consent: ["dateTime"],
  Coverage: ["period.start"],
  DeviceRequest: ["occurrenceDateTime", "occurrencePeriod.start", "authoredOn"],
  DiagnosticReport: ["effectiveDateTime", "effectivePeriod.start", "issued"],
  DocumentReference: ["date", "context.period.start"],
  Encounter: ["period.start"],
  EpisodeOfCare: ["period.start"],
  ExplanationOfBenefit: ["billablePeriod.start", "created"],
  FamilyMemberHistory: ["date"],
  Flag: ["period.start"],
  Goal: ["startDate", "statusDate"],
  ImagingStudy: ["started"],
  Immunization: ["occurrenceDateTime", "recorded"],
  MedicationAdministration: ["effectiveDateTime", "effectivePeriod.start"],
  MedicationDispense: ["whenHandedOver", "whenPrepared"],
  MedicationRequest: ["authoredOn"],
  List: ["date"],
  Media: ["createdDateTime", "createdPeriod.start", "issued"],
  MedicationStatement: ["effectiveDateTime", "effectivePeriod.start", "dateAsserted"],
  NutritionOrder: ["dateTime"],
  Observation: ["effectiveDateTime", "effectiveInstant", "effectivePeriod.start", "issued"],
  Procedure: ["performedDateTime", "performedPeriod.start"],
  Provenance: ["recorded"],
  QuestionnaireResponse: ["authored"],
  RiskAssessment: ["occurrenceDateTime", "occurrencePeriod.start"],
  ServiceRequest: ["occurrenceDateTime", "occurrencePeriod.start", "authoredOn"],
  Specimen: ["collection.collectedDateTime", "collection.collectedPeriod.start", "receivedTime"],
  SupplyDelivery: ["occurrenceDateTime", "occurrencePeriod.start"],
  Task: ["executionPeriod.start", "authoredOn"],
};

/** A FHIR date as written and as an instant. */
export interface FhirDate {
  /** The value as FHIR wrote it. */
  readonly text: string;
  /** Milliseconds since the epoch (UTC start of a partial date). */
  readonly time: number;
  /** How much the value says: a year, a month, a day, or a moment with a time. */
  readonly precision: "year" | "month" | "day" | "time";
}

// FHIR's dateTime/instant grammar (https://hl7.org/fhir/R4/datatypes.html#dateTime).
const DATETIME =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2}))?)?)?$/;

/** A FHIR date/dateTime/instant as an instant, or null if the text is not one. Like Python's
 *  `to_timestamp` (kizuna/storage/fhir/dates.py): the start of a partial date, in UTC. */
export function parseFhirDate(text: unknown): FhirDate | null {
  if (typeof text !== "string") return null;
  const m = DATETIME.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y), month = Number(mo ?? 1), day = Number(d ?? 1);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    return null;
  }
  if (h === undefined) {
    return { text, time: literalYear(Date.UTC(year, month - 1, day), year), precision: d ? "day" : mo ? "month" : "year" };
  }
  let offset = 0;
  if (zone !== "Z" && zone !== undefined) {
    const sign = zone.startsWith("-") ? -1 : 1;
    offset = sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  }
  const ms = frac ? Math.floor(Number(`0${frac}`) * 1000) : 0;
  const base = Date.UTC(year, month - 1, day, Number(h), Number(mi), Math.min(Number(s), 59), ms);
  return { text, time: literalYear(base, year) - offset * 60_000, precision: "time" };
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

/** Days of a month of the proleptic Gregorian calendar (as Date counts them), without a Date
 *  per value: a chart of thousands of Observations parses thousands of dates. */
function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return month === 2 && leap ? 29 : DAYS[month - 1]!;
}

/** Date.UTC maps years 0-99 to 1900-1999; FHIR years are literal. */
function literalYear(time: number, year: number): number {
  if (year >= 100) return time;
  const fixed = new Date(time);
  fixed.setUTCFullYear(year);
  return fixed.getTime();
}

function pick(resource: FhirResource, path: string): unknown {
  let value: unknown = resource;
  for (const step of path.split(".")) {
    value = value !== null && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>)[step]
      : undefined;
  }
  return value;
}

/** The date that places a resource on the timeline (the first present element of
 *  TIMELINE_DATE that is a string, as Python's `timeline_date`), parsed; null if none. */
export function timelineDate(resource: FhirResource): FhirDate | null {
  for (const path of TIMELINE_DATE[resource.resourceType] ?? []) {
    const value = pick(resource, path);
    if (typeof value === "string") return parseFhirDate(value);
  }
  return null;
}
