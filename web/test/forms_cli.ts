// The manual-entry builders' output for tests/web/test_import_parity.py: each resource as the
// page would add it (JSON text, the page's canonical record and label), for Python to import.
import { readFileSync } from "node:fs";
import { allergy, bloodPressure, condition, labValue, medication, vitalSign, type Context } from "../src/forms/builders.ts";
import { Importer } from "../src/importer/importer.ts";
import { checkRules } from "../src/importer/rules.ts";

const rules = checkRules(JSON.parse(readFileSync(new URL("../src/importer/rules.generated.json", import.meta.url), "utf8")));
const importer = new Importer(rules);
let n = 0;
const ctx = (): Context => ({ subject: "Patient/self", id: `form-${++n}`, now: new Date("2024-06-01T12:00:00Z") });
const when = "2024-05-30T08:15";
const built = {
  bloodPressure: bloodPressure({ systolic: "128", diastolic: "84", when }, ctx()),
  weight: vitalSign("weight", { value: "72,5", when }, ctx()),
  height: vitalSign("height", { value: "171", when: "2024-05-30" }, ctx()),
  heartRate: vitalSign("heartRate", { value: "64", when }, ctx()),
  temperature: vitalSign("temperature", { value: "36.80", when }, ctx()),
  glucose: vitalSign("glucose", { value: "98", when }, ctx()),
  lab: labValue({ loinc: "4548-4", name: "Hemoglobin A1c", value: "5.9", unit: "%", when }, ctx()),
  medication: medication({ name: "lisinopril 10 MG Oral Tablet", rxnorm: "314076", dosage: "10 mg once daily", since: "" }, ctx()),
  medicationText: medication({ name: "Vitamin D 1000 IU", rxnorm: "", dosage: "", since: "2024-01-01" }, ctx()),
  condition: condition({ name: "Hypertensive disorder", snomed: "38341003", onset: "2019-03-01", status: "active" }, ctx()),
  allergy: allergy({ substance: "Penicillin", snomed: "91936005", category: "medication", criticality: "high", reaction: "Hives" }, ctx()),
};
const out = Object.entries(built).map(([name, resource]) => {
  const text = JSON.stringify(resource);
  const record = importer.importResource(text);
  return { name, json: text, content: Buffer.from(record.content).toString("base64"), label: record.scopeLabel, contentType: record.contentType };
});
process.stdout.write(JSON.stringify(out));
