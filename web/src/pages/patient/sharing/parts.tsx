// Pieces the Sharing and Requests pages share: running one wallet action at a time with its
// outcome shown (errors with what to do; what the user typed is never cleared on failure),
// provider badges, the scope checkboxes grouped for people, the expiry date, the gas option.

import { useEffect, useRef, useState } from "preact/hooks";
import { KizunaError, toKizunaError } from "../../../core/errors.ts";
import type { RegistryProvider } from "../../../patient/patient.ts";
import { ErrorBanner, Notice } from "../../../ui/Messages.tsx";
import { expiryOf, labelName, type ScopeGroup } from "./scopes.ts";

/** A raw label with a line-break opportunity after its colon (long codes wrap there). */
export function LabelCode(props: { label: string }) {
  const at = props.label.indexOf(":");
  if (at < 0) return <code class="scope-code">{props.label}</code>;
  return <code class="scope-code">{props.label.slice(0, at + 1)}<wbr />{props.label.slice(at + 1)}</code>;
}

export const asPageError = (error: unknown): KizunaError => toKizunaError(error, "Nothing more was sent; try again.");

export type Action = {
  /** The name of the action running (null: none). */
  busy: string | null;
  error: KizunaError | null;
  done: string | null;
  /** Run `work` (one at a time); its answer is the success message. Never throws. */
  run(name: string, work: () => Promise<string>): Promise<boolean>;
  clear(): void;
};

export function useAction(): Action {
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<KizunaError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  return {
    busy, error, done,
    async run(name, work) {
      setBusy(name);
      setError(null);
      setDone(null);
      try {
        setDone(await work());
        return true;
      } catch (caught) {
        setError(asPageError(caught));
        return false;
      } finally {
        setBusy(null);
      }
    },
    clear() {
      setError(null);
      setDone(null);
    },
  };
}

/** The outcome of the last action (role=alert / status), brought into view when it appears:
 * the button that ran it may be far down the page. */
export function Outcome(props: { action: Action }) {
  const { action } = props;
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (action.error || action.done) box.current?.scrollIntoView?.({ block: "nearest" });
  }, [action.error, action.done]);
  return (
    <div ref={box} class="outcome">
      {action.error ? <ErrorBanner error={action.error} onDismiss={action.clear} />
        : action.done ? <Notice text={action.done} onDismiss={action.clear} /> : null}
    </div>
  );
}

export function formatWhen(seconds: number): string {
  return new Date(seconds * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function formatDay(seconds: number): string {
  return new Date(seconds * 1000).toLocaleDateString(undefined, { dateStyle: "medium" });
}

/** "Verified" / "Not verified" / "Suspended", as the registry on chain has it. */
export function ProviderBadge(props: { provider: RegistryProvider | undefined }) {
  const p = props.provider;
  if (!p) return <span class="badge badge-unknown">Not in the registry</span>;
  if (!p.active) return <span class="badge badge-suspended">Suspended</span>;
  if (p.verified) return <span class="badge badge-verified"><span aria-hidden="true">✓ </span>Verified</span>;
  return <span class="badge badge-unverified">Not verified</span>;
}

/** A provider's address, in full (what people compare with what the provider told them). */
export function ProviderName(props: { address: string; providers: RegistryProvider[] }) {
  const entry = props.providers.find((p) => p.address.toLowerCase() === props.address.toLowerCase());
  return (
    <span class="provider-name">
      <code class="address" title={props.address}>{props.address}</code> <ProviderBadge provider={entry} />
    </span>
  );
}

/** The scope checkboxes: the common groups open, the others folded under "More kinds of records". */
export function ScopePicker(props: {
  idPrefix: string;
  groups: ScopeGroup[];
  selected: ReadonlySet<string>;
  onChange: (next: Set<string>) => void;
  /** How many records the patient has per label (shown beside it). */
  counts?: ReadonlyMap<string, number>;
  disabled?: boolean;
}) {
  const { groups, selected } = props;
  const toggle = (label: string, on: boolean) => {
    const next = new Set(selected);
    if (on) next.add(label); else next.delete(label);
    props.onChange(next);
  };
  const common = groups.slice(0, 6);
  const more = groups.slice(6);
  const chosenInMore = more.some((g) => g.labels.some((l) => selected.has(l)));
  const group = (g: ScopeGroup) => (
    <fieldset class="scope-group" key={g.id} aria-describedby={`${props.idPrefix}-about-${g.id}`}>
      <legend>{g.title}</legend>
      <p class="scope-about" id={`${props.idPrefix}-about-${g.id}`}>{g.about}</p>
      <ul class="scope-list">
        {g.labels.map((label) => {
          const id = `${props.idPrefix}-${label.replace(/[^A-Za-z0-9-]/g, "_")}`;
          const count = props.counts?.get(label) ?? 0;
          return (
            <li key={label}>
              <input type="checkbox" id={id} value={label} checked={selected.has(label)} disabled={props.disabled}
                     onChange={(e) => toggle(label, (e.currentTarget as HTMLInputElement).checked)} />
              <label for={id}>
                <span class="scope-name">{labelName(label)}</span>
                {count ? <span class="scope-count"> · {count} record{count === 1 ? "" : "s"}</span> : null}
                <br /><LabelCode label={label} />
              </label>
            </li>
          );
        })}
      </ul>
    </fieldset>
  );
  return (
    <div class="scope-picker">
      <div class="scope-groups">{common.map(group)}</div>
      {more.length ? (
        <details class="scope-more" open={chosenInMore}>
          <summary>More kinds of records</summary>
          <div class="scope-groups">{more.map(group)}</div>
        </details>
      ) : null}
    </div>
  );
}

/** The expiry date input (a date; the grant ends at the end of that day). */
export function ExpiryInput(props: { id: string; value: string; onInput: (v: string) => void; min: string; label?: string; disabled?: boolean }) {
  const valid = props.value === "" || expiryOf(props.value) !== null;
  return (
    <div class="field">
      <label for={props.id}>{props.label ?? "Until (the end of this day)"}</label>
      <input type="date" id={props.id} value={props.value} min={props.min} required disabled={props.disabled}
             aria-invalid={!valid} onInput={(e) => props.onInput((e.currentTarget as HTMLInputElement).value)} />
    </div>
  );
}

/** "Pay the network fee myself": the wallet sends each transaction instead of the service
 * relaying a signature. Switched by the app (onGaslessChange), which owns the client. */
export function GaslessOption(props: { gasless: boolean; onGaslessChange?: ((gasless: boolean) => void) | undefined; disabled?: boolean }) {
  return (
    <div class="gas-option">
      <input type="checkbox" id="pay-gas" checked={!props.gasless} disabled={props.disabled || !props.onGaslessChange}
             onChange={(e) => props.onGaslessChange?.(!(e.currentTarget as HTMLInputElement).checked)} />
      <label for="pay-gas">
        Pay the network fee myself
        <span class="hint"> {props.gasless
          ? "Off: you sign, and Kizuna sends your signed consent to the chain for free."
          : "On: your wallet sends each transaction and pays its fee."}</span>
      </label>
    </div>
  );
}
