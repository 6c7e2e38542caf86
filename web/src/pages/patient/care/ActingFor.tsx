// A guardian chooses whose record the pages show: their own, or a ward's (lists and reads;
// what needs the ward's own keys stays with the ward's wallet).

import { shortAddress } from "../../../ui/format.ts";

export function ActingFor(props: { wards: string[]; current: string | null; onActFor: (patient: string | null) => void }) {
  // The session names wards as the API spells them; the client checksums its ward.
  const value = props.wards.find((w) => w.toLowerCase() === props.current?.toLowerCase()) ?? "";
  return (
    <div class={`care-card${props.current ? " care-acting" : ""}`}>
      <div class="care-field">
        <label for="acting-for">Whose record to show</label>
        <select id="acting-for" class="care-input" value={value}
                onChange={(e) => props.onActFor((e.currentTarget as HTMLSelectElement).value || null)}>
          <option value="">My own record</option>
          {props.wards.map((w) => (
            <option key={w} value={w}>As guardian of {shortAddress(w)} ({w})</option>
          ))}
        </select>
        <p class="hint">
          {props.current
            ? "You are acting for your ward: you see their records' list, who read them and their guardians, and can set their emergency policy. Every action is logged on the chain as yours."
            : "You are a guardian: choose a ward to see their record as their guardian."}
        </p>
      </div>
    </div>
  );
}
