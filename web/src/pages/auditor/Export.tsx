// Export (issue 14): the FHIR AuditEvent / Consent / Provenance Bundle of a patient (or of
// everyone) for a period, downloaded as a file. The service builds the Bundle from the chain and
// its receipts, cut to the period (GET /auditor/export?since=&until=, the days' bounds in UTC).

import { useState } from "preact/hooks";
import type { AuditorClient } from "../../auditor/client.ts";
import { dayBound, filterProblems, EMPTY_FILTER } from "../../auditor/log.ts";
import type { KizunaError } from "../../core/errors.ts";
import { asKizunaError, Failure } from "../patient/care/common.tsx";

type Made = { name: string; url: string; counts: Record<string, number> };

export function AuditExport(props: { client: AuditorClient }) {
  const [patient, setPatient] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<KizunaError | null>(null);
  const [made, setMade] = useState<Made | null>(null);
  const [submitted, setSubmitted] = useState(false);
  const problems = filterProblems({ ...EMPTY_FILTER, patient, from, to });

  const run = async (event: Event) => {
    event.preventDefault();
    setSubmitted(true);
    if (Object.keys(problems).length) return;
    setBusy(true);
    setError(null);
    try {
      const bundle = await props.client.exportBundle(patient || null, dayBound("from", from), dayBound("to", to, true));
      const counts: Record<string, number> = {};
      for (const e of (bundle.entry as { resource?: { resourceType?: string } }[])) {
        const type = e.resource?.resourceType ?? "other";
        counts[type] = (counts[type] ?? 0) + 1;
      }
      const name = `kizuna-audit-${patient ? patient.slice(0, 10) : "all"}-${from || "start"}-${to || "now"}.json`;
      if (made) URL.revokeObjectURL(made.url);
      const url = URL.createObjectURL(new Blob([JSON.stringify(bundle, null, 2)], { type: "application/fhir+json" }));
      setMade({ name, url, counts });
      // The download starts at once; the link stays for another copy.
      const link = document.createElement("a");
      link.href = url;
      link.download = name;
      link.click();
    } catch (failure) {
      setError(asKizunaError(failure));
    } finally {
      setBusy(false);
    }
  };

  const field = (id: string, label: string, value: string, set: (v: string) => void, problem: string | undefined, type: "text" | "date", hint?: string) => (
    <div class="care-field">
      <label for={id}>{label}</label>
      {hint ? <p class="hint" id={`${id}-hint`}>{hint}</p> : null}
      <input id={id} class="care-input" type={type as "text"} value={value}
             {...(submitted && problem ? { "aria-invalid": true, "aria-describedby": `${id}-error` } : {})}
             onInput={(e) => set((e.currentTarget as HTMLInputElement).value.trim())} />
      {submitted && problem ? <p id={`${id}-error`} class="care-field-error">{label}: {problem}</p> : null}
    </div>
  );

  return (
    <section aria-labelledby="audit-export-title" data-testid="audit-export-page">
      <h1 id="audit-export-title">Export the audit trail</h1>
      <p class="care-intro">
        A FHIR R4 Bundle: an AuditEvent per read (and per refused read), a Consent per grant, a Provenance per record,
        with the transaction hashes. The service builds it from the chain and its receipts, keeping the entries of the
        period you choose (whole days, UTC).
      </p>
      <form class="care-form" onSubmit={run} aria-label="Export">
        {field("export-patient", "Patient", patient, setPatient, problems.patient, "text", "An address (0x…), or empty for every patient.")}
        <div class="care-row">
          {field("export-from", "From (day)", from, setFrom, problems.from, "date")}
          {field("export-to", "To (day)", to, setTo, problems.to, "date")}
        </div>
        <div class="care-actions">
          <button type="submit" class="button button-primary" disabled={busy} aria-busy={busy}>{busy ? "Preparing…" : "Download the Bundle"}</button>
        </div>
      </form>
      <Failure error={error} onDismiss={() => setError(null)} />
      {made ? (
        <p class="care-done" role="status" data-testid="export-done">
          Downloaded {made.name}: {Object.entries(made.counts).map(([t, n]) => `${n} ${t}`).join(", ") || "no entries in this period"}.{" "}
          <a href={made.url} download={made.name}>Download again</a>
        </p>
      ) : null}
    </section>
  );
}
