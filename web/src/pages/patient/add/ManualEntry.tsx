// Manual entry (issue 13, item 4): the things people measure at home or read off paper, one
// form at a time. Each form checks its input and names the field of each problem; the record
// is checked again by the importer's rules before it is encrypted and added. What was typed
// stays in the form until it was added.
import { useState } from "preact/hooks";
import type { KizunaError } from "../../../core/errors.ts";
import {
  ALLERGY_CATEGORIES, allergy, bloodPressure, condition, FieldProblem, LAB_UNITS, labValue, medication, vitalSign,
  type Context, type Resource,
} from "../../../forms/builders.ts";
import type { Importer } from "../../../importer/importer.ts";
import { FhirValidationError } from "../../../importer/json.ts";
import type { PatientClient } from "../../../patient/patient.ts";
import { asKizunaError, Failure } from "../care/common.tsx";
import { SUBJECT } from "./scan.ts";

type Field = { name: string; label: string; type?: "text" | "number" | "datetime-local" | "date" | "select"; options?: Array<[string, string]>; hint?: string; optional?: boolean; list?: string[]; inputmode?: "decimal" | "numeric" };

type FormSpec = { title: string; fields: Field[]; build: (values: Record<string, string>, ctx: Context) => Resource };

const WHEN: Field = { name: "when", label: "When", type: "datetime-local" };

const FORMS: Record<string, FormSpec> = {
  bp: {
    title: "Blood pressure",
    fields: [
      { name: "systolic", label: "Systolic (upper), mmHg", inputmode: "numeric" },
      { name: "diastolic", label: "Diastolic (lower), mmHg", inputmode: "numeric" }, WHEN],
    build: (v, ctx) => bloodPressure({ systolic: v.systolic ?? "", diastolic: v.diastolic ?? "", when: v.when ?? "" }, ctx),
  },
  weight: { title: "Weight", fields: [{ name: "value", label: "Weight, kg", inputmode: "decimal" }, WHEN], build: (v, ctx) => vitalSign("weight", { value: v.value ?? "", when: v.when ?? "" }, ctx) },
  height: { title: "Height", fields: [{ name: "value", label: "Height, cm", inputmode: "decimal" }, WHEN], build: (v, ctx) => vitalSign("height", { value: v.value ?? "", when: v.when ?? "" }, ctx) },
  heartRate: { title: "Heart rate", fields: [{ name: "value", label: "Heart rate, beats per minute", inputmode: "numeric" }, WHEN], build: (v, ctx) => vitalSign("heartRate", { value: v.value ?? "", when: v.when ?? "" }, ctx) },
  temperature: { title: "Temperature", fields: [{ name: "value", label: "Temperature, °C", inputmode: "decimal" }, WHEN], build: (v, ctx) => vitalSign("temperature", { value: v.value ?? "", when: v.when ?? "" }, ctx) },
  glucose: { title: "Blood glucose", fields: [{ name: "value", label: "Glucose, mg/dL", inputmode: "decimal" }, WHEN], build: (v, ctx) => vitalSign("glucose", { value: v.value ?? "", when: v.when ?? "" }, ctx) },
  lab: {
    title: "Lab value",
    fields: [
      { name: "name", label: "Test name", hint: "As written on the report, e.g. Hemoglobin A1c" },
      { name: "loinc", label: "LOINC code", hint: "Often printed next to the test, e.g. 4548-4" },
      { name: "value", label: "Value", inputmode: "decimal" },
      { name: "unit", label: "Unit (UCUM)", hint: "Choose or type, e.g. mg/dL", list: LAB_UNITS }, WHEN],
    build: (v, ctx) => labValue({ loinc: v.loinc ?? "", name: v.name ?? "", value: v.value ?? "", unit: v.unit ?? "", when: v.when ?? "" }, ctx),
  },
  medication: {
    title: "Medication",
    fields: [
      { name: "name", label: "Medication name", hint: "e.g. lisinopril 10 MG Oral Tablet" },
      { name: "rxnorm", label: "RxNorm code", optional: true, inputmode: "numeric" },
      { name: "dosage", label: "How you take it", optional: true, hint: "e.g. 10 mg once daily" },
      { name: "since", label: "Taking it since", type: "date", optional: true }],
    build: (v, ctx) => medication({ name: v.name ?? "", rxnorm: v.rxnorm ?? "", dosage: v.dosage ?? "", since: v.since ?? "" }, ctx),
  },
  condition: {
    title: "Condition",
    fields: [
      { name: "name", label: "Condition", hint: "e.g. High blood pressure" },
      { name: "snomed", label: "SNOMED CT code", optional: true, inputmode: "numeric" },
      { name: "onset", label: "Since", type: "date", optional: true },
      { name: "status", label: "Status", type: "select", options: [["active", "Still have it"], ["resolved", "Resolved"]] }],
    build: (v, ctx) => condition({ name: v.name ?? "", snomed: v.snomed ?? "", onset: v.onset ?? "", status: v.status === "resolved" ? "resolved" : "active" }, ctx),
  },
  allergy: {
    title: "Allergy",
    fields: [
      { name: "substance", label: "Allergic to", hint: "e.g. Penicillin" },
      { name: "category", label: "Kind", type: "select", options: [["", "Choose…"], ...ALLERGY_CATEGORIES.map((c): [string, string] => [c, c[0]?.toUpperCase() + c.slice(1)])] },
      { name: "criticality", label: "How serious", type: "select", optional: true, options: [["", "Not sure"], ["low", "Low"], ["high", "High"], ["unable-to-assess", "Unable to assess"]] },
      { name: "reaction", label: "Reaction", optional: true, hint: "e.g. Hives" },
      { name: "snomed", label: "SNOMED CT code", optional: true, inputmode: "numeric" }],
    build: (v, ctx) => allergy({ substance: v.substance ?? "", snomed: v.snomed ?? "", category: v.category ?? "", criticality: v.criticality ?? "", reaction: v.reaction ?? "" }, ctx),
  },
};

