// Sharing: who can see which part of the record until when (read from the chain after each
// change), sharing parts with a provider of the registry until a date, extending, stopping one
// part, stopping everything. Each change is one wallet request whose purpose the page shows
// (PatientClient: key fragments are made in this page); a failure says what happened and keeps
// what the user chose.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { GrantInfo, PatientClient, RegistryProvider } from "../../patient/patient.ts";
import { shortAddress, countOf } from "../../ui/format.ts";
import { ErrorBanner } from "../../ui/Messages.tsx";
import { useLoad } from "../../ui/useLoad.ts";
import {
  ExpiryInput, formatDay, formatWhen, GaslessOption, LabelCode, Outcome, ProviderBadge, ProviderName,
  ScopePicker, useAction, type Action,
} from "./sharing/parts.tsx";
import { dateInputValue, DEFAULT_DAYS, expiryOf, labelName, peopleList, scopeGroups } from "./sharing/scopes.ts";
import "./sharing/sharing.css";

type Loaded = { providers: RegistryProvider[]; grants: GrantInfo[]; counts: Map<string, number>; now: number };

/** Load what the page shows; `reload()` re-reads it (after a transaction: the chain's state). */
export function useSharingState(client: PatientClient) {
  return useLoad(async (): Promise<Loaded> => {
    const [providers, grants, records, now] = await Promise.all([
      client.providers(), client.grants(), client.records(), client.now(),
    ]);
    const counts = new Map<string, number>();
    for (const r of records) if (r.label) counts.set(r.label, (counts.get(r.label) ?? 0) + 1);
    return { providers, grants, counts, now };
  }, client);
}

