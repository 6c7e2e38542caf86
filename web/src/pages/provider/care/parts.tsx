// What the provider's care forms share: the patient field (an address, with the patients who
// granted this provider offered as suggestions), and the patient pages' loading and failure
// helpers (pages/patient/care/common.tsx), reused rather than copied.

import { ok } from "../../../api/client.ts";
import type { ProviderCare } from "../../../provider/care.ts";
import { shortAddress } from "../../../ui/format.ts";
import { useLoad } from "../../patient/care/common.tsx";
import "../../patient/care/care.css";
import "./provider-care.css";

export { asKizunaError, Failure, fieldMessage, formatTime, useLoad } from "../../patient/care/common.tsx";

/** The patients with a live grant to this provider (suggestions for the patient fields). */
export function useKnownPatients(care: ProviderCare) {
  return useLoad(async () => ok(await care.ctx.api.GET("/provider/patients")), care);
}

export function PatientField(props: { id: string; value: string; onInput: (v: string) => void; known: string[]; error: string | null }) {
  const listId = `${props.id}-known`;
  return (
    <div class="care-field">
      <label for={props.id}>Patient's address</label>
      <input id={props.id} name="patient" class="care-input pc-address" type="text" inputMode="text" autoComplete="off" spellcheck={false}
             placeholder="0x…" value={props.value} list={listId} onInput={(e) => props.onInput(e.currentTarget.value)}
             aria-invalid={props.error ? "true" : undefined} aria-describedby={props.error ? `${props.id}-error` : undefined} />
      <datalist id={listId}>
        {props.known.map((p) => <option key={p} value={p}>{shortAddress(p)}</option>)}
      </datalist>
      {props.error ? <p id={`${props.id}-error`} class="care-field-error" role="alert">{props.error}</p> : null}
    </div>
  );
}