function localNow(): string {
  const now = new Date();
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}T${pad(now.getHours())}:${pad(now.getMinutes())}`;
}

function initial(spec: FormSpec): Record<string, string> {
  const values: Record<string, string> = {};
  for (const f of spec.fields) values[f.name] = f.type === "datetime-local" ? localNow() : f.type === "select" ? (f.options?.[0]?.[0] ?? "") : "";
  return values;
}

export function ManualEntry(props: { client: PatientClient; importer: Importer | null; onAdded: () => void }) {
  const [kind, setKind] = useState("bp");
  // Values per form: switching forms keeps what was typed in each.
  const [values, setValues] = useState<Record<string, Record<string, string>>>(() => ({ bp: initial(FORMS.bp as FormSpec) }));
  const [problems, setProblems] = useState<Record<string, string>>({});
  const [error, setError] = useState<KizunaError | null>(null);
  const [busy, setBusy] = useState(false);
  const [added, setAdded] = useState<string | null>(null);
  const spec = FORMS[kind] as FormSpec;
  const current = values[kind] ?? initial(spec);

  function choose(next: string) {
    setKind(next);
    setProblems({});
    setAdded(null);
    setValues((all) => (all[next] ? all : { ...all, [next]: initial(FORMS[next] as FormSpec) }));
  }

  function set(name: string, value: string) {
    setValues((all) => ({ ...all, [kind]: { ...(all[kind] ?? initial(spec)), [name]: value } }));
    if (problems[name]) setProblems((p) => ({ ...p, [name]: "" }));
  }

  async function submit(event: Event) {
    event.preventDefault();
    if (!props.importer || busy) return;
    setError(null);
    setAdded(null);
    let resource: Resource;
    try {
      resource = spec.build(current, { subject: SUBJECT, id: crypto.randomUUID(), now: new Date() });
    } catch (failure) {
      if (!(failure instanceof FieldProblem)) throw failure;
      const shown: Record<string, string> = {};
      for (const p of failure.problems) shown[p.field] ??= p.reason;
      setProblems(shown);
      const first = failure.problems[0]?.field;
      if (first) document.getElementById(`entry-${kind}-${first}`)?.focus();
      return;
    }
    setProblems({});
    setBusy(true);
    try {
      const record = props.importer.importResource(JSON.stringify(resource));
      await props.client.addRecord(record.content, { label: record.scopeLabel, contentType: record.contentType });
      setAdded(`${spec.title} added to your record.`);
      setValues((all) => ({ ...all, [kind]: initial(spec) }));
      props.onAdded();
    } catch (failure) {
      if (failure instanceof FhirValidationError) {
        setError(asKizunaError(new Error(`The record did not pass the checks: ${failure.message}`)));
      } else setError(asKizunaError(failure));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="add-section" aria-labelledby="entry-title">
      <h2 id="entry-title">Enter a measurement or a fact</h2>
      <div class="entry-choose">
        <label for="entry-kind">What do you want to add?</label>
        <select id="entry-kind" value={kind} onChange={(e) => choose((e.target as HTMLSelectElement).value)}>
          {Object.entries(FORMS).map(([key, f]) => <option key={key} value={key}>{f.title}</option>)}
        </select>
      </div>
      <form class="entry-form" onSubmit={submit} noValidate data-testid={`entry-${kind}`}>
        <div class="entry-fields">
          {spec.fields.map((f) => {
            const id = `entry-${kind}-${f.name}`;
            const problem = problems[f.name];
            const described = [f.hint ? `${id}-hint` : "", problem ? `${id}-problem` : ""].filter(Boolean).join(" ") || undefined;
            const common = { id, name: f.name, value: current[f.name] ?? "", "aria-invalid": problem ? true : undefined, "aria-describedby": described };
            return (
              <div class={`entry-field${problem ? " entry-field-bad" : ""}`} key={id}>
                <label for={id}>{f.label}{f.optional ? <span class="entry-optional"> (optional)</span> : null}</label>
                {f.type === "select" ? (
                  <select {...common} onChange={(e) => set(f.name, (e.target as HTMLSelectElement).value)}>
                    {(f.options ?? []).map(([value, text]) => <option key={value} value={value}>{text}</option>)}
                  </select>
                ) : (
                  <input {...common} type={f.type ?? "text"} inputMode={f.inputmode} autoComplete="off" list={f.list ? `${id}-list` : undefined}
                         onInput={(e) => set(f.name, (e.target as HTMLInputElement).value)} />
                )}
                {f.list ? <datalist id={`${id}-list`}>{f.list.map((u) => <option key={u} value={u} />)}</datalist> : null}
                {f.hint ? <p class="entry-hint" id={`${id}-hint`}>{f.hint}</p> : null}
                {problem ? <p class="entry-problem" id={`${id}-problem`} data-testid="field-problem">{problem}</p> : null}
              </div>
            );
          })}
        </div>
        <Failure error={error} onDismiss={() => setError(null)} />
        {added ? <p class="add-done" role="status">{added}</p> : null}
        <button type="submit" class="button button-primary" disabled={busy || !props.importer} aria-busy={busy}>
          {busy ? "Adding…" : `Add ${spec.title.toLowerCase()}`}
        </button>
      </form>
    </section>
  );
}
