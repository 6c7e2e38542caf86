// Taking part in one study, on the Research page (web/src/pages/patient/Research.tsx): choose
// which of the parts the study asks for to share → the de-identified copy is made in the page
// and shown (resources per type, what is removed, what is left out) → "Share this copy and take
// part" uploads it, shares it with the researcher and records the consent (consent.ts). A
// failure part-way names what failed and keeps the copy: "Try again" resumes where it stopped;
// after the sharing step, "Stop sharing the copy" undoes the grant.

import { useMemo, useRef, useState } from "preact/hooks";
import type { KizunaError } from "../core/errors.ts";
import type { PatientClient } from "../patient/patient.ts";
import type { StudyView } from "../sharing/studies.ts";
import { countOf } from "../ui/format.ts";
import { ErrorBanner } from "../ui/Messages.tsx";
import { asPageError, LabelCode } from "../pages/patient/sharing/parts.tsx";
import { labelName } from "../pages/patient/sharing/scopes.ts";
import { DicomNotHere, StudyConsent, type ConsentProgress, type StudyCopy } from "./consent.ts";
import "./research.css";

function progressText(p: ConsentProgress): string {
  switch (p.step) {
    case "reading": return `Reading your records: ${p.done} of ${p.total}…`;
    case "deidentifying": return `Removing what identifies you: ${p.done} of ${p.total}…`;
    case "uploading": {
      const i = p.import;
      if (!i) return "Encrypting your copy…";
      if (i.phase === "signing") return "Registering your copy (your wallet asks once)…";
      if (i.phase === "registering") return `Registering your copy: ${i.registered} of ${i.total}…`;
      return `Encrypting and uploading your copy: ${i.uploaded} of ${i.total}…`;
    }
    case "sharing": return "Sharing the copy with the researcher (your wallet asks)…";
    case "consenting": return "Recording your consent (your wallet asks)…";
    case "done": return "Done.";
  }
}

