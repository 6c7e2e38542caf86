// Ask a provider for your records (the right of access: HIPAA §164.524, GDPR Art. 15): the
// types and period asked for, a deadline (30 days by default), a note encrypted to the
// provider in this page; the request is the patient's own transaction, so they can prove when
// they asked. The list shows each request's state by chain time (open, acknowledged,
// fulfilled in part, fulfilled, declined, overdue) and takes delivered files in as records
// (checked against the chain, decrypted here, one batch). patient/dataRequests.ts does the work.

import { Fragment } from "preact";
import { useMemo, useState } from "preact/hooks";
import { COMMON_TYPES, DataRequests as Requests, DEFAULT_DEADLINE_DAYS, MAX_DEADLINE_DAYS, STATUS_TEXT, type DataRequest } from "../../patient/dataRequests.ts";
import type { PatientClient, RegistryProvider } from "../../patient/patient.ts";
import { PatientRequests } from "../../patient/requests.ts";
import { ErrorBanner } from "../../ui/Messages.tsx";
import { useLoad } from "../../ui/useLoad.ts";
import { shortAddress, countOf } from "../../ui/format.ts";
import { formatDay, formatWhen, Outcome, ProviderName, useAction } from "./sharing/parts.tsx";
import "./sharing/sharing.css";
import "./data-requests.css";

// keyPublished: providers encrypt the files they send to the patient's inbox key (a provider
// needs no grant to answer: the request itself lets the provider it names answer it on-chain).
// left: per request, the delivered files not in the record yet (a file taken in once is not
// offered again: its records have deterministic ids, patient/dataRequests.ts filesLeft).
type Loaded = { requests: DataRequest[]; providers: RegistryProvider[]; keyPublished: boolean; left: Map<string, number> };

