// Break-glass: open emergency access to a patient whose policy allows it (read from the chain
// first: allowed, and for how long at most), with a reason code recorded on chain; then the
// time box counting down against the chain's clock, and what follows — every emergency access
// is flagged on chain for an auditor's review, listed here with its reason and outcome, and
// whether an auditor has reviewed it (by whom, when: the service's record, GET /provider/emergencies).

import { useEffect, useState } from "preact/hooks";
import { InputError, type KizunaError } from "../../../core/errors.ts";
import { isAddress } from "viem";
import { formatDuration } from "../../../patient/guardianship.ts";
import { type EmergencyAccess, type ProviderCare, REASONS, timeLeft } from "../../../provider/care.ts";
import { shortAddress } from "../../../ui/format.ts";
import { asKizunaError, Failure, fieldMessage, formatTime, PatientField, useLoad } from "./parts.tsx";

/** The chain's clock, ticking each second in the page: the page's own clock, moved forward
 * when the head block is ahead of it (a chain whose time was advanced). A head block behind the
 * page's clock is only an idle chain (blocks are made when there are transactions), not a
 * slower clock: then the page's clock counts. Read again when `again` changes. */
function useChainClock(care: ProviderCare, again: unknown): number | null {
  const [offset, setOffset] = useState<number | null>(null);
  const [, tick] = useState(0);
  useEffect(() => {
    let live = true;
    care.now().then((now) => live && setOffset(Math.max(0, now - Date.now() / 1000)), () => setOffset(0));
    const timer = setInterval(() => tick((n) => n + 1), 1000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [care, again]);
  return offset === null ? null : Math.floor(Date.now() / 1000 + offset);
}

function reasonText(code: number): string {
  return REASONS.find((r) => r.code === code)?.text ?? `reason code ${code}`;
}

/** The review that follows an emergency access: flagged on chain, then reviewed by an auditor
 * (the service's record) or still awaiting it. */
function ReviewLine(props: { access: EmergencyAccess }) {
  const { access } = props;
  const review = access.review;
  if (review.state === "reviewed") {
    return <><span class="care-badge care-badge-ok">reviewed</span> Reviewed by auditor <span class="pc-short" title={review.by}>{shortAddress(review.by)}</span> on {formatTime(review.at)}.</>;
  }
  const flag = access.flaggedForReview ? "flagged for review" : "not flagged";
  if (review.state === "unknown") {
    return <><span class="care-badge care-badge-wait">{flag}</span> Whether an auditor has reviewed it could not be read from the service: {review.why}</>;
  }
  return access.flaggedForReview
    ? <><span class="care-badge care-badge-wait">flagged for review</span> Awaiting an auditor's review: an auditor reviews every emergency access and may ask you why it was needed; the patient sees it too.</>
    : <span class="care-badge care-badge-ok">not flagged</span>;
}

function Access(props: { access: EmergencyAccess; now: number | null; onClose: () => void; closing: boolean }) {
  const { access, now } = props;
  const left = now === null ? null : access.until - now;
  const open = access.closedBy === null && left !== null && left > 0;
  return (
    <li class="care-card pc-card" data-testid="emergency-access" data-patient={access.patient} data-open={open ? "true" : "false"}>
      <p><strong class="pc-key">{access.patient}</strong></p>
      {open ? (
        <p>Open — <span class="pc-countdown" data-testid="countdown" role="timer" aria-live="off">{timeLeft(left!)}</span> left (until {formatTime(access.until)})</p>
      ) : (
        <p><span class="care-badge care-badge-info">{access.closedBy ? `closed by ${shortAddress(access.closedBy)}` : "ended"}</span> {formatTime(access.until)}</p>
      )}
      <p>Reason: {reasonText(access.reasonCode)} <span class="care-muted">(code {access.reasonCode}, block {access.openedBlock})</span></p>
      <p data-testid="review" data-review={access.review.state}>
        <ReviewLine access={access} />
      </p>
      {open ? <button type="button" class="button" onClick={props.onClose} disabled={props.closing} aria-busy={props.closing}>{props.closing ? "Closing…" : "Close it now"}</button> : null}
    </li>
  );
}

export function BreakGlass(props: { care: ProviderCare; known: string[] }) {
  const { care } = props;
  const [patient, setPatient] = useState("");
  const [reason, setReason] = useState(String(REASONS[0]!.code));
  const [hours, setHours] = useState("4");
  const [busy, setBusy] = useState(false);
  const [closing, setClosing] = useState<string | null>(null);
  const [error, setError] = useState<KizunaError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const who = patient.trim();
  const policy = useLoad(() => (isAddress(who) ? care.emergencyPolicy(who) : Promise.resolve(null)), `${who}`);
  const accesses = useLoad(() => care.emergencies(), care);
  const now = useChainClock(care, accesses.data);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const h = Number(hours.trim());
      if (!/^\d+$/.test(hours.trim()) || h < 1) throw new InputError("duration", "enter a whole number of hours, at least 1");
      const max = policy.data?.maxDuration ?? 0;
      if (policy.data && h * 3600 > max) throw new InputError("duration", `this patient's policy allows at most ${formatDuration(max)}`);
      const confirmed = await care.openEmergency(who, h * 3600, Number(reason));
      setDone(`Emergency access open (block ${confirmed.block_number}). It is flagged for an auditor's review.`);
      accesses.reload();
    } catch (failure) {
      setError(asKizunaError(failure));
    } finally {
      setBusy(false);
    }
  };

  const close = async (access: EmergencyAccess) => {
    setClosing(access.patient);
    setError(null);
    try {
      await care.closeEmergency(access.patient);
      accesses.reload();
    } catch (failure) {
      setError(asKizunaError(failure));
    } finally {
      setClosing(null);
    }
  };

  const patientError = fieldMessage(error, "patient");
  const durationError = fieldMessage(error, "duration");
  const allowed = policy.data?.allowed === true;
  return (
    <section class="care-section" aria-labelledby="glass-title">
      <div class="pc-grid">
        <form class="care-card pc-card care-form" onSubmit={(e) => void submit(e)} aria-labelledby="glass-title" noValidate data-testid="glass-form">
          <h2 id="glass-title">Emergency access (break-glass)</h2>
          <p class="care-muted">Only where the patient's own policy allows it, for a limited time, always reviewed by an auditor.</p>
          <PatientField id="glass-patient" value={patient} onInput={setPatient} known={props.known} error={patientError} />
          <p role="status" data-testid="glass-policy">
            {!isAddress(who) ? null
              : policy.loading ? "Reading the patient's emergency policy from the chain…"
              : policy.data ? (policy.data.allowed
                ? <><span class="care-badge care-badge-ok">allowed</span> for at most {formatDuration(policy.data.maxDuration)}.</>
                : <><span class="care-badge care-badge-bad">not allowed</span> This patient's policy allows no emergency access.</>)
              : null}
          </p>
          <Failure error={policy.error} retry={policy.reload} />
          <div class="care-field">
            <label for="glass-reason">Reason (recorded on the chain)</label>
            <select id="glass-reason" class="care-input" value={reason} onChange={(e) => setReason((e.currentTarget as HTMLSelectElement).value)}>
              {REASONS.map((r) => <option key={r.code} value={String(r.code)}>{r.text}</option>)}
            </select>
          </div>
          <div class="care-field">
            <label for="glass-hours">For how many hours</label>
            <input id="glass-hours" class="care-input" type="number" min={1} step={1} inputMode="numeric" value={hours}
                   onInput={(e) => setHours(e.currentTarget.value)} aria-invalid={durationError ? "true" : undefined}
                   aria-describedby={durationError ? "glass-hours-error" : undefined} />
            {durationError ? <p id="glass-hours-error" class="care-field-error" role="alert">{durationError}</p> : null}
          </div>
          {error && !patientError && !durationError ? <Failure error={error} onDismiss={() => setError(null)} /> : null}
          {done ? <p class="care-done" role="status" data-testid="glass-done">{done}</p> : null}
          <div class="care-actions">
            <button type="submit" class="button button-primary" disabled={busy || !allowed} aria-busy={busy}>{busy ? "Opening…" : "Open emergency access"}</button>
          </div>
        </form>
        <div class="care-card pc-card" aria-labelledby="accesses-title">
          <h2 id="accesses-title">Your emergency accesses</h2>
          <Failure error={accesses.error} retry={accesses.reload} />
          {accesses.data && accesses.data.length === 0 ? <p class="care-empty">None.</p> : null}
          {accesses.loading && !accesses.data ? <p class="care-loading" role="status">Reading the chain…</p> : null}
          <ul class="care-list">
            {(accesses.data ?? []).map((a) => (
              <Access key={`${a.patient}-${a.openedBlock}`} access={a} now={now} closing={closing === a.patient} onClose={() => void close(a)} />
            ))}
          </ul>
        </div>
      </div>
    </section>
  );
}
