// The break-glass policy: read from the chain, changed by one transaction from the wallet (a
// guardian's own `...For` for a ward), read again from the chain once it is mined.

import { useEffect, useRef, useState } from "preact/hooks";
import { InputError, type KizunaError } from "../../../core/errors.ts";
import { formatDuration, MAX_EMERGENCY_SECONDS, type Guardianship } from "../../../patient/guardianship.ts";
import type { PatientClient } from "../../../patient/patient.ts";
import { asKizunaError, Failure, fieldMessage, useLoad } from "./common.tsx";

const UNITS = { hours: 3600, days: 86_400 } as const;
type Unit = keyof typeof UNITS;

function split(seconds: number): { amount: string; unit: Unit } {
  if (seconds > 0 && seconds % UNITS.days === 0) return { amount: String(seconds / UNITS.days), unit: "days" };
  if (seconds > 0 && seconds % UNITS.hours === 0) return { amount: String(seconds / UNITS.hours), unit: "hours" };
  return { amount: seconds > 0 ? String(Math.max(1, Math.round(seconds / UNITS.hours))) : "24", unit: "hours" };
}

/** The typed duration in seconds, or InputError("max_duration"). */
export function durationSeconds(amount: string, unit: Unit): number {
  const text = amount.trim();
  if (!/^\d+$/.test(text) || Number(text) === 0) throw new InputError("max_duration", "enter a whole number of hours or days, at least 1");
  const seconds = Number(text) * UNITS[unit];
  if (seconds > MAX_EMERGENCY_SECONDS) throw new InputError("max_duration", `at most ${formatDuration(MAX_EMERGENCY_SECONDS)}`);
  return seconds;
}

export function EmergencyPolicyForm(props: { care: Guardianship; client: PatientClient }) {
  const policy = useLoad(() => props.care.policy(), props.client);
  const [allowed, setAllowed] = useState(false);
  const [amount, setAmount] = useState("24");
  const [unit, setUnit] = useState<Unit>("hours");
  // A ref, not state: the effect below runs after the paint of the render that brought the
  // chain's policy, and what the user typed in between must win over that render's view.
  const touched = useRef(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<KizunaError | null>(null);
  const [done, setDone] = useState<string | null>(null);

  // The form starts from the chain's policy (not once the user has changed something).
  useEffect(() => {
    if (!policy.data || touched.current) return;
    setAllowed(policy.data.allowed);
    const parts = split(policy.data.maxDuration);
    setAmount(parts.amount);
    setUnit(parts.unit);
  }, [policy.data]);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const maxDuration = allowed ? durationSeconds(amount, unit) : 0;
      const confirmed = await props.care.setPolicy(allowed, maxDuration);
      setDone(`Saved on the chain (block ${confirmed.block_number}).`);
      touched.current = false;
      policy.reload();
    } catch (failure) {
      setError(asKizunaError(failure));
    } finally {
      setBusy(false);
    }
  };

  const durationError = fieldMessage(error, "max_duration");
  const current = policy.data;
  return (
    <form class="care-card care-form" onSubmit={(e) => void submit(e)} aria-labelledby="policy-form-title" noValidate>
      <h3 id="policy-form-title">Emergency policy</h3>
      <Failure error={policy.error} retry={policy.reload} />
      <p data-testid="policy-now" role="status">
        {current
          ? current.allowed
            ? <>Now: <span class="care-badge care-badge-ok">allowed</span> for at most {formatDuration(current.maxDuration)}.</>
            : <>Now: <span class="care-badge care-badge-info">not allowed</span> — no provider can open an emergency access.</>
          : policy.loading ? "Reading the policy from the chain…" : null}
      </p>
      <label class="care-check" for="policy-allowed">
        <input id="policy-allowed" type="checkbox" checked={allowed}
               onChange={(e) => { setAllowed(e.currentTarget.checked); touched.current = true; }} />
        <span>Allow a verified provider to open an emergency access</span>
      </label>
      <div class="care-field">
        <label for="policy-duration" id="policy-duration-label">For at most</label>
        <div class="care-row">
          <input id="policy-duration" class="care-input" type="number" min={1} step={1} inputMode="numeric" value={amount}
                 disabled={!allowed} onInput={(e) => { setAmount(e.currentTarget.value); touched.current = true; }}
                 aria-invalid={durationError ? "true" : undefined} aria-describedby={durationError ? "policy-duration-error" : undefined} />
          <select id="policy-unit" class="care-input" aria-label="Unit" value={unit} disabled={!allowed}
                  onChange={(e) => { setUnit((e.currentTarget as HTMLSelectElement).value as Unit); touched.current = true; }}>
            <option value="hours">hours</option>
            <option value="days">days</option>
          </select>
        </div>
        {durationError ? <p id="policy-duration-error" class="care-field-error" role="alert">{durationError}</p> : null}
      </div>
      {error && !durationError ? <Failure error={error} onDismiss={() => setError(null)} /> : null}
      {done ? <p class="care-done" role="status">{done}</p> : null}
      <div class="care-actions">
        <button type="submit" class="button button-primary" disabled={busy} aria-busy={busy}>
          {busy ? "Saving…" : "Save emergency policy"}
        </button>
      </div>
      <p class="hint">Your wallet sends this transaction itself and pays its small network fee.</p>
    </form>
  );
}
