// Manual entry: what people measure at home or read off paper, as FHIR R4 resources coded like
// the Python side codes them (kizuna/stack/demo_data.py): LOINC codes, UCUM units, SNOMED CT
// conditions and allergies, RxNorm (or text) medications as MedicationRequest. Each builder
// checks its input and names the form field of each problem (FieldProblem); its output passes
// the importer's validator (web/test/forms.test.ts and tests/web/test_import_parity.py check).

export const LOINC = "http://loinc.org";
export const SNOMED = "http://snomed.info/sct";
export const UCUM = "http://unitsofmeasure.org";
export const RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm";
const OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category";
const CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category";
const CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
const MEDREQ_CATEGORY = "http://terminology.hl7.org/CodeSystem/medicationrequest-category";

export type Resource = Record<string, unknown>;

/** One problem of a form, naming its field (the input's name) and what is wrong. */
export class FieldProblem extends Error {
  readonly problems: Array<{ field: string; reason: string }>;
  constructor(problems: Array<{ field: string; reason: string }>) {
    super(problems.map((p) => p.reason).join("; "));
    this.name = "FieldProblem";
    this.problems = problems;
  }
}

class Checks {
  readonly problems: Array<{ field: string; reason: string }> = [];
  fail(field: string, reason: string): void {
    this.problems.push({ field, reason });
  }
  /** A decimal typed by a person ("72,5" too), kept as written for FHIR's precision. */
  number(field: string, label: string, text: string, min: number, max: number, unit: string, example = String(min + Math.round((max - min) / 4))): number | null {
    const cleaned = text.trim().replace(",", ".");
    if (!cleaned) {
      this.fail(field, `${label} is needed`);
      return null;
    }
    if (!/^-?\d+(\.\d+)?$/.test(cleaned)) {
      this.fail(field, `${label} must be a number (like ${example})`);
      return null;
    }
    const value = Number(cleaned);
    if (value < min || value > max) {
      this.fail(field, `${label} must be between ${min} and ${max} ${unit}`);
      return null;
    }
    return value;
  }
  text(field: string, label: string, text: string, max = 200): string | null {
    const value = text.trim();
    if (!value) this.fail(field, `${label} is needed`);
    else if (value.length > max) this.fail(field, `${label} must be at most ${max} characters`);
    else return value;
    return null;
  }
  /** A local date-time input ("2024-05-01T08:30") as a FHIR dateTime with seconds and zone. */
  when(field: string, text: string, now: Date): string | null {
    const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(text.trim());
    if (!m) {
      this.fail(field, "Date and time are needed (for example 2024-05-01 08:30)");
      return null;
    }
    const [, y, mo, d, h, mi, s] = m;
    if (h === undefined) {
      const day = new Date(Number(y), Number(mo) - 1, Number(d));
      if (day.getMonth() !== Number(mo) - 1 || day.getDate() !== Number(d)) {
        this.fail(field, "That date does not exist");
        return null;
      }
      if (day.getTime() > now.getTime()) {
        this.fail(field, "The date cannot be in the future");
        return null;
      }
      return `${y}-${mo}-${d}`;
    }
    const local = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s ?? 0));
    if (local.getMonth() !== Number(mo) - 1 || local.getDate() !== Number(d) || local.getHours() !== Number(h)) {
      this.fail(field, "That date and time do not exist");
      return null;
    }
    if (local.getTime() > now.getTime() + 5 * 60_000) {
      this.fail(field, "The time cannot be in the future");
      return null;
    }
    return fhirDateTime(local);
  }
  done(): void {
    if (this.problems.length) throw new FieldProblem(this.problems);
  }
}

/** A local moment as a FHIR dateTime: seconds and the browser's UTC offset. */
export function fhirDateTime(moment: Date): string {
  const pad = (n: number) => String(Math.abs(n)).padStart(2, "0");
  const offset = -moment.getTimezoneOffset();
  const zone = offset === 0 ? "Z" : `${offset < 0 ? "-" : "+"}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`;
  return `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}T${pad(moment.getHours())}:${pad(moment.getMinutes())}:${pad(moment.getSeconds())}${zone}`;
}

function coding(system: string, code: string, display: string): Resource {
  return { coding: [{ system, code, display }], text: display };
}

function quantity(value: number, unit: string, display = unit): Resource {
  return { value, unit: display, system: UCUM, code: unit };
}

export type Context = { subject: string; id: string; now: Date };

