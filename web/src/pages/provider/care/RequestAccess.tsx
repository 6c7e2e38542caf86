// Ask a patient for access: the kinds of records (the patient pages' scope groups, by their main
// label), a period and a note — sealed in this page to the patient's verified inbox key and
// announced by the provider's `requestAccess` transaction; then the requests sent and their
// state now (open, granted, closed), from the chain via the API's provider inbox.

import { useState } from "preact/hooks";
import type { KizunaError } from "../../../core/errors.ts";
import { type ProviderCare, requestNote } from "../../../provider/care.ts";
import { shortAddress } from "../../../ui/format.ts";
import { labelName, scopeGroups } from "../../patient/sharing/scopes.ts";
import { asKizunaError, Failure, fieldMessage, PatientField, useLoad } from "./parts.tsx";

/** What a provider can ask for: each group of the patient pages by its main label (first), which
 * the patient's page reads back from the note to pre-fill its grant form. */
const ASKABLE = scopeGroups().filter((g) => g.labels.length > 0 && g.id !== "other").map((g) => ({ id: g.id, title: g.title, label: g.labels[0]! }));

const STATE_TEXT = { open: "waiting for the patient", granted: "granted", closed: "declined or closed" } as const;
const STATE_BADGE = { open: "care-badge-wait", granted: "care-badge-ok", closed: "care-badge-bad" } as const;

export function RequestAccess(props: { care: ProviderCare; known: string[] }) {
  const [patient, setPatient] = useState("");
  const [labels, setLabels] = useState<string[]>([]);
  const [days, setDays] = useState("30");
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<KizunaError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const sent = useLoad(() => props.care.requests(), props.care);

  const toggle = (label: string, on: boolean) => setLabels((now) => on ? [...now, label] : now.filter((l) => l !== label));

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const note = requestNote({ labels, days: Number(days), text, names: labelName });
      const message = await props.care.requestAccess(patient.trim(), note);
      setDone(`Request sent to ${shortAddress(message.patient)} (block ${message.block_number}). Only they can read your note.`);
      setText("");
      sent.reload();
    } catch (failure) {
      setError(asKizunaError(failure));
    } finally {
      setBusy(false);
    }
  };

  const patientError = fieldMessage(error, "patient");
  const scopesError = fieldMessage(error, "scopes");
  const daysError = fieldMessage(error, "days");
  const noteError = fieldMessage(error, "note");
  const fieldShown = patientError || scopesError || daysError || noteError;
  return (
    <section class="care-section" aria-labelledby="request-title">
      <div class="pc-grid">
        <form class="care-card pc-card care-form" onSubmit={(e) => void submit(e)} aria-labelledby="request-title" noValidate data-testid="request-form">
          <h2 id="request-title">Ask a patient for access</h2>
          <p class="care-muted">Your note is encrypted in this page to the patient's own key: the service cannot read it.</p>
          <PatientField id="request-patient" value={patient} onInput={setPatient} known={props.known} error={patientError} />
          <fieldset class="care-checks" aria-describedby={scopesError ? "request-scopes-error" : undefined}>
            <legend class="care-legend">Records you ask for</legend>
            {ASKABLE.map((g) => (
              <label key={g.id} class="care-check" for={`ask-${g.id}`}>
                <input id={`ask-${g.id}`} type="checkbox" checked={labels.includes(g.label)} onChange={(e) => toggle(g.label, e.currentTarget.checked)} />
                <span>{g.title} <span class="care-muted">({g.label})</span></span>
              </label>
            ))}
          </fieldset>
          {scopesError ? <p id="request-scopes-error" class="care-field-error" role="alert">{scopesError}</p> : null}
          <div class="care-field">
            <label for="request-days">For how many days</label>
            <input id="request-days" class="care-input" type="number" min={1} max={999} step={1} inputMode="numeric" value={days}
                   onInput={(e) => setDays(e.currentTarget.value)} aria-invalid={daysError ? "true" : undefined}
                   aria-describedby={daysError ? "request-days-error" : undefined} />
            {daysError ? <p id="request-days-error" class="care-field-error" role="alert">{daysError}</p> : null}
          </div>
          <div class="care-field">
            <label for="request-note">Note to the patient (why you ask)</label>
            <textarea id="request-note" class="care-input pc-textarea" value={text} onInput={(e) => setText(e.currentTarget.value)}
                      aria-invalid={noteError ? "true" : undefined} aria-describedby={noteError ? "request-note-error" : undefined} />
            {noteError ? <p id="request-note-error" class="care-field-error" role="alert">{noteError}</p> : null}
          </div>
          {error && !fieldShown ? <Failure error={error} onDismiss={() => setError(null)} /> : null}
          {done ? <p class="care-done" role="status" data-testid="request-done">{done}</p> : null}
          <div class="care-actions">
            <button type="submit" class="button button-primary" disabled={busy} aria-busy={busy}>{busy ? "Sending…" : "Send request"}</button>
          </div>
          <p class="hint">Your wallet sends the request's transaction itself and pays its small network fee.</p>
        </form>
        <div class="care-card pc-card" aria-labelledby="requests-title">
          <h2 id="requests-title">Requests you sent</h2>
          <Failure error={sent.error} retry={sent.reload} />
          {sent.data && sent.data.length === 0 ? <p class="care-empty">No requests yet.</p> : null}
          {sent.loading && !sent.data ? <p class="care-loading" role="status">Reading your requests…</p> : null}
          {sent.data && sent.data.length > 0 ? (
            <ul class="care-list" data-testid="sent-requests">
              {sent.data.map((r) => (
                <li key={r.ref} data-testid="sent-request" data-patient={r.patient} data-state={r.state}>
                  <span class="pc-key">{r.patient}</span>{" "}
                  <span class={`care-badge ${STATE_BADGE[r.state]}`}>{STATE_TEXT[r.state]}</span>{" "}
                  <span class="care-muted">block {r.blockNumber}</span>
                </li>
              ))}
            </ul>
          ) : null}
          <button type="button" class="button" onClick={sent.reload} disabled={sent.loading}>Refresh</button>
        </div>
      </div>
    </section>
  );
}
