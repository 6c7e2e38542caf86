// The manual-entry builders: valid FHIR R4 by the page's validator (the Python importer's rules),
// the right codes and units, and input problems named by form field.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { allergy, bloodPressure, condition, FieldProblem, labValue, loincCheckDigitOk, medication, vitalSign, VITALS, type Context } from "../src/forms/builders.ts";
import { Importer } from "../src/importer/importer.ts";
import { FhirValidationError } from "../src/importer/json.ts";
import { checkRules } from "../src/importer/rules.ts";

const importer = new Importer(checkRules(JSON.parse(readFileSync(new URL("../src/importer/rules.generated.json", import.meta.url), "utf8"))));
const ctx: Context = { subject: "Patient/self", id: "x1", now: new Date("2024-06-01T12:00:00Z") };
const when = "2024-05-30T08:15";

function record(resource: Record<string, unknown>) {
  return importer.importResource(JSON.stringify(resource));
}

function fields(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof FieldProblem);
    return error.problems.map((p) => `${p.field}: ${p.reason}`);
  }
  assert.fail("expected a FieldProblem");
}

test("blood pressure: 85354-9 panel with systolic 8480-6 and diastolic 8462-4 in mm[Hg]", () => {
  const bp = bloodPressure({ systolic: "128", diastolic: "84", when }, ctx) as any;
  assert.equal(bp.code.coding[0].code, "85354-9");
  assert.deepEqual(bp.component.map((c: any) => [c.code.coding[0].code, c.valueQuantity.value, c.valueQuantity.code, c.valueQuantity.system]),
    [["8480-6", 128, "mm[Hg]", "http://unitsofmeasure.org"], ["8462-4", 84, "mm[Hg]", "http://unitsofmeasure.org"]]);
  assert.match(bp.effectiveDateTime, /^2024-05-30T08:15:00(Z|[+-]\d\d:\d\d)$/);
  assert.equal(record(bp).scopeLabel, "Observation:vital-signs");
});

test("blood pressure: problems name their fields", () => {
  assert.deepEqual(fields(() => bloodPressure({ systolic: "400", diastolic: "", when: "" }, ctx)), [
    "systolic: Systolic must be between 40 and 300 mmHg",
    "diastolic: Diastolic is needed",
    "when: Date and time are needed (for example 2024-05-01 08:30)",
  ]);
  assert.deepEqual(fields(() => bloodPressure({ systolic: "120", diastolic: "130", when }, ctx)), ["diastolic: Diastolic must be lower than systolic"]);
  assert.deepEqual(fields(() => bloodPressure({ systolic: "120", diastolic: "80", when: "2024-06-03T10:00" }, ctx)), ["when: The time cannot be in the future"]);
  assert.deepEqual(fields(() => bloodPressure({ systolic: "1e2", diastolic: "80", when: "2023-02-30T10:00" }, ctx)), [
    "systolic: Systolic must be a number (like 105)", "when: That date and time do not exist"]);
});

test("vital signs: LOINC code, UCUM unit, category, valid", () => {
  const expected = { weight: ["29463-7", "kg"], height: ["8302-2", "cm"], heartRate: ["8867-4", "/min"], temperature: ["8310-5", "Cel"], glucose: ["2339-0", "mg/dL"] };
  for (const kind of Object.keys(VITALS) as Array<keyof typeof VITALS>) {
    const o = vitalSign(kind, { value: kind === "temperature" ? "36.8" : "72,5".replace(",", kind === "weight" ? "," : "."), when }, ctx) as any;
    assert.deepEqual([o.code.coding[0].system, o.code.coding[0].code, o.valueQuantity.code], ["http://loinc.org", ...expected[kind]]);
    assert.equal(record(o).scopeLabel, kind === "glucose" ? "Observation:laboratory" : "Observation:vital-signs");
  }
  assert.equal((vitalSign("weight", { value: "72,5", when }, ctx) as any).valueQuantity.value, 72.5);
  assert.deepEqual(fields(() => vitalSign("temperature", { value: "98.6", when }, ctx)), ["value: Temperature must be between 25 and 45 °C"]);
  assert.deepEqual(fields(() => vitalSign("heartRate", { value: "fast", when }, ctx)), ["value: Heart rate must be a number (like 90)"]);
});

test("lab value: LOINC check digit, UCUM unit typed or chosen", () => {
  assert.ok(loincCheckDigitOk("4548-4") && loincCheckDigitOk("2345-7") && loincCheckDigitOk("85354-9"));
  assert.ok(!loincCheckDigitOk("4548-5"));
  const lab = labValue({ loinc: "4548-4", name: "Hemoglobin A1c", value: "5.9", unit: "%", when }, ctx) as any;
  assert.equal(record(lab).scopeLabel, "Observation:laboratory");
  assert.deepEqual(fields(() => labValue({ loinc: "4548-5", name: "", value: "x", unit: "mg dL", when }, ctx)), [
    "loinc: 4548-5 is not a LOINC code (its check digit is wrong)", "name: Test name is needed",
    "value: Value must be a number (like 5.9)", "unit: Unit must be a UCUM code: no spaces (like mg/dL or mmol/L)"]);
});

test("medication, condition, allergy: valid FHIR with their scope labels", () => {
  assert.equal(record(medication({ name: "lisinopril 10 MG Oral Tablet", rxnorm: "314076", dosage: "10 mg once daily", since: "" }, ctx)).scopeLabel, "MedicationRequest:community");
  assert.equal(record(condition({ name: "Hypertensive disorder", snomed: "38341003", onset: "2019-03-01", status: "active" }, ctx)).scopeLabel, "Condition:problem-list-item");
  assert.equal(record(allergy({ substance: "Penicillin", snomed: "", category: "medication", criticality: "", reaction: "" }, ctx)).scopeLabel, "AllergyIntolerance:medication");
  assert.deepEqual(fields(() => allergy({ substance: " ", snomed: "12", category: "", criticality: "", reaction: "" }, ctx)), [
    "substance: Substance is needed", "snomed: SNOMED CT code is 6 to 18 digits (like 91936005)", "category: Choose what kind of allergy it is"]);
});

test("the validator refuses what the builders must never make", () => {
  const bp = bloodPressure({ systolic: "128", diastolic: "84", when }, ctx) as any;
  bp.status = "done";
  assert.throws(() => record(bp), (e) => e instanceof FhirValidationError && e.issues[0]?.[0] === "Observation.status");
});
