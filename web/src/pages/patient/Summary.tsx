// Health summary: the International Patient Summary (IPS) of the patient's records, built in this
// page from the records decrypted here (web/src/sharing/ips.ts, the rules of the Python builder),
// shown section by section, downloaded as FHIR JSON or as a readable PDF (web/src/sharing/pdfIps.ts,
// loaded when asked for), and shared as a SMART Health Link (the
// link flow of Share a link: encrypted here under a key only the link holds) with its QR code.

import { useEffect, useMemo, useState } from "preact/hooks";
import type { DecryptedRecord } from "../../fhir/records.ts";
import type { PatientClient } from "../../patient/patient.ts";
import { buildIps, IpsError, patientName, sectionsOf, type IpsBundle } from "../../sharing/ips.ts";
import { Links } from "../../sharing/shl.ts";
import { ErrorBanner } from "../../ui/Messages.tsx";
import { LinkMade } from "./LinkMade.tsx";
import { formatWhen, Outcome, useAction } from "./sharing/parts.tsx";
import { dateInputValue, expiryOf } from "./sharing/scopes.ts";
import "./sharing/sharing.css";
import "./data-requests.css";
import "./summary.css";

type Built = { ips: IpsBundle; error: null } | { ips: null; error: IpsError };

function build(records: readonly DecryptedRecord[]): Built {
  try {
    return { ips: buildIps(records.flatMap((r) => (r.resource ? [r.resource] : []))), error: null };
  } catch (caught) {
    if (caught instanceof IpsError) return { ips: null, error: caught };
    throw caught;
  }
}

function download(ips: IpsBundle): void {
  save(new Blob([JSON.stringify(ips, null, 2)], { type: "application/fhir+json" }), `patient-summary-${ips.timestamp.slice(0, 10)}.json`);
}

/** The summary as a PDF (web/src/sharing/pdfIps.ts, loaded only now): saved, and what the
 * PDF's standard font could not show said in the answer (and in the PDF). */
async function downloadPdf(ips: IpsBundle): Promise<string> {
  const { ipsPdf } = await import("../../sharing/pdfIps.ts");
  const made = ipsPdf(ips);
  save(new Blob([made.bytes], { type: "application/pdf" }), `patient-summary-${ips.timestamp.slice(0, 10)}.pdf`);
  if (!made.lost.length) return "Your health summary was saved as a PDF.";
  return `Your health summary was saved as a PDF. Some characters in ${made.lost.join(", ")} cannot be shown by the PDF's standard font: ` +
    "they are printed as “?”, and the PDF says so on its first page. The FHIR JSON download keeps every character exactly.";
}

