// The scope labels (web/src/patient/vocabulary.json, generated from Python) grouped for people:
// "Lab results", "Vital signs", … with the raw label always shown beside; and what an access
// request's note suggests sharing (labels it names, words like "vitals", a period). Pure: the
// pages render these, Node tests check them (web/test/requests_scopes.test.ts).

import { VOCABULARY } from "../../../patient/vocabulary.ts";

export type ScopeGroup = {
  id: string;
  title: string;
  /** One line for patients: what is in it. */
  about: string;
  labels: string[];
  /** Words in a provider's note that point at this group. */
  words: RegExp;
};

type GroupSpec = Omit<ScopeGroup, "labels"> & { match: (label: string) => boolean };

const type = (label: string) => label.split(":")[0] ?? label;

const SPECS: GroupSpec[] = [
  { id: "labs", title: "Lab results", about: "Blood tests and other laboratory results.",
    match: (l) => l === "Observation:laboratory" || l === "DiagnosticReport:LAB" || l === "DiagnosticReport:CH" || l === "DiagnosticReport:HM" || l === "DiagnosticReport:MB",
    words: /\b(lab|labs|laboratory|blood tests?|hba1c|cholesterol|glucose)\b/i },
  { id: "vitals", title: "Vital signs", about: "Blood pressure, heart rate, weight, height, temperature.",
    match: (l) => l === "Observation:vital-signs", words: /\b(vitals?|vital signs?|blood pressure|heart rate|weight|bmi)\b/i },
  { id: "conditions", title: "Conditions", about: "Diagnoses and health problems.",
    match: (l) => type(l) === "Condition", words: /\b(conditions?|diagnos[ie]s|problems?)\b/i },
  { id: "medications", title: "Medications", about: "Prescriptions and medicines you take.",
    match: (l) => /^Medication(Request|Statement|Administration|Dispense)?(:|$)/.test(l), words: /\b(medications?|medicines?|prescriptions?|drugs?)\b/i },
  { id: "allergies", title: "Allergies", about: "Allergies and intolerances.",
    match: (l) => type(l) === "AllergyIntolerance", words: /\b(allerg(y|ies)|intolerances?)\b/i },
  { id: "immunizations", title: "Vaccinations", about: "Immunizations you received.",
    match: (l) => type(l) === "Immunization", words: /\b(vaccin\w*|immuni[sz]ations?)\b/i },
  { id: "procedures", title: "Procedures", about: "Operations and other procedures.",
    match: (l) => type(l) === "Procedure", words: /\b(procedures?|surger(y|ies)|operations?)\b/i },
  { id: "visits", title: "Visits", about: "Appointments and hospital stays.",
    match: (l) => type(l) === "Encounter", words: /\b(visits?|encounters?)\b/i },
  { id: "documents", title: "Documents", about: "PDFs, letters and scanned papers.",
    match: (l) => type(l) === "DocumentReference", words: /\b(documents?|letters?|pdfs?)\b/i },
  { id: "imaging", title: "Imaging", about: "X-rays, scans and their reports.",
    match: (l) => type(l) === "ImagingStudy" || l === "Observation:imaging" || ["DiagnosticReport:RAD", "DiagnosticReport:CT", "DiagnosticReport:NMR", "DiagnosticReport:RUS", "DiagnosticReport:VUS", "DiagnosticReport:OUS", "DiagnosticReport:CUS", "DiagnosticReport:IMG"].includes(l),
    words: /\b(imaging|x-?rays?|scans?|mri|ct|ultrasound|radiology)\b/i },
  { id: "reports", title: "Other reports", about: "Other diagnostic reports.",
    match: (l) => type(l) === "DiagnosticReport", words: /\b(reports?)\b/i },
  { id: "observations", title: "Other measurements", about: "Surveys, social history, exams and other observations.",
    match: (l) => type(l) === "Observation", words: /\b(observations?|surveys?|social history)\b/i },
];

/** The vocabulary in groups (each label in the first group that takes it), then "Everything
 * else" with the rest (FHIR's other resource types); in a group its main label first, then the
 * vocabulary's order. */
export function scopeGroups(vocabulary: readonly string[] = VOCABULARY): ScopeGroup[] {
  const taken = new Set<string>();
  const groups: ScopeGroup[] = SPECS.map(({ match, ...spec }) => {
    const labels = vocabulary.filter((l) => !taken.has(l) && match(l));
    for (const l of labels) taken.add(l);
    const main = MAIN[spec.id];
    if (main && labels.includes(main)) labels.sort((a, b) => Number(b === main) - Number(a === main));
    return { ...spec, labels };
  }).filter((g) => g.labels.length > 0);
  const rest = vocabulary.filter((l) => !taken.has(l));
  if (rest.length) {
    groups.push({ id: "other", title: "Everything else", about: "Other kinds of FHIR records.", labels: rest, words: /$^/ });
  }
  return groups;
}

// HL7 v2 table 0074 (diagnostic service sections) for the report categories people meet.
const SECTIONS: Readonly<Record<string, string>> = {
  LAB: "Lab reports", CH: "Chemistry reports", HM: "Blood count (hematology) reports", MB: "Microbiology reports",
  RAD: "Radiology reports", CT: "CT scan reports", NMR: "MRI reports", RUS: "Ultrasound reports", EC: "ECG reports",
  PAT: "Pathology reports", SP: "Pathology reports", CUS: "Cardiac ultrasound reports", VUS: "Vascular ultrasound reports",
  OUS: "Obstetric ultrasound reports", IMG: "Imaging reports", GE: "Genetics reports", IMM: "Immunology reports",
};

