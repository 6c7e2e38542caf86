// Send a patient a visit report, a prescription or a booking confirmation: a small form that
// produces FHIR (provider/care.ts builders; a prescription is the manual-entry MedicationRequest)
// or a file (PDF, image, FHIR JSON) — sealed in this page to the patient's verified inbox key
// and announced by the provider's own `logCareEvent`. What was typed survives a failure.

import { useState } from "preact/hooks";
import { KizunaError } from "../../../core/errors.ts";
import { FieldProblem, type Resource } from "../../../forms/builders.ts";
import { booking, prescription, type ProviderCare, SEND_KINDS, visitReport } from "../../../provider/care.ts";
import { shortAddress } from "../../../ui/format.ts";
import { asKizunaError, Failure, fieldMessage, PatientField } from "./parts.tsx";

const FILE_TYPES: Readonly<Record<string, string>> = {
  pdf: "application/pdf", json: "application/fhir+json", png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", txt: "text/plain",
};
const MAX_FILE = 64 << 20;

type Fields = Record<string, string>;

function Input(props: { id: string; name: string; label: string; fields: Fields; set: (n: string, v: string) => void; problems: Record<string, string>; type?: "text" | "number" | "datetime-local"; area?: boolean }) {
  const problem = props.problems[props.name];
  const common = {
    id: props.id, name: props.name, class: `care-input${props.area ? " pc-textarea" : ""}`, value: props.fields[props.name] ?? "",
    onInput: (e: Event) => props.set(props.name, (e.currentTarget as HTMLInputElement).value),
    "aria-invalid": problem ? ("true" as const) : undefined, "aria-describedby": problem ? `${props.id}-error` : undefined,
  };
  return (
    <div class="care-field">
      <label for={props.id}>{props.label}</label>
      {props.area ? <textarea {...common} /> : <input {...common} type={(props.type ?? "text") as "text"} />}
      {problem ? <p id={`${props.id}-error`} class="care-field-error" role="alert">{problem}</p> : null}
    </div>
  );
}

export function SendMessage(props: { care: ProviderCare; known: string[] }) {
  const [patient, setPatient] = useState("");
  const [kind, setKind] = useState("report");
  const [useFile, setUseFile] = useState(false);
  const [file, setFile] = useState<File | null>(null);
  const [fields, setFields] = useState<Fields>({ minutes: "30" });
  const [problems, setProblems] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<KizunaError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const set = (name: string, value: string) => setFields((now) => ({ ...now, [name]: value }));

  const content = async (): Promise<{ bytes: Uint8Array; contentType: string }> => {
    if (useFile) {
      if (!file) throw new FieldProblem([{ field: "file", reason: "Choose a file to send" }]);
      if (file.size > MAX_FILE) throw new FieldProblem([{ field: "file", reason: "The file is larger than 64 MiB" }]);
      const ext = file.name.split(".").pop()?.toLowerCase() ?? "";
      const contentType = FILE_TYPES[ext];
      if (!contentType) throw new FieldProblem([{ field: "file", reason: "Send a PDF, PNG, JPEG, text or FHIR JSON file" }]);
      return { bytes: new Uint8Array(await file.arrayBuffer()), contentType };
    }
    const ctx = { subject: `Patient/${patient.trim()}`, id: crypto.randomUUID(), now: new Date() };
    const provider = props.care.ctx.address;
    let resource: Resource;
    if (kind === "report") resource = visitReport({ title: fields["title"] ?? "", text: fields["text"] ?? "", provider }, ctx);
    else if (kind === "prescription") resource = prescription({ name: fields["name"] ?? "", rxnorm: fields["rxnorm"] ?? "", dosage: fields["dosage"] ?? "", provider }, ctx);
    else resource = booking({ start: fields["start"] ?? "", minutes: fields["minutes"] ?? "", what: fields["what"] ?? "", provider }, ctx);
    return { bytes: new TextEncoder().encode(JSON.stringify(resource)), contentType: "application/fhir+json" };
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setProblems({});
    setDone(null);
    try {
      const { bytes, contentType } = await content();
      const sent = await props.care.send(patient.trim(), kind, bytes, contentType);
      const title = SEND_KINDS.find((k) => k.kind === kind)?.title ?? kind;
      setDone(`${title} sent to ${shortAddress(sent.patient)} (block ${sent.block_number}), encrypted to their key.`);
    } catch (failure) {
      if (failure instanceof FieldProblem) {
        setProblems(Object.fromEntries(failure.problems.map((p) => [p.field, p.reason])));
        setError(new KizunaError("Some fields need attention: see the messages under them. Nothing was sent."));
      } else {
        setError(asKizunaError(failure));
      }
    } finally {
      setBusy(false);
    }
  };

  const patientError = fieldMessage(error, "patient");
  const p = { fields, set, problems };
  return (
    <form class="care-card pc-card care-form" onSubmit={(e) => void submit(e)} aria-labelledby="send-title" noValidate data-testid="send-form">
      <h2 id="send-title">Send to a patient</h2>
      <p class="care-muted">Encrypted in this page to the patient's own key; the blockchain records that you sent it.</p>
      <PatientField id="send-patient" value={patient} onInput={setPatient} known={props.known} error={patientError} />
      <div class="care-field">
        <label for="send-kind">What you send</label>
        <select id="send-kind" class="care-input" value={kind} onChange={(e) => setKind((e.currentTarget as HTMLSelectElement).value)}>
          {SEND_KINDS.map((k) => <option key={k.kind} value={k.kind}>{k.title}</option>)}
        </select>
      </div>
      <label class="care-check" for="send-use-file">
        <input id="send-use-file" type="checkbox" checked={useFile} onChange={(e) => setUseFile(e.currentTarget.checked)} />
        <span>Send a file instead (PDF, image, text or FHIR JSON)</span>
      </label>
      {useFile ? (
        <div class="care-field">
          <label for="send-file">File</label>
          <input id="send-file" type="file" accept=".pdf,.json,.png,.jpg,.jpeg,.txt" onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)}
                 aria-invalid={problems["file"] ? "true" : undefined} aria-describedby={problems["file"] ? "send-file-error" : undefined} />
          {problems["file"] ? <p id="send-file-error" class="care-field-error" role="alert">{problems["file"]}</p> : null}
        </div>
      ) : kind === "report" ? (
        <>
          <Input id="send-title-input" name="title" label="Title" {...p} />
          <Input id="send-text" name="text" label="Report" area {...p} />
        </>
      ) : kind === "prescription" ? (
        <>
          <Input id="send-med" name="name" label="Medication" {...p} />
          <Input id="send-rxnorm" name="rxnorm" label="RxNorm code (optional)" {...p} />
          <Input id="send-dosage" name="dosage" label="Dosage instructions" {...p} />
        </>
      ) : (
        <>
          <Input id="send-start" name="start" label="Date and time" type="datetime-local" {...p} />
          <Input id="send-minutes" name="minutes" label="Length (minutes)" type="number" {...p} />
          <Input id="send-what" name="what" label="What for" {...p} />
        </>
      )}
      {error && !patientError ? <Failure error={error} onDismiss={() => setError(null)} /> : null}
      {done ? <p class="care-done" role="status" data-testid="send-done">{done}</p> : null}
      <div class="care-actions">
        <button type="submit" class="button button-primary" disabled={busy} aria-busy={busy}>{busy ? "Sending…" : "Encrypt and send"}</button>
      </div>
      <p class="hint">You need a live grant, an open access request or an emergency access of this patient. Your wallet sends the transaction and pays its fee.</p>
    </form>
  );
}
