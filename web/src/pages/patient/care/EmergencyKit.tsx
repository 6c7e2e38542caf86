// The emergency kit: which parts of the record a break-glass access may open. Key fragments of
// the chosen scopes are made in this page for every active provider's registry key and left
// with the service, which may use a provider's part only while its emergency access is open.

import { useState } from "preact/hooks";
import type { KizunaError } from "../../../core/errors.ts";
import type { Guardianship, KitLeft } from "../../../patient/guardianship.ts";
import type { PatientClient } from "../../../patient/patient.ts";
import { labelForPeople } from "../../../patient/scopes.ts";
import { asKizunaError, Failure, fieldMessage, ProviderName, useLoad } from "./common.tsx";

/** What an emergency typically needs, offered even before the record has any. */
export const EMERGENCY_LABELS = ["AllergyIntolerance", "MedicationRequest", "Condition:problem-list-item", "Immunization"];

function emergencyLike(label: string): boolean {
  return /^(AllergyIntolerance|MedicationRequest|Condition|Immunization)(:|$)/.test(label);
}

export function EmergencyKit(props: { care: Guardianship; client: PatientClient }) {
  // The record's labels first: they teach the page to name the kit's scope ids.
  const loaded = useLoad(async () => {
    const own = (await props.client.records()).map((r) => r.label).filter((l): l is string => l !== null);
    const kits = await props.care.kits();
    const inKit = [...new Set(kits.flatMap((k) => k.labels))];
    return { labels: [...new Set([...EMERGENCY_LABELS, ...own, ...inKit])].sort(), kits, inKit };
  }, props.client);
  const [chosen, setChosen] = useState<Set<string> | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<KizunaError | null>(null);
  const [left, setLeft] = useState<KitLeft[] | null>(null);

  const data = loaded.data;
  const labels = { data: data?.labels ?? null, error: loaded.error, loading: loaded.loading, reload: loaded.reload };
  // What the kit holds now is what is ticked; with no kit yet, what an emergency typically needs.
  const picked = chosen ?? new Set(data ? (data.inKit.length ? data.inKit : data.labels.filter(emergencyLike)) : []);
  const toggle = (label: string, on: boolean) => {
    const next = new Set(picked);
    if (on) next.add(label); else next.delete(label);
    setChosen(next);
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setLeft(null);
    try {
      setLeft(await props.care.leaveKit([...picked].sort()));
      setChosen(null);
      loaded.reload();
    } catch (failure) {
      setError(asKizunaError(failure));
    } finally {
      setBusy(false);
    }
  };

  const labelsError = fieldMessage(error, "labels");
  return (
    <form class="care-card care-form" onSubmit={(e) => void submit(e)} aria-labelledby="kit-form-title" noValidate>
      <h3 id="kit-form-title">What an emergency access may open</h3>
      <Failure error={labels.error} retry={labels.reload} />
      {data ? <KitNow kits={data.kits} /> : null}
      {labels.data ? (
        <fieldset class="care-checks" aria-describedby={labelsError ? "kit-labels-error" : undefined}>
          <legend class="sr-only">Parts of your record in the emergency kit</legend>
          {labels.data.map((label) => (
            <label key={label} class="care-check">
              <input type="checkbox" name="kit-label" value={label} checked={picked.has(label)}
                     onChange={(e) => toggle(label, e.currentTarget.checked)} />
              <span>{labelForPeople(label)}</span>
            </label>
          ))}
        </fieldset>
      ) : labels.loading ? <p class="care-loading" role="status">Loading the parts of your record…</p> : null}
      {labelsError ? <p id="kit-labels-error" class="care-field-error" role="alert">{labelsError}</p> : null}
      {error && !labelsError ? <Failure error={error} onDismiss={() => setError(null)} /> : null}
      {left ? (
        <p class="care-done" role="status" data-testid="kit-left">
          The emergency kit was left for {left.length} provider{left.length === 1 ? "" : "s"}.
        </p>
      ) : null}
      <div class="care-actions">
        <button type="submit" class="button button-primary" disabled={busy || !labels.data} aria-busy={busy}>
          {busy ? "Leaving the kit…" : "Leave the emergency kit"}
        </button>
      </div>
      <p class="hint">
        No transaction and no fee. The kit replaces the one you left before. Your wallet may ask once per part of
        the record to register its keys with the service.
      </p>
    </form>
  );
}

function named(kit: KitLeft): string {
  const unnamed = kit.scopeIds.length - kit.labels.length;
  const names = kit.labels.map(labelForPeople).sort();
  if (unnamed > 0) names.push(`${unnamed} other part${unnamed === 1 ? "" : "s"}`);
  return names.join(", ");
}

/** What the kit holds now (as the service keeps it). */
function KitNow(props: { kits: KitLeft[] }) {
  const held = props.kits.filter((k) => k.scopeIds.length > 0);
  if (held.length === 0) {
    return <p data-testid="kit-now">Now: <span class="care-badge care-badge-info">no kit</span> — an emergency access could open nothing.</p>;
  }
  const same = held.every((k) => named(k) === named(held[0]!));
  return (
    <div class="care-kit-now" data-testid="kit-now">
      {same ? (
        <p>Now in the kit, for {held.length} provider{held.length === 1 ? "" : "s"}: {named(held[0]!)}.</p>
      ) : (
        <>
          <p>Now in the kit:</p>
          <ul class="plain-list">
            {held.map((k) => <li key={k.provider}><ProviderName address={k.provider} registry={null} />: {named(k)}</li>)}
          </ul>
        </>
      )}
    </div>
  );
}
