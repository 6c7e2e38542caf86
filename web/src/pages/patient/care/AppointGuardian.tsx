// Appoint a guardian: an address and an end date (the end of that day, in the browser's time
// zone). What was typed stays on any failure; it is cleared only once the chain has it.

import { useState } from "preact/hooks";
import { InputError, type KizunaError } from "../../../core/errors.ts";
import type { Guardianship } from "../../../patient/guardianship.ts";
import { asKizunaError, Failure, fieldMessage, formatDate } from "./common.tsx";

function isoDay(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** The end of the day `day` (YYYY-MM-DD) in the browser's time zone, in seconds. */
export function endOfDay(day: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!match) throw new InputError("until", "choose an end date");
  const end = new Date(Number(match[1]), Number(match[2]) - 1, Number(match[3]), 23, 59, 59);
  if (Number.isNaN(end.getTime())) throw new InputError("until", `${day} is not a date`);
  return Math.floor(end.getTime() / 1000);
}

/** `onDone` gets what to tell the user; the section shows one status for all its actions. */
export function AppointGuardian(props: { care: Guardianship; onDone: (message: string) => void }) {
  const inAYear = new Date();
  inAYear.setFullYear(inAYear.getFullYear() + 1);
  const [guardian, setGuardian] = useState("");
  const [day, setDay] = useState(isoDay(inAYear));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<KizunaError | null>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const until = endOfDay(day);
      const confirmed = await props.care.appoint(guardian, until);
      setGuardian("");
      props.onDone(`${guardian.trim()} is your guardian until ${formatDate(until)} (block ${confirmed.block_number}).`);
    } catch (failure) {
      setError(asKizunaError(failure));
    } finally {
      setBusy(false);
    }
  };

  const guardianError = fieldMessage(error, "guardian");
  const untilError = fieldMessage(error, "until");
  return (
    <form class="care-card care-form" onSubmit={(e) => void submit(e)} aria-labelledby="appoint-title" noValidate>
      <h3 id="appoint-title">Appoint a guardian</h3>
      <div class="care-field">
        <label for="guardian-address">Guardian's account address</label>
        <input id="guardian-address" class="care-input" type="text" inputMode="text" autoComplete="off" spellcheck={false}
               placeholder="0x…" value={guardian} onInput={(e) => setGuardian(e.currentTarget.value)}
               aria-invalid={guardianError ? "true" : undefined} aria-describedby={guardianError ? "guardian-address-error" : undefined} />
        {guardianError ? <p id="guardian-address-error" class="care-field-error" role="alert">{guardianError}</p> : null}
      </div>
      <div class="care-field">
        <label for="guardian-until">Until (end date)</label>
        <input id="guardian-until" class="care-input" type="date" value={day} min={isoDay(new Date())}
               onInput={(e) => setDay(e.currentTarget.value)}
               aria-invalid={untilError ? "true" : undefined} aria-describedby={untilError ? "guardian-until-error" : "guardian-until-hint"} />
        {untilError ? <p id="guardian-until-error" class="care-field-error" role="alert">{untilError}</p>
          : <p id="guardian-until-hint" class="hint">The appointment ends at the end of this day. You can remove it earlier.</p>}
      </div>
      {error && !guardianError && !untilError ? <Failure error={error} onDismiss={() => setError(null)} /> : null}
      <div class="care-actions">
        <button type="submit" class="button button-primary" disabled={busy} aria-busy={busy}>
          {busy ? "Appointing…" : "Appoint guardian"}
        </button>
      </div>
      <p class="hint">Your wallet sends this transaction itself and pays its small network fee: appointing a guardian has no gasless form.</p>
    </form>
  );
}