const NAMES: Readonly<Record<string, string>> = {
  "Observation:laboratory": "Lab results", "Observation:vital-signs": "Vital signs", "Observation:social-history": "Social history",
  "Observation:survey": "Questionnaires and scores", "Observation:exam": "Examination findings", "Observation:imaging": "Imaging measurements",
  "Observation:procedure": "Procedure measurements", "Observation:therapy": "Therapy measurements", "Observation:activity": "Activity (steps, exercise)",
  Observation: "Other measurements",
  "Condition:problem-list-item": "Problem list", "Condition:encounter-diagnosis": "Diagnoses at visits",
  "Condition:health-concern": "Health concerns", Condition: "Other conditions",
  MedicationRequest: "Prescriptions", "MedicationRequest:community": "Prescriptions to take at home",
  "MedicationRequest:outpatient": "Outpatient prescriptions", "MedicationRequest:inpatient": "Hospital prescriptions",
  "MedicationRequest:discharge": "Prescriptions at discharge", MedicationStatement: "Medicines you take",
  MedicationAdministration: "Medicines given to you", MedicationDispense: "Medicines dispensed", Medication: "Medicine details",
  AllergyIntolerance: "Other allergies", "AllergyIntolerance:food": "Food allergies", "AllergyIntolerance:medication": "Medicine allergies",
  "AllergyIntolerance:environment": "Environmental allergies", "AllergyIntolerance:biologic": "Allergies to biologics",
  Immunization: "Vaccinations", Procedure: "Procedures", Encounter: "Visits and stays", DocumentReference: "Documents and files",
  ImagingStudy: "Imaging studies (DICOM)", DiagnosticReport: "Other reports",
};

/** A label in words for people ("Observation:laboratory" → "Lab results"; types without a name
 * of their own are split into words: "FamilyMemberHistory" → "Family member history"). */
export function labelName(label: string): string {
  const known = NAMES[label];
  if (known) return known;
  const [kind = label, category] = label.split(":");
  if (kind === "DiagnosticReport" && category) return SECTIONS[category] ?? `Reports (${category})`;
  const words = kind.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
  const text = words.charAt(0).toUpperCase() + words.slice(1);
  return category ? `${text} (${category.replace(/-/g, " ")})` : text;
}

/** Labels for a sentence: "Lab results (Observation:laboratory) and Vital signs (…)". */
export function peopleList(labels: readonly string[]): string {
  const named = labels.map((l) => `${labelName(l)} (${l})`);
  return named.length < 2 ? named.join("") : `${named.slice(0, -1).join(", ")} and ${named.at(-1)}`;
}

/** The main label of each group: what a word in a note selects ("labs" → Observation:laboratory). */
const MAIN: Readonly<Record<string, string>> = {
  labs: "Observation:laboratory", vitals: "Observation:vital-signs", conditions: "Condition:problem-list-item",
  medications: "MedicationRequest", allergies: "AllergyIntolerance", immunizations: "Immunization",
  procedures: "Procedure", visits: "Encounter", documents: "DocumentReference", imaging: "ImagingStudy",
};

const DAY = 86_400;
export const DEFAULT_DAYS = 30;

/** What a request's note suggests: the labels it names (exactly, as `Observation:laboratory`)
 * or by words ("vitals", "lab results"), and a period ("for 14 days", "2 weeks", "3 months",
 * "until 2027-01-31"); `days` is DEFAULT_DAYS when it names none. The patient checks it before
 * sharing: it only pre-fills the form. */
export function suggestedGrant(note: string, vocabulary: readonly string[] = VOCABULARY): { labels: string[]; days: number; until: string | null } {
  const labels = new Set<string>();
  for (const token of note.match(/[A-Za-z]+(?::[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])?/g) ?? []) {
    // A label with a category anywhere; one without (a bare type: "MedicationRequest") where
    // the note names it in parentheses, as the provider's request form writes labels.
    if (vocabulary.includes(token) && (token.includes(":") || note.includes(`(${token})`))) labels.add(token);
  }
  if (labels.size === 0) {
    for (const group of scopeGroups(vocabulary)) {
      const main = MAIN[group.id];
      if (main && vocabulary.includes(main) && group.words.test(note)) labels.add(main);
    }
  }
  const until = /\buntil (\d{4}-\d{2}-\d{2})\b/i.exec(note)?.[1] ?? null;
  const period = /\b(\d{1,3})\s*(day|week|month)s?\b/i.exec(note);
  let days = DEFAULT_DAYS;
  if (period) {
    const n = Number(period[1]);
    const unit = (period[2] ?? "day").toLowerCase();
    days = Math.max(1, n * (unit === "week" ? 7 : unit === "month" ? 30 : 1));
  }
  return { labels: [...labels], days, until };
}

/** `days` from `now` (seconds) as a date input's value (YYYY-MM-DD, the user's local day). */
export function dateInputValue(now: number, days: number): string {
  const d = new Date((now + days * DAY) * 1000);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

/** A date input's value as the expiry (seconds): the end of that local day. Null when it is
 * not a date. */
export function expiryOf(value: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!m) return null;
  const end = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), 23, 59, 59);
  if (Number.isNaN(end.getTime()) || end.getDate() !== Number(m[3])) return null;
  return Math.floor(end.getTime() / 1000);
}