export function Sharing(props: { client: PatientClient; onGaslessChange?: (gasless: boolean) => void }) {
  const { client } = props;
  const { data, error, loading, reload } = useSharingState(client);
  const action = useAction();
  const groups = useMemo(() => scopeGroups(), []);
  const [provider, setProvider] = useState("");
  const [chosen, setChosen] = useState<Set<string>>(new Set());
  const [until, setUntil] = useState("");
  const [formError, setFormError] = useState<string | null>(null);
  const formRef = useRef<HTMLFormElement>(null);

  useEffect(() => {
    if (data && until === "") setUntil(dateInputValue(data.now, DEFAULT_DAYS));
  }, [data]);

  const byProvider = useMemo(() => {
    const map = new Map<string, GrantInfo[]>();
    for (const g of data?.grants ?? []) map.set(g.provider, [...(map.get(g.provider) ?? []), g]);
    return map;
  }, [data]);
  const active = (data?.providers ?? []).filter((p) => p.active);
  const busy = action.busy !== null;

  const share = async (event: Event) => {
    event.preventDefault();
    setFormError(null);
    const expiresAt = expiryOf(until);
    if (!provider) return setFormError("Choose the provider to share with.");
    if (chosen.size === 0) return setFormError("Choose at least one part of your record to share.");
    if (expiresAt === null) return setFormError("Choose the date the sharing ends.");
    const labels = [...chosen];
    const ok = await action.run("share", async () => {
      const done = await client.grant(provider, labels, expiresAt);
      await reload();
      const through = done.nodes ? ` Its key pieces went to ${done.nodes.of} proxy nodes, ${done.nodes.threshold} of which serve each read.` : "";
      return `Shared ${peopleList(labels)} with ${provider} until ${formatDay(expiresAt)} (block ${done.blockNumber}).${through}`;
    });
    if (ok) setChosen(new Set());
  };

  const pickProvider = (address: string) => {
    setProvider(address);
    formRef.current?.scrollIntoView({ block: "start" });
    formRef.current?.querySelector<HTMLSelectElement>("select")?.focus();
  };

  return (
    <section class="sharing" aria-labelledby="sharing-title">
      <h1 id="sharing-title">Sharing</h1>
      <p class="lead">
        You decide which provider sees which part of your record, and until when. Each change is one request in your wallet;
        what is shown here is read back from the blockchain afterwards.
      </p>
      <GaslessOption gasless={client.context.gasless} onGaslessChange={props.onGaslessChange} disabled={busy} />
      <div class="page-messages" aria-live="polite">
        <Outcome action={action} />
        {error ? (
          <ErrorBanner error={error} action={{ label: "Try again", run: () => void reload() }} />
        ) : null}
      </div>

      <h2 id="shared-title">Who can see your record</h2>
      {loading && !data ? <p class="hint" role="status">Reading your grants from the blockchain…</p> : null}
      {data && byProvider.size === 0 ? <p class="empty">You are not sharing anything with anyone.</p> : null}
      <div class="share-cards" aria-labelledby="shared-title">
        {[...byProvider.entries()].map(([address, grants]) => (
          <ProviderGrants key={address} client={client} address={address} grants={grants} providers={data?.providers ?? []}
                          now={data?.now ?? 0} action={action} reload={reload} />
        ))}
      </div>

      <h2 id="share-title">Share with a provider</h2>
      <form ref={formRef} class="share-form" aria-labelledby="share-title" onSubmit={share} noValidate>
        <div class="field">
          <label for="share-provider">Provider</label>
          <select id="share-provider" value={provider} disabled={busy}
                  onChange={(e) => setProvider((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">Choose a provider…</option>
            {active.map((p) => (
              <option key={p.address} value={p.address}>{shortAddress(p.address)}{p.verified ? " — verified" : " — not verified"}</option>
            ))}
          </select>
        </div>
        <fieldset class="scope-fieldset">
          <legend>What to share</legend>
          <ScopePicker idPrefix="share" groups={groups} selected={chosen} onChange={setChosen} counts={data?.counts} disabled={busy} />
        </fieldset>
        <ExpiryInput id="share-until" value={until} onInput={setUntil} min={dateInputValue(data?.now ?? Date.now() / 1000, 1)} disabled={busy} />
        {formError ? <p class="field-error" role="alert">{formError}</p> : null}
        <div class="form-actions">
          <button type="submit" class="button button-primary" disabled={busy} aria-busy={action.busy === "share"}>
            {action.busy === "share" ? "Sharing…" : chosen.size ? `Share ${countOf(chosen.size, "part")}` : "Share"}
          </button>
          <span class="hint">Your wallet asks you to sign: once per part to set up its sharing keys (the first time), then the grant itself. Where this service uses proxy nodes, also once per node for its key piece, and your wallet sends the grant and pays its fee.</span>
        </div>
      </form>

      <h2 id="registry-title">Providers in the registry</h2>
      <p class="hint">Verified providers were checked by a registrar; suspended ones cannot receive new grants.</p>
      <ul class="provider-list" aria-labelledby="registry-title">
        {(data?.providers ?? []).map((p) => (
          <li key={p.address} class="provider-item">
            <div>
              <code class="address">{p.address}</code> <ProviderBadge provider={p} />
              <div class="hint">In the registry since {formatDay(p.registeredAt)}</div>
            </div>
            {p.active ? (
              <button type="button" class="button" disabled={busy} onClick={() => pickProvider(p.address)}>
                Share with this provider
              </button>
            ) : null}
          </li>
        ))}
      </ul>
    </section>
  );
}

function ProviderGrants(props: {
  client: PatientClient; address: string; grants: GrantInfo[]; providers: RegistryProvider[]; now: number;
  action: Action; reload: () => Promise<void>;
}) {
  const { client, address, grants, action } = props;
  const [confirming, setConfirming] = useState(false);
  const [extending, setExtending] = useState<string | null>(null);
  const [extendTo, setExtendTo] = useState("");
  const busy = action.busy !== null;
  const entry = props.providers.find((p) => p.address.toLowerCase() === address.toLowerCase());
  const slug = address.slice(2, 10);

  const revoke = (label: string) => action.run(`revoke-${address}-${label}`, async () => {
    const done = await client.revoke(address, label);
    await props.reload();
    return `Stopped sharing ${peopleList([label])} with ${address} (block ${done.blockNumber}).`;
  });
  const revokeAll = async () => {
    const ok = await action.run(`revoke-all-${address}`, async () => {
      const done = await client.revokeAll(address);
      await props.reload();
      return `Stopped sharing everything with ${address} (block ${done.blockNumber}).`;
    });
    if (ok) setConfirming(false);
  };
  const extend = async (grant: GrantInfo) => {
    const expiresAt = expiryOf(extendTo);
    if (!grant.label || expiresAt === null) return;
    const ok = await action.run(`extend-${address}-${grant.label}`, async () => {
      const done = await client.grant(address, [grant.label!], expiresAt);
      await props.reload();
      return `${peopleList([grant.label!])} stays shared with ${address} until ${formatDay(expiresAt)} (block ${done.blockNumber}).`;
    });
    if (ok) setExtending(null);
  };

  return (
    <article class="share-card" aria-label={`Shared with ${address}`}>
      <h3 class="share-card-title"><ProviderName address={address} providers={props.providers} /></h3>
      <ul class="grant-list">
        {grants.map((g) => {
          const key = g.label ?? g.scopeId;
          const isExtending = extending === key;
          return (
            <li key={`${key}-${g.grantedBlock}`} class={`grant${g.live ? "" : " grant-ended"}`}>
              <div class="grant-what">
                <strong>{g.label ? labelName(g.label) : "A part this page cannot name"}</strong>{" "}
                {g.label ? <LabelCode label={g.label} /> : <code>{g.scopeId}</code>}
                <div class="hint">{g.live ? `Until ${formatWhen(g.expiresAt)}` : `Ended ${formatWhen(g.expiresAt)}`}</div>
              </div>
              {g.label ? (
                <div class="grant-actions">
                  <button type="button" class="button" disabled={busy || !entry?.active} aria-expanded={isExtending}
                          onClick={() => {
                            setExtending(isExtending ? null : key);
                            setExtendTo(dateInputValue(Math.max(g.expiresAt, props.now), DEFAULT_DAYS));
                          }}>
                    Extend
                  </button>
                  <button type="button" class="button" disabled={busy} aria-busy={action.busy === `revoke-${address}-${g.label}`}
                          onClick={() => void revoke(g.label!)}>
                    {action.busy === `revoke-${address}-${g.label}` ? "Stopping…" : "Stop sharing"}
                    <span class="sr-only"> {g.label}</span>
                  </button>
                </div>
              ) : null}
              {isExtending && g.label ? (
                <div class="inline-form">
                  <ExpiryInput id={`extend-${slug}-${key.replace(/[^A-Za-z0-9-]/g, "_")}`} label="Share until (the end of this day)"
                               value={extendTo} onInput={setExtendTo} min={dateInputValue(props.now, 1)} disabled={busy} />
                  <button type="button" class="button button-primary" disabled={busy || expiryOf(extendTo) === null}
                          onClick={() => void extend(g)}>
                    {action.busy === `extend-${address}-${g.label}` ? "Extending…" : "Extend sharing"}
                  </button>
                  <button type="button" class="button button-quiet" disabled={busy} onClick={() => setExtending(null)}>Cancel</button>
                </div>
              ) : null}
            </li>
          );
        })}
      </ul>
      {confirming ? (
        <div class="confirm" role="group" aria-labelledby={`confirm-${slug}`}>
          <p id={`confirm-${slug}`}>
            <strong>Stop sharing everything with this provider?</strong> Every grant, open request and emergency access of theirs ends.
            What they read before cannot be taken back. Your wallet sends this transaction itself and pays its small fee.
          </p>
          <button type="button" class="button button-danger" disabled={busy} aria-busy={action.busy === `revoke-all-${address}`}
                  onClick={() => void revokeAll()}>
            {action.busy === `revoke-all-${address}` ? "Stopping…" : "Yes, stop sharing everything"}
          </button>{" "}
          <button type="button" class="button button-quiet" disabled={busy} onClick={() => setConfirming(false)}>Cancel</button>
        </div>
      ) : (
        <button type="button" class="button button-quiet button-danger-text" disabled={busy} onClick={() => setConfirming(true)}>
          Stop sharing everything with this provider…
        </button>
      )}
    </article>
  );
}