function vital(ctx: Context, code: string, display: string, when: string, body: Resource): Resource {
  return {
    resourceType: "Observation", id: ctx.id, status: "final",
    category: [{ coding: [{ system: OBS_CATEGORY, code: "vital-signs", display: "Vital Signs" }] }],
    code: coding(LOINC, code, display), subject: { reference: ctx.subject }, effectiveDateTime: when, ...body,
  };
}

/** A single-value vital sign: the form's field names are "value" and "when". */
type VitalSpec = { code: string; display: string; label: string; unit: string; unitDisplay: string; min: number; max: number };

export const VITALS = {
  weight: { code: "29463-7", display: "Body weight", label: "Weight", unit: "kg", unitDisplay: "kg", min: 0.5, max: 400 },
  height: { code: "8302-2", display: "Body height", label: "Height", unit: "cm", unitDisplay: "cm", min: 20, max: 260 },
  heartRate: { code: "8867-4", display: "Heart rate", label: "Heart rate", unit: "/min", unitDisplay: "beats/minute", min: 20, max: 300 },
  temperature: { code: "8310-5", display: "Body temperature", label: "Temperature", unit: "Cel", unitDisplay: "°C", min: 25, max: 45 },
  glucose: { code: "2339-0", display: "Glucose [Mass/volume] in Blood", label: "Glucose", unit: "mg/dL", unitDisplay: "mg/dL", min: 10, max: 1000 },
} satisfies Record<string, VitalSpec>;

export type VitalKind = keyof typeof VITALS;

export function vitalSign(kind: VitalKind, input: { value: string; when: string }, ctx: Context): Resource {
  const spec: VitalSpec = VITALS[kind];
  const c = new Checks();
  const value = c.number("value", spec.label, input.value, spec.min, spec.max, spec.unitDisplay);
  const when = c.when("when", input.when, ctx.now);
  c.done();
  const resource = vital(ctx, spec.code, spec.display, when as string, { valueQuantity: quantity(value as number, spec.unit, spec.unitDisplay) });
  if (kind === "glucose") {
    // Blood glucose is a laboratory value in FHIR's categories, also when measured at home.
    resource.category = [{ coding: [{ system: OBS_CATEGORY, code: "laboratory", display: "Laboratory" }] }];
  }
  return resource;
}

export function bloodPressure(input: { systolic: string; diastolic: string; when: string }, ctx: Context): Resource {
  const c = new Checks();
  const systolic = c.number("systolic", "Systolic", input.systolic, 40, 300, "mmHg");
  const diastolic = c.number("diastolic", "Diastolic", input.diastolic, 20, 200, "mmHg");
  if (systolic !== null && diastolic !== null && diastolic >= systolic) c.fail("diastolic", "Diastolic must be lower than systolic");
  const when = c.when("when", input.when, ctx.now);
  c.done();
  return vital(ctx, "85354-9", "Blood pressure panel with all children optional", when as string, {
    component: [
      { code: coding(LOINC, "8480-6", "Systolic blood pressure"), valueQuantity: quantity(systolic as number, "mm[Hg]", "mmHg") },
      { code: coding(LOINC, "8462-4", "Diastolic blood pressure"), valueQuantity: quantity(diastolic as number, "mm[Hg]", "mmHg") },
    ],
  });
}

/** Common UCUM units offered for a lab value (any other can be typed). */
export const LAB_UNITS = ["mg/dL", "mmol/L", "g/dL", "%", "U/L", "mEq/L", "ng/mL", "10*3/uL", "10*6/uL", "mL/min/{1.73_m2}", "mg/L", "umol/L"];

export function labValue(input: { loinc: string; name: string; value: string; unit: string; when: string }, ctx: Context): Resource {
  const c = new Checks();
  const code = input.loinc.trim();
  if (!/^\d{1,7}-\d$/.test(code)) c.fail("loinc", "LOINC code looks like 2345-7 (digits, a dash, one check digit)");
  else if (!loincCheckDigitOk(code)) c.fail("loinc", `${code} is not a LOINC code (its check digit is wrong)`);
  const name = c.text("name", "Test name", input.name);
  const value = c.number("value", "Value", input.value, -1e9, 1e9, "", "5.9");
  const unit = input.unit.trim();
  if (!unit) c.fail("unit", "Unit is needed (a UCUM unit such as mg/dL)");
  else if (!/^[!-~]{1,40}$/.test(unit)) c.fail("unit", "Unit must be a UCUM code: no spaces (like mg/dL or mmol/L)");
  const when = c.when("when", input.when, ctx.now);
  c.done();
  return {
    resourceType: "Observation", id: ctx.id, status: "final",
    category: [{ coding: [{ system: OBS_CATEGORY, code: "laboratory", display: "Laboratory" }] }],
    code: coding(LOINC, code, name as string), subject: { reference: ctx.subject }, effectiveDateTime: when,
    valueQuantity: quantity(value as number, unit),
  };
}