function save(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function Summary(props: { records: readonly DecryptedRecord[]; client: PatientClient }) {
  const { records, client } = props;
  const built = useMemo(() => build(records), [records]);
  const links = useMemo(() => new Links({ api: client.context.api, apiOptions: client.context.apiOptions }), [client]);
  const action = useAction();
  const pdf = useAction();
  const [label, setLabel] = useState("Health summary");
  const [until, setUntil] = useState("");
  const [passcode, setPasscode] = useState("");
  const [formError, setFormError] = useState<string | null>(null);
  const [made, setMade] = useState<string | null>(null);
  useEffect(() => {
    client.now().then((now) => setUntil((u) => u || dateInputValue(now, 7)), () => setUntil((u) => u || dateInputValue(Date.now() / 1000, 7)));
  }, [client]);

  if (built.error && !built.error.issues.some(([path]) => path === "Patient")) {
    // Not expected (the builder's own output failed the IPS checks): said as it is.
    return (
      <section aria-labelledby="ips-title">
        <h1 id="ips-title">Health summary</h1>
        <ErrorBanner error={built.error} />
      </section>
    );
  }
  if (built.error) {
    return (
      <section aria-labelledby="ips-title">
        <h1 id="ips-title">Health summary</h1>
        <div class="callout" data-testid="ips-no-patient">
          <p><strong>No summary yet: your records hold no Patient record</strong> (your name, birth date and sex).</p>
          <p>
            A health summary names the person it is about. Add your Patient record, for example by importing your health record
            export on the “Add records” page, and the summary is made here.
          </p>
        </div>
      </section>
    );
  }
  const ips = built.ips;
  const patient = ips.entry.find((e) => e.resource.resourceType === "Patient")!.resource;
  const sections = sectionsOf(ips);
  const busy = action.busy !== null;

  const share = async (event: Event) => {
    event.preventDefault();
    const expiresAt = expiryOf(until);
    if (expiresAt === null) return setFormError("Choose the last day the link works.");
    setFormError(null);
    setMade(null);
    await action.run("share", async () => {
      const done = await links.make({ documents: [ips], label: label || null, expiresAt, passcode: passcode || null });
      setMade(done.uri);
      return `Made a link to your health summary, working until ${formatWhen(expiresAt)}. Copy it or show the QR code now: it is shown only once.`;
    });
  };

  return (
    <section class="data-requests" aria-labelledby="ips-title">
      <h1 id="ips-title">Health summary</h1>
      <p class="lead">
        Your International Patient Summary: the standard summary (HL7 FHIR IPS) a doctor anywhere can read, made in this
        page from your records — your active problems, medicines, allergies, vaccinations, latest results and vital signs.
      </p>
      <dl class="ips-facts" data-testid="ips-facts">
        <dt>Patient</dt><dd>{patientName(patient)}</dd>
        <dt>Born</dt><dd>{typeof patient.birthDate === "string" ? patient.birthDate : "unknown"}</dd>
        <dt>Sex</dt><dd>{typeof patient.gender === "string" ? patient.gender : "unknown"}</dd>
        <dt>Made</dt><dd>{formatWhen(Date.parse(ips.timestamp) / 1000)}</dd>
      </dl>
      <div class="ips-actions">
        <button type="button" class="button" onClick={() => download(ips)}>Download (FHIR JSON)</button>
        <button type="button" class="button" disabled={pdf.busy !== null} aria-busy={pdf.busy !== null}
                onClick={() => void pdf.run("pdf", () => downloadPdf(ips))}>
          {pdf.busy ? "Making the PDF…" : "Download (PDF)"}
        </button>
        <a class="button button-quiet" href="#ips-share-title">Share it as a link</a>
      </div>
      <div class="page-messages" aria-live="polite" data-testid="ips-pdf-outcome">
        <Outcome action={pdf} />
      </div>
      {sections.map(({ section, lines }) => (
        <section key={section.key} class="ips-section" aria-labelledby={`ips-${section.key}`} data-testid={`ips-${section.key}`}>
          <h2 id={`ips-${section.key}`}>{section.title} <span class="scope-count">({lines.length})</span></h2>
          {lines.length === 0 ? <p class="empty">No {section.title.toLowerCase()} in your records.</p> : (
            <ul>{lines.map((line, i) => <li key={i}>{line}</li>)}</ul>
          )}
        </section>
      ))}

      <h2 id="ips-share-title">Share this summary as a link</h2>
      <p>
        The summary is encrypted in this page; the key is inside the link only, so whoever holds the link (or scans its QR
        code) can read the summary until it expires or you end it on “Share a link”.
      </p>
      <div class="page-messages" aria-live="polite">
        <Outcome action={action} />
      </div>
      {made ? <LinkMade uri={made} id="ips-link" /> : null}
      <form class="share-form" aria-labelledby="ips-share-title" onSubmit={share} noValidate>
        <div class="dr-period">
          <div class="field">
            <label for="ips-label">Name of the link (optional, the reader sees it)</label>
            <input id="ips-label" maxLength={80} value={label} disabled={busy} onInput={(e) => setLabel((e.currentTarget as HTMLInputElement).value)} />
          </div>
          <div class="field">
            <label for="ips-until">Works until (the end of this day)</label>
            <input id="ips-until" type="date" value={until} disabled={busy} onInput={(e) => setUntil((e.currentTarget as HTMLInputElement).value)} />
          </div>
          <div class="field">
            <label for="ips-passcode">Passcode (optional, 4 or more characters)</label>
            <input id="ips-passcode" type="text" autoComplete="off" value={passcode} disabled={busy}
                   onInput={(e) => setPasscode((e.currentTarget as HTMLInputElement).value)} />
          </div>
        </div>
        {formError ? <p class="field-error" role="alert">{formError}</p> : null}
        <div class="form-actions">
          <button type="submit" class="button button-primary" disabled={busy} aria-busy={action.busy === "share"}>
            {action.busy === "share" ? "Encrypting…" : "Make a link to this summary"}
          </button>
        </div>
      </form>
    </section>
  );
}
