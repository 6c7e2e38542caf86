// The registry page. A provider cannot add itself (addProvider is for registrars only): it sees
// its address and the public key its wallet derives, to hand to a registrar, and its standing
// in the registry, read from the chain; a registered provider whose key differs replaces it.
// A registrar (REGISTRAR_ROLE) verifies new providers and suspends or reinstates them, each a
// transaction from their own wallet, the list read again from the chain after each.

import { useMemo, useState } from "preact/hooks";
import type { AppStore, State } from "../../app/store.ts";
import type { KizunaError } from "../../core/errors.ts";
import type { ProviderCare } from "../../provider/care.ts";
import { Registry as RegistryClient, statusText } from "../../provider/registry.ts";
import type { RegistryProvider } from "../../patient/chain.ts";
import { bytesToHex0x } from "../../core/bytes.ts";
import { asKizunaError, Failure, fieldMessage, formatTime, useLoad } from "./care/parts.tsx";
import { useProviderCare } from "./Care.tsx";

/** Copy `text` for handing over (the clipboard needs this secure origin; on failure the key
 * stays shown, to be selected by hand). */
function CopyButton(props: { text: string; what: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  const copy = () => navigator.clipboard.writeText(props.text).then(() => setState("copied"), () => setState("failed"));
  return (
    <>
      <button type="button" class="button" onClick={() => void copy()} aria-label={`Copy ${props.what}`}>Copy</button>
      <span role="status" class="care-muted">{state === "copied" ? " Copied." : state === "failed" ? " Could not copy: select the key to copy it." : ""}</span>
    </>
  );
}

function OwnStatus(props: { registry: RegistryClient }) {
  const status = useLoad(() => props.registry.own(), props.registry);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<KizunaError | null>(null);
  const rotate = async () => {
    setBusy(true);
    setError(null);
    try {
      await props.registry.rotateKey();
      status.reload();
    } catch (failure) {
      setError(asKizunaError(failure));
    } finally {
      setBusy(false);
    }
  };
  const s = status.data;
  const badge = !s ? null : !s.entry ? ["care-badge-info", "not registered"] : !s.entry.active ? ["care-badge-bad", "suspended"]
    : !s.keyMatches ? ["care-badge-wait", "other key"] : ["care-badge-ok", s.entry.verified ? "verified" : "active"];
  return (
    <section class="care-card pc-card" aria-labelledby="own-title" data-testid="own-status">
      <h2 id="own-title">Your registry status</h2>
      <Failure error={status.error} retry={status.reload} />
      {status.loading && !s ? <p class="care-loading" role="status">Reading the registry from the chain…</p> : null}
      {s ? (
        <>
          <p role="status"><span class={`care-badge ${badge![0]}`} data-testid="own-badge">{badge![1]}</span> {statusText(s)}</p>
          <dl class="care-facts">
            <dt>Your address</dt><dd class="pc-key" data-testid="own-address">{props.registry.ctx.address}</dd>
            <dt>Your public key (derived from your wallet)</dt>
            <dd><span class="pc-key" data-testid="own-key">{s.derivedKey}</span>{" "}<CopyButton text={s.derivedKey} what="your public key" /></dd>
            {s.entry ? <><dt>Registered</dt><dd>{formatTime(s.entry.registeredAt)}</dd></> : null}
            {s.entry && !s.keyMatches ? <><dt>Key in the registry</dt><dd class="pc-key">{bytesToHex0x(s.entry.umbralPublicKey)}</dd></> : null}
          </dl>
          {s.entry && !s.keyMatches ? (
            <button type="button" class="button button-primary" onClick={() => void rotate()} disabled={busy} aria-busy={busy}>
              {busy ? "Replacing…" : "Replace it with this key"}
            </button>
          ) : null}
          <Failure error={error} onDismiss={() => setError(null)} />
        </>
      ) : null}
      <button type="button" class="button" onClick={status.reload} disabled={status.loading}>Refresh</button>
    </section>
  );
}

function ProviderRow(props: { entry: RegistryProvider; busy: boolean; onToggle: () => void }) {
  const { entry } = props;
  return (
    <tr data-testid="registry-row" data-provider={entry.address} data-active={entry.active ? "true" : "false"}>
      <td data-label="Provider"><span class="pc-key">{entry.address}</span></td>
      <td data-label="Status"><span class={`care-badge ${entry.active ? "care-badge-ok" : "care-badge-bad"}`}>{entry.active ? (entry.verified ? "verified" : "active") : "suspended"}</span></td>
      <td data-label="Registered">{formatTime(entry.registeredAt)}</td>
      <td data-label="Action">
        <button type="button" class={`button${entry.active ? "" : " button-primary"}`} onClick={props.onToggle} disabled={props.busy} aria-busy={props.busy}
                aria-label={`${entry.active ? "Suspend" : "Reinstate"} ${entry.address}`}>
          {props.busy ? "Sending…" : entry.active ? "Suspend" : "Reinstate"}
        </button>
      </td>
    </tr>
  );
}

function Registrar(props: { registry: RegistryClient }) {
  const { registry } = props;
  const list = useLoad(() => registry.providers(), registry);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<KizunaError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [provider, setProvider] = useState("");
  const [key, setKey] = useState("");
  const [credential, setCredential] = useState("");

  const act = async (what: string, run: () => Promise<unknown>, after: string) => {
    setBusy(what);
    setError(null);
    setDone(null);
    try {
      await run();
      setDone(after);
      list.reload();
      return true;
    } catch (failure) {
      setError(asKizunaError(failure));
      return false;
    } finally {
      setBusy(null);
    }
  };
  const add = async (event: Event) => {
    event.preventDefault();
    if (await act("add", () => registry.add(provider, key, credential), `${provider.trim()} is verified in the registry.`)) {
      setProvider("");
      setKey("");
      setCredential("");
    }
  };
  const providerError = fieldMessage(error, "provider");
  const keyError = fieldMessage(error, "public_key");
  const credentialError = fieldMessage(error, "credential");
  const fieldShown = providerError || keyError || credentialError;
  return (
    <section class="care-section" aria-labelledby="registrar-title" data-testid="registrar">
      <h2 id="registrar-title">Providers (registrar)</h2>
      <p class="care-intro">As a registrar you verify providers' credentials and add them, and suspend or reinstate them. Each is a transaction from your wallet.</p>
      {error && !fieldShown ? <Failure error={error} onDismiss={() => setError(null)} /> : null}
      {done ? <p class="care-done" role="status" data-testid="registrar-done">{done}</p> : null}
      <Failure error={list.error} retry={list.reload} />
      {list.loading && !list.data ? <p class="care-loading" role="status">Reading the registry from the chain…</p> : null}
      {list.data ? (
        <div class="pc-scroll">
          <p class="care-muted" id="registry-table-about">Every provider the registry lists, newest first.</p>
          <table class="care-table" data-testid="registry-table" aria-labelledby="registrar-title" aria-describedby="registry-table-about">
            <thead><tr><th scope="col">Provider</th><th scope="col">Status</th><th scope="col">Registered</th><th scope="col">Action</th></tr></thead>
            <tbody>
              {list.data.map((entry) => (
                <ProviderRow key={entry.address} entry={entry} busy={busy === entry.address}
                             onToggle={() => void act(entry.address, () => entry.active ? registry.suspend(entry.address) : registry.reinstate(entry.address),
                               `${entry.address} is ${entry.active ? "suspended" : "reinstated"}.`)} />
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <form class="care-card pc-card care-form" onSubmit={(e) => void add(e)} aria-labelledby="add-title" noValidate data-testid="add-provider">
        <h3 id="add-title">Verify a new provider</h3>
        {([
          ["add-provider-address", "Provider's address", provider, setProvider, providerError],
          ["add-provider-key", "Provider's public key (they see it on their Registry page)", key, setKey, keyError],
          ["add-provider-credential", "Licence or credential reference (recorded as its hash)", credential, setCredential, credentialError],
        ] as const).map(([id, label, value, set, problem]) => (
          <div class="care-field" key={id}>
            <label for={id}>{label}</label>
            <input id={id} class="care-input pc-address" type="text" autoComplete="off" spellcheck={false} value={value}
                   onInput={(e) => set(e.currentTarget.value)} aria-invalid={problem ? "true" : undefined} aria-describedby={problem ? `${id}-error` : undefined} />
            {problem ? <p id={`${id}-error`} class="care-field-error" role="alert">{problem}</p> : null}
          </div>
        ))}
        <div class="care-actions">
          <button type="submit" class="button button-primary" disabled={busy === "add"} aria-busy={busy === "add"}>{busy === "add" ? "Sending…" : "Verify and add"}</button>
        </div>
      </form>
    </section>
  );
}

export function Registry(props: { store: AppStore; state: State; provider: boolean; registrar: boolean }) {
  const care: ProviderCare | null = useProviderCare(props.store, props.state);
  const registry = useMemoRegistry(care);
  return (
    <section aria-labelledby="registry-title" data-testid="registry-page">
      <h1 id="registry-title">Registry</h1>
      <p class="care-intro">The provider registry on the blockchain: who may receive patients' records. Read here from the chain itself.</p>
      {!registry ? <p class="care-loading" role="status">Connecting…</p> : (
        <>
          {props.provider || !props.registrar ? <OwnStatus registry={registry} /> : null}
          {props.registrar ? <Registrar registry={registry} /> : null}
        </>
      )}
    </section>
  );
}

function useMemoRegistry(care: ProviderCare | null): RegistryClient | null {
  return useMemo(() => (care ? new RegistryClient(care.ctx, care) : null), [care]);
}
