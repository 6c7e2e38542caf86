// Guardians and emergency (issue 13, item 8): appoint / remove a guardian with an end date, the
// break-glass policy, and the emergency kit (which parts of the record a break-glass access may
// open). Each chain action is one wallet request whose purpose the page shows; the state is read
// again once the block is in. A guardian switches here to acting for a ward (lists and reads).

import { useState } from "preact/hooks";
import type { KizunaError } from "../../core/errors.ts";
import { Guardianship } from "../../patient/guardianship.ts";
import type { PatientClient } from "../../patient/patient.ts";
import { ActingFor } from "./care/ActingFor.tsx";
import { AppointGuardian } from "./care/AppointGuardian.tsx";
import { EmergencyKit } from "./care/EmergencyKit.tsx";
import { EmergencyPolicyForm } from "./care/EmergencyPolicy.tsx";
import { asKizunaError, Failure, formatDate, formatTime, Section, useLoad } from "./care/common.tsx";

export type GuardiansProps = {
  client: PatientClient;
  /** The wards this account is a live guardian of (the session's `guardian_of`). */
  wards?: string[];
  /** Act for a ward (null: for oneself again); the shell gives the pages a client for them. */
  onActFor?: (patient: string | null) => void;
};

export function Guardians(props: GuardiansProps) {
  const { client } = props;
  const care = new Guardianship(client);
  const ward = client.context.ward;
  const guardians = useLoad(() => care.guardians(), client);
  const [removing, setRemoving] = useState<string | null>(null);
  const [removeError, setRemoveError] = useState<KizunaError | null>(null);
  const [done, setDone] = useState<string | null>(null);

  const remove = async (guardian: string) => {
    setRemoving(guardian);
    setRemoveError(null);
    setDone(null);
    try {
      const confirmed = await care.remove(guardian);
      setDone(`${guardian} is no longer your guardian (block ${confirmed.block_number}).`);
      guardians.reload();
    } catch (error) {
      setRemoveError(asKizunaError(error));
      guardians.reload(); // it may have changed elsewhere (another tab, the CLI)
    } finally {
      setRemoving(null);
    }
  };

  return (
    <section aria-labelledby="guardians-title" data-testid="guardians-page">
      <h1 id="guardians-title">Guardians &amp; emergency</h1>
      <p class="care-intro">
        A guardian is someone you trust to act for you — a parent, a partner, a carer — until the date you choose.
        The emergency policy decides whether a verified provider may open your record in an emergency.
      </p>
      {props.wards && props.wards.length > 0 && props.onActFor ? (
        <ActingFor wards={props.wards} current={ward} onActFor={props.onActFor} />
      ) : ward ? (
        <p class="care-card care-acting" role="status">You are acting for <code>{ward}</code>.</p>
      ) : null}

      <Section id="guardians-list-title" title={ward ? "Their guardians" : "Your guardians"}>
        <Failure error={guardians.error} retry={guardians.reload} />
        <Failure error={removeError} onDismiss={() => setRemoveError(null)} />
        {done ? <p class="care-done" role="status">{done}</p> : null}
        {!guardians.data ? (guardians.loading ? <p class="care-loading" role="status">Loading guardians…</p> : null)
          : guardians.data.length === 0 ? <p class="care-empty">No guardian is appointed.</p> : (
            <ul class="care-list" data-testid="guardian-list">
              {guardians.data.map((g) => (
                <li key={g.guardian}>
                  <span>
                    <code>{g.guardian}</code><br />
                    <span class="care-muted">until {formatDate(g.until)} <span class="sr-only">({formatTime(g.until)})</span></span>
                  </span>
                  {ward ? null : (
                    <button type="button" class="button" onClick={() => void remove(g.guardian)} disabled={removing !== null}
                            aria-busy={removing === g.guardian} aria-label={`Remove guardian ${g.guardian}`}>
                      {removing === g.guardian ? "Removing…" : "Remove"}
                    </button>
                  )}
                </li>
              ))}
            </ul>
          )}
        {ward ? null : <AppointGuardian care={care} onDone={(message) => { setDone(message); setRemoveError(null); guardians.reload(); }} />}
      </Section>

      <Section id="policy-title" title="Emergency access (break-glass)"
               intro={`In an emergency a verified provider can open ${ward ? "their" : "your"} record without asking first, for no longer than allowed here. Every such access is flagged for an auditor's review and shows up under “Who read what”.`}>
        <EmergencyPolicyForm care={care} client={client} />
      </Section>

      {ward ? null : (
        <Section id="kit-title" title="Emergency kit"
                 intro="Choose what an emergency access may open — typically allergies, medications and conditions. The keys for these parts are left with the service for every active provider, and it can use them only while a provider's emergency access is open.">
          <EmergencyKit care={care} client={client} />
        </Section>
      )}
    </section>
  );
}