/** LOINC's mod-10 check digit (the digit after the dash). */
export function loincCheckDigitOk(code: string): boolean {
  const [body = "", check] = code.split("-");
  const digits = body.split("").map(Number).reverse();
  let sum = 0;
  digits.forEach((d, i) => {
    const v = i % 2 === 0 ? d * 2 : d;
    sum += v > 9 ? v - 9 : v;
  });
  return (10 - (sum % 10)) % 10 === Number(check);
}

export function medication(input: { name: string; rxnorm: string; dosage: string; since: string }, ctx: Context): Resource {
  const c = new Checks();
  const name = c.text("name", "Medication name", input.name);
  const rxnorm = input.rxnorm.trim();
  if (rxnorm && !/^\d{1,10}$/.test(rxnorm)) c.fail("rxnorm", "RxNorm code is digits only (like 314076)");
  const dosage = input.dosage.trim();
  if (dosage.length > 200) c.fail("dosage", "Dosage must be at most 200 characters");
  const since = input.since.trim() ? c.when("since", input.since, ctx.now) : fhirDateTime(ctx.now);
  c.done();
  const resource: Resource = {
    resourceType: "MedicationRequest", id: ctx.id, status: "active", intent: "order",
    category: [{ coding: [{ system: MEDREQ_CATEGORY, code: "community", display: "Community" }] }],
    medicationCodeableConcept: rxnorm ? coding(RXNORM, rxnorm, name as string) : { text: name },
    subject: { reference: ctx.subject }, authoredOn: since, reportedBoolean: true,
  };
  if (dosage) resource.dosageInstruction = [{ text: dosage }];
  return resource;
}

export function condition(input: { name: string; snomed: string; onset: string; status: "active" | "resolved" }, ctx: Context): Resource {
  const c = new Checks();
  const name = c.text("name", "Condition name", input.name);
  const snomed = input.snomed.trim();
  if (snomed && !/^\d{6,18}$/.test(snomed)) c.fail("snomed", "SNOMED CT code is 6 to 18 digits (like 38341003)");
  const onset = input.onset.trim() ? c.when("onset", input.onset, ctx.now) : null;
  c.done();
  const resource: Resource = {
    resourceType: "Condition", id: ctx.id,
    clinicalStatus: { coding: [{ system: CONDITION_CLINICAL, code: input.status, display: input.status === "active" ? "Active" : "Resolved" }] },
    category: [{ coding: [{ system: CONDITION_CATEGORY, code: "problem-list-item", display: "Problem List Item" }] }],
    code: snomed ? coding(SNOMED, snomed, name as string) : { text: name },
    subject: { reference: ctx.subject }, recordedDate: fhirDateTime(ctx.now),
  };
  if (onset) resource.onsetDateTime = onset;
  return resource;
}

export const ALLERGY_CATEGORIES = ["food", "medication", "environment", "biologic"] as const;

export function allergy(input: { substance: string; snomed: string; category: string; criticality: string; reaction: string }, ctx: Context): Resource {
  const c = new Checks();
  const substance = c.text("substance", "Substance", input.substance);
  const snomed = input.snomed.trim();
  if (snomed && !/^\d{6,18}$/.test(snomed)) c.fail("snomed", "SNOMED CT code is 6 to 18 digits (like 91936005)");
  if (!(ALLERGY_CATEGORIES as readonly string[]).includes(input.category)) c.fail("category", "Choose what kind of allergy it is");
  if (input.criticality && !["low", "high", "unable-to-assess"].includes(input.criticality)) c.fail("criticality", "Choose low, high or unable to assess");
  const reaction = input.reaction.trim();
  if (reaction.length > 200) c.fail("reaction", "Reaction must be at most 200 characters");
  c.done();
  const resource: Resource = {
    resourceType: "AllergyIntolerance", id: ctx.id,
    clinicalStatus: { coding: [{ system: ALLERGY_CLINICAL, code: "active", display: "Active" }] },
    category: [input.category],
    code: snomed ? coding(SNOMED, snomed, substance as string) : { text: substance },
    patient: { reference: ctx.subject }, recordedDate: fhirDateTime(ctx.now),
  };
  if (input.criticality) resource.criticality = input.criticality;
  if (reaction) resource.reaction = [{ manifestation: [{ text: reaction }] }];
  return resource;
}