export function ConsentPanel(props: { client: PatientClient; study: StudyView; onClose: () => void; onDone: (message: string) => void }) {
  const { client, study } = props;
  const consent = useMemo(() => new StudyConsent(client), [client]);
  const [chosen, setChosen] = useState<string[]>([]);
  const [copy, setCopy] = useState<StudyCopy | null>(null);
  const [progress, setProgress] = useState<ConsentProgress | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<KizunaError | null>(null);
  const [shared, setShared] = useState(false); // the sharing step was reached: a grant may exist
  const last = useRef<ConsentProgress | null>(null); // where a failure stopped
  const [stoppedAt, setStoppedAt] = useState<ConsentProgress | null>(null);
  const track = (p: ConsentProgress) => {
    last.current = p;
    setProgress(p);
  };
  const id = (part: string) => `consent-${study.studyId.slice(2, 10)}-${part}`;

  const toggle = (label: string, on: boolean) => {
    setCopy(null); // another choice needs another copy
    setChosen((now) => (on ? [...now.filter((l) => l !== label), label] : now.filter((l) => l !== label)));
  };

  const run = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    setStoppedAt(null);
    last.current = null;
    try {
      await work();
    } catch (caught) {
      setError(asPageError(caught));
      setStoppedAt(last.current);
    } finally {
      setBusy(false);
      setProgress(null);
    }
  };

  const prepare = () => run(async () => {
    setCopy(await consent.prepare(study, study.scopes.filter((s) => chosen.includes(s)), track));
  });

  const share = (prepared: StudyCopy) => run(async () => {
    await consent.consent(prepared, (p) => {
      if (p.step === "sharing" || p.step === "consenting") setShared(true);
      track(p);
    });
    props.onDone(`You take part in “${study.purpose}”. The researcher can read your de-identified copy (${countOf(prepared.items.length, "record")}) until the study ends or you withdraw.`);
  });

  const stopSharing = (prepared: StudyCopy) => run(async () => {
    const revoked = await consent.abandon(prepared);
    setShared(false);
    setCopy(null);
    props.onDone(revoked ? "The researcher can no longer read the copy; you do not take part in the study." : "The copy was not shared; you do not take part in the study.");
  });

  const counts = copy ? [...copy.counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)) : [];

  return (
    <div class="consent-panel" data-testid="consent-panel">
      <fieldset class="scope-fieldset" disabled={busy}>
        <legend>What to share with this study</legend>
        <ul class="scope-list">
          {study.scopes.map((s) => (
            <li key={s}>
              <input type="checkbox" id={id(s)} checked={chosen.includes(s)} onChange={(e) => toggle(s, (e.currentTarget as HTMLInputElement).checked)} />
              <label for={id(s)}><span class="scope-name">{labelName(s)}</span> <LabelCode label={s} /></label>
            </li>
          ))}
        </ul>
      </fieldset>
      <p class="hint">
        First the page makes a de-identified copy of these records, here on your device, and shows you what it holds. Nothing is sent until
        you agree.
      </p>
      {!copy ? (
        <div class="form-actions">
          <button type="button" class="button button-primary" disabled={busy || chosen.length === 0} aria-busy={busy} onClick={() => void prepare()} data-testid="consent-prepare">
            {busy ? "Making the copy…" : "Make my de-identified copy"}
          </button>
          <button type="button" class="button button-quiet" disabled={busy} onClick={props.onClose}>Cancel</button>
        </div>
      ) : (
        <div class="consent-preview" data-testid="consent-preview">
          <h4>What the study would get</h4>
          {copy.items.length === 0 ? <p>Nothing: you have no records of these parts yet.</p> : (
            <>
              <p>{countOf(copy.items.length, "de-identified record")}, made from {countOf(copy.read, "record")} of yours:</p>
              <ul class="consent-counts" data-testid="consent-counts">
                {counts.map(([kind, n]) => <li key={kind}><strong>{n}</strong> {kind}</li>)}
              </ul>
            </>
          )}
          {copy.empty.length ? (
            <p data-testid="consent-empty">You have no records of {copy.empty.map(labelName).join(", ")}: nothing of {copy.empty.length === 1 ? "it" : "them"} is shared.</p>
          ) : null}
          <ul class="consent-removed">
            <li>Removed: names, identifiers (record numbers, insurance and social security numbers), addresses, phone numbers and e-mail, photos, notes and all free text, attached documents.</li>
            <li>Dates moved by the same number of days, known only to your wallet, so the study sees how far apart events are but not when they happened.</li>
            <li>Ages over 89 given only as “90 or older”. Record ids replaced by codes only this study can use.</li>
            {copy.leftOut > 0 ? <li>Left out: {countOf(copy.leftOut, "record")} about other people and places (doctors, clinics) or that are not health data the page can de-identify.</li> : null}
          </ul>
          <p class="hint">
            Your wallet will ask you to sign up to four times: to register the copy, to set up its sharing keys, to share it with the researcher
            and to record your consent. Until the last one, you do not take part.
          </p>
          <div class="form-actions">
            <button type="button" class="button button-primary" disabled={busy || copy.items.length === 0} aria-busy={busy} onClick={() => void share(copy)} data-testid="consent-share">
              {busy ? "Sharing…" : "Share this copy and take part"}
            </button>
            <button type="button" class="button button-quiet" disabled={busy} onClick={props.onClose}>Cancel</button>
          </div>
        </div>
      )}
      <div aria-live="polite" class="consent-progress">
        {progress ? <p data-testid="consent-progress">{progressText(progress)}</p> : null}
      </div>
      {error ? (
        <div class="consent-error">
          {stoppedAt ? <p class="hint" data-testid="consent-stopped">Stopped at: {progressText(stoppedAt).replace(/…$/, "")}.</p> : null}
          <ErrorBanner error={error} onDismiss={() => setError(null)}
                       action={error instanceof DicomNotHere ? undefined
                         : copy ? { label: "Try again", run: () => void share(copy) } : { label: "Try again", run: () => void prepare() }} />
          {copy && shared ? (
            <p class="hint">
              Your consent is not recorded, so you do not take part. The copy may already be shared with the researcher:{" "}
              <button type="button" class="button button-danger-text" disabled={busy} onClick={() => void stopSharing(copy)} data-testid="consent-abandon">
                Stop sharing the copy
              </button>
            </p>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}