export function DataRequests(props: { client: PatientClient; onReceived?: () => void }) {
  const { client } = props;
  const api = useMemo(() => new Requests(client), [client]);
  const inbox = useMemo(() => new PatientRequests(client), [client]);
  // A guardian acting for a ward has nothing to load here: the page says requests are the ward's own.
  const { data, error: loadError, loading, reload } = useLoad(async (): Promise<Loaded> => {
    const [requests, providers, keyPublished, registered] = await Promise.all([
      api.list(), client.providers(), inbox.inboxKeyPublished(), client.registeredIds(),
    ]);
    const left = new Map<string, number>();
    for (const r of requests) {
      if (r.answers.some((a) => a.deliveries.length)) left.set(r.request_id, await api.filesLeft(r, registered));
    }
    return { requests, providers, keyPublished, left };
  }, client, { enabled: !client.context.ward });
  const action = useAction();
  // The form: kept as typed through any failure.
  const [provider, setProvider] = useState("");
  const [types, setTypes] = useState<Set<string>>(new Set());
  const [since, setSince] = useState("");
  const [until, setUntil] = useState("");
  const [days, setDays] = useState(String(DEFAULT_DEADLINE_DAYS));
  const [note, setNote] = useState("");
  const [formError, setFormError] = useState<string | null>(null);
  const [progress, setProgress] = useState<string | null>(null);

  const active = (data?.providers ?? []).filter((p) => p.active);
  const busy = action.busy !== null;

  const ask = async (event: Event) => {
    event.preventDefault();
    if (!provider) return setFormError("Choose the provider to ask.");
    if (types.size === 0) return setFormError("Choose at least one kind of record to ask for.");
    const deadline = Number(days);
    if (!Number.isInteger(deadline) || deadline < 1 || deadline > MAX_DEADLINE_DAYS) {
      return setFormError(`The deadline is a whole number of days from 1 to ${MAX_DEADLINE_DAYS}.`);
    }
    setFormError(null);
    const ok = await action.run("ask", async () => {
      const made = await api.ask(provider, { types: [...types], since: since || null, until: until || null, deadlineDays: deadline, note });
      await reload();
      return `Asked ${made.provider} for ${made.types.join(", ")} (block ${made.block_number}). They should answer by ${formatDay(made.deadline)}.`;
    });
    if (ok) {
      setTypes(new Set());
      setSince("");
      setUntil("");
      setNote("");
      setDays(String(DEFAULT_DEADLINE_DAYS));
    }
  };

  const receive = (request: DataRequest) => action.run(`receive-${request.request_id}`, async () => {
    setProgress("Checking and decrypting the files…");
    try {
      const done = await api.receive(request, (p) => setProgress(
        p.phase === "encrypting" ? `Encrypting ${p.encrypted} of ${p.total} records…`
          : p.phase === "signing" ? "Waiting for your wallet…" : `Registering ${p.total} records…`));
      props.onReceived?.();
      await reload();
      if (done.added === 0) return "These files are already in your health record: nothing was added.";
      return `Added ${done.added} records from ${countOf(done.files, "file")} to your health record, each with a note of who sent it and for which request.` +
        (done.already ? ` ${done.already} were in your record already.` : "");
    } finally {
      setProgress(null);
    }
  });

  const toggle = (type: string, on: boolean) => {
    const next = new Set(types);
    if (on) next.add(type);
    else next.delete(type);
    setTypes(next);
  };

  // Acting for a ward: a request and the files answering it are the ward's own — sealed to the
  // ward's inbox key and named by the ward's import id key, which a guardian's keys are not
  // (dataRequests.ts receive refuses: ownOnly). The guardian's own requests are not shown
  // here either: this view is the ward's record.
  if (client.context.ward) {
    return (
      <section class="data-requests" aria-labelledby="dr-title">
        <h1 id="dr-title">Ask for records</h1>
        <p class="hint" data-testid="dr-ward-only">
          You are acting for <code>{shortAddress(client.context.ward)}</code>. Only they can ask providers for their records and add the files
          providers send, signed in with their own wallet: those files are encrypted to their keys, which your guardian keys cannot open.
          Switch back to your own record to see your own requests.
        </p>
      </section>
    );
  }

  return (
    <section class="data-requests" aria-labelledby="dr-title">
      <h1 id="dr-title">Ask for your records</h1>
      <p class="lead">
        You have the right to a copy of your records. Ask a provider here: the request is recorded on the blockchain with its
        date, so you can prove when you asked. Providers usually have 30 days to answer.
      </p>
      <div class="page-messages" aria-live="polite">
        <Outcome action={action} />
        {progress ? <p class="hint" role="status">{progress}</p> : null}
        {loadError ? <ErrorBanner error={loadError} action={{ label: "Try again", run: () => void reload() }} /> : null}
      </div>

      {data && !data.keyPublished ? (
        <div class="callout">
          <p>
            <strong>Providers cannot send you files yet.</strong> Publish your inbox key: the public key they encrypt your records to.
            It is one free signature and shares nothing.
          </p>
          <button type="button" class="button button-primary" disabled={busy} aria-busy={action.busy === "publish"}
                  onClick={() => void action.run("publish", async () => {
                    await inbox.publishInboxKey();
                    await reload();
                    return "Providers can now send you records that only you can read.";
                  })}>
            {action.busy === "publish" ? "Publishing…" : "Let providers send me records"}
          </button>
        </div>
      ) : null}

      <h2 id="ask-title">New request</h2>
      <form class="share-form" aria-labelledby="ask-title" onSubmit={ask} noValidate>
        <div class="field">
          <label for="dr-provider">Provider</label>
          <select id="dr-provider" value={provider} disabled={busy} onChange={(e) => setProvider((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">Choose a provider…</option>
            {active.map((p) => (
              <option key={p.address} value={p.address}>{shortAddress(p.address)}{p.verified ? " — verified" : " — not verified"}</option>
            ))}
          </select>
        </div>
        <fieldset class="scope-fieldset">
          <legend>Which records</legend>
          <ul class="scope-list dr-types">
            {COMMON_TYPES.map((t) => (
              <li key={t.type}>
                <input type="checkbox" id={`dr-type-${t.type}`} checked={types.has(t.type)} disabled={busy}
                       onChange={(e) => toggle(t.type, (e.currentTarget as HTMLInputElement).checked)} />
                <label for={`dr-type-${t.type}`}><span class="scope-name">{t.text}</span> <code class="scope-code">{t.type}</code></label>
              </li>
            ))}
          </ul>
        </fieldset>
        <div class="dr-period">
          <div class="field">
            <label for="dr-since">From (optional)</label>
            <input id="dr-since" type="date" value={since} disabled={busy} onInput={(e) => setSince((e.currentTarget as HTMLInputElement).value)} />
          </div>
          <div class="field">
            <label for="dr-until">Until (optional)</label>
            <input id="dr-until" type="date" value={until} disabled={busy} onInput={(e) => setUntil((e.currentTarget as HTMLInputElement).value)} />
          </div>
          <div class="field">
            <label for="dr-days">Answer within (days)</label>
            <input id="dr-days" type="number" inputMode="numeric" min={1} max={MAX_DEADLINE_DAYS} value={days} disabled={busy}
                   onInput={(e) => setDays((e.currentTarget as HTMLInputElement).value)} />
          </div>
        </div>
        <div class="field dr-note">
          <label for="dr-note">Note to the provider (optional)</label>
          <textarea id="dr-note" rows={3} value={note} disabled={busy} aria-describedby="dr-note-hint"
                    onInput={(e) => setNote((e.currentTarget as HTMLTextAreaElement).value)} />
          <p id="dr-note-hint" class="hint">For example “the discharge summary of my stay in March”. Encrypted so only this provider can read it.</p>
        </div>
        {formError ? <p class="field-error" role="alert">{formError}</p> : null}
        <div class="form-actions">
          <button type="submit" class="button button-primary" disabled={busy} aria-busy={action.busy === "ask"}>
            {action.busy === "ask" ? "Asking…" : "Ask for these records"}
          </button>
        </div>
      </form>

      <div class="section-head">
        <h2 id="dr-list-title">Your requests</h2>
        <button type="button" class="button button-quiet" disabled={loading} onClick={() => void reload()}>
          {loading ? "Checking…" : "Check for answers"}
        </button>
      </div>
      {loading && !data ? <p class="hint" role="status">Reading your requests…</p> : null}
      {data && data.requests.length === 0 ? <p class="empty">You have not asked any provider for records yet.</p> : null}
      <ul class="inbox-list" aria-labelledby="dr-list-title">
        {(data?.requests ?? []).map((r) => {
          const slug = r.request_id.slice(2, 10);
          const files = r.answers.reduce((n, a) => n + a.deliveries.length, 0);
          const left = data?.left.get(r.request_id) ?? files;
          const declined = r.answers.find((a) => a.state === "declined");
          return (
            <li key={r.request_id} class="inbox-item" aria-labelledby={`dr-${slug}`} data-testid="data-request">
              <h3 id={`dr-${slug}`} class="inbox-title">
                <span class={`dr-status dr-status-${r.status}`} data-testid="dr-status">{STATUS_TEXT[r.status] ?? r.status}</span>{" "}
                {r.types.join(", ")}
              </h3>
              <p class="dr-to">To <ProviderName address={r.provider} providers={data?.providers ?? []} /></p>
              <dl class="dr-facts">
                <dt>Asked</dt><dd>{formatWhen(r.asked_at)} (block {r.block_number})</dd>
                {r.since || r.until ? <><dt>Period</dt><dd>{r.since ?? "…"} to {r.until ?? "…"}</dd></> : null}
                <dt>Answer due</dt><dd>{formatDay(r.deadline)}{r.overdue ? " — overdue" : ""}</dd>
                {r.answers.map((a) => (
                  <Fragment key={a.ref}><dt>{STATUS_TEXT[a.state] ?? a.state}</dt><dd>{formatWhen(a.answered_at)} (block {a.block_number}){a.deliveries.length ? `, ${countOf(a.deliveries.length, "file")}` : ""}</dd></Fragment>
                ))}
              </dl>
              {declined?.reason ? <blockquote class="note-text">Reason given: {declined.reason}</blockquote> : null}
              {left > 0 ? (
                <div class="form-actions">
                  <button type="button" class="button button-primary" disabled={busy} aria-busy={action.busy === `receive-${r.request_id}`}
                          onClick={() => void receive(r)}>
                    {action.busy === `receive-${r.request_id}` ? "Adding…"
                      : `Add the ${left < files ? `${left} new` : left} file${left === 1 ? "" : "s"} to my record`}
                  </button>
                </div>
              ) : files > 0 ? (
                <p class="hint dr-in-record" data-testid="dr-in-record">
                  {files === 1 ? "The file is" : `All ${files} files are`} in your health record.
                </p>
              ) : null}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
