// The provider's data requests: what patients asked this provider for (types, period, the
// deadline, the note decrypted here), answered with an acknowledgement, files (sealed to the
// patient in this page; "this completes the request" makes it fulfilled, else fulfilled in
// part) or a decline with a reason. provider/dataRequests.ts does the work.

import { useEffect, useMemo, useState } from "preact/hooks";
import { useLoad } from "../../ui/useLoad.ts";
import type { AppStore, State } from "../../app/store.ts";
import type { KizunaError } from "../../core/errors.ts";
import { STATUS_TEXT, type DataRequest } from "../../patient/dataRequests.ts";
import { ProviderDataRequests } from "../../provider/dataRequests.ts";
import { ErrorBanner } from "../../ui/Messages.tsx";
import { asPageError, formatDay, formatWhen, Outcome, useAction, type Action } from "../patient/sharing/parts.tsx";
import { useProviderCare } from "./Care.tsx";
import "../patient/sharing/sharing.css";
import "../patient/data-requests.css";
import { countOf } from "../../ui/format.ts";

export function ProviderDataRequestsPage(props: { store: AppStore; state: State }) {
  const care = useProviderCare(props.store, props.state);
  const api = useMemo(() => (care ? new ProviderDataRequests(care) : null), [care]);
  const { data: requests, error: loadError, loading, reload } = useLoad(() => (api ? api.list() : Promise.resolve(null)), api, { enabled: api !== null });
  const action = useAction();

  return (
    <section class="data-requests" aria-labelledby="pdr-title">
      <h1 id="pdr-title">Data requests</h1>
      <p class="lead">Patients ask you here for copies of their records. Answer within the deadline: each answer is recorded on the blockchain with its date.</p>
      <div class="page-messages" aria-live="polite">
        <Outcome action={action} />
        {loadError ? <ErrorBanner error={loadError} action={{ label: "Try again", run: () => void reload() }} /> : null}
      </div>
      <div class="section-head">
        <h2 id="pdr-list-title">Requests to you</h2>
        <button type="button" class="button button-quiet" disabled={loading} onClick={() => void reload()}>{loading ? "Checking…" : "Check for new"}</button>
      </div>
      {!api ? <p class="hint">Connect your provider wallet to see requests.</p> : null}
      {requests && requests.length === 0 ? <p class="empty">No patient has asked you for records.</p> : null}
      <ul class="inbox-list" aria-labelledby="pdr-list-title">
        {api ? (requests ?? []).map((r) => <RequestItem key={r.request_id} request={r} api={api} action={action} reload={reload} />) : null}
      </ul>
    </section>
  );
}

function RequestItem(props: { request: DataRequest; api: ProviderDataRequests; action: Action; reload: () => Promise<void> }) {
  const { request: r, api, action } = props;
  const [note, setNote] = useState<string | null>(null);
  const [noteError, setNoteError] = useState<KizunaError | null>(null);
  const [files, setFiles] = useState<File[]>([]);
  const [complete, setComplete] = useState(true);
  const [reason, setReason] = useState("");
  const [mode, setMode] = useState<"none" | "send" | "decline">("none");
  const slug = r.request_id.slice(2, 10);
  const busy = action.busy !== null;
  const closed = r.state === "fulfilled" || r.state === "declined";

  useEffect(() => {
    api.note(r).then(setNote, (e: unknown) => setNoteError(asPageError(e)));
  }, [r.request_id]);

  const answer = (state: string, o: { files?: File[]; reason?: string }) => action.run(`${state}-${r.request_id}`, async () => {
    const contents = await Promise.all((o.files ?? []).map(async (f) => ({
      content: new Uint8Array(await f.arrayBuffer()),
      // A .json file is FHIR JSON here (browsers call it application/json, which records refuse).
      contentType: f.type === "application/json" || f.type === "application/fhir+json" || f.name.toLowerCase().endsWith(".json")
        ? "application/fhir+json" : f.type || "application/octet-stream",
    })));
    const done = await api.answer(r, state, { files: contents, reason: o.reason ?? null });
    setFiles([]);
    setReason("");
    setMode("none");
    await props.reload();
    return `The request is now ${(STATUS_TEXT[done.status] ?? done.status).toLowerCase()} (block ${done.answers.at(-1)?.block_number ?? done.block_number}).`;
  });

  return (
    <li class="inbox-item" aria-labelledby={`pdr-${slug}`} data-testid="provider-data-request">
      <h3 id={`pdr-${slug}`} class="inbox-title">
        <span class={`dr-status dr-status-${r.status}`} data-testid="dr-status">{STATUS_TEXT[r.status] ?? r.status}</span> {r.types.join(", ")}
      </h3>
      <p class="dr-to">From <code class="address">{r.patient}</code></p>
      <dl class="dr-facts">
        <dt>Asked</dt><dd>{formatWhen(r.asked_at)}</dd>
        <dt>Period</dt><dd>{r.since || r.until ? `${r.since ?? "…"} to ${r.until ?? "…"}` : "any time"}</dd>
        <dt>Answer due</dt><dd>{formatDay(r.deadline)}{r.overdue ? " — overdue" : ""}</dd>
      </dl>
      {note !== null ? <blockquote class="note-text" data-testid="pdr-note">{note}</blockquote> : null}
      {noteError ? <ErrorBanner error={noteError} /> : null}
      {!closed ? (
        <div class="form-actions">
          {r.state === "open" ? (
            <button type="button" class="button" disabled={busy} onClick={() => void answer("acknowledged", {})}>Acknowledge</button>
          ) : null}
          <button type="button" class="button button-primary" disabled={busy} aria-expanded={mode === "send"} onClick={() => setMode(mode === "send" ? "none" : "send")}>Send records…</button>
          <button type="button" class="button button-danger-text" disabled={busy} aria-expanded={mode === "decline"} onClick={() => setMode(mode === "decline" ? "none" : "decline")}>Decline…</button>
        </div>
      ) : null}
      {mode === "send" ? (
        <form class="inline-form share-form" aria-label={`Send records to ${r.patient}`} onSubmit={(e) => { e.preventDefault(); void answer(complete ? "fulfilled" : "fulfilled-in-part", { files }); }}>
          <div class="field">
            <label for={`pdr-files-${slug}`}>Files (FHIR JSON, PDF, images)</label>
            <input id={`pdr-files-${slug}`} type="file" multiple disabled={busy} onChange={(e) => setFiles([...((e.currentTarget as HTMLInputElement).files ?? [])])} />
          </div>
          <label class="gas-option"><input type="checkbox" checked={complete} disabled={busy} onChange={(e) => setComplete((e.currentTarget as HTMLInputElement).checked)} /> This completes the request</label>
          <div class="form-actions">
            <button type="submit" class="button button-primary" disabled={busy || (files.length === 0 && !complete)}>
              {files.length ? `Encrypt and send ${countOf(files.length, "file")}` : "Mark as fulfilled"}
            </button>
          </div>
        </form>
      ) : null}
      {mode === "decline" ? (
        <form class="inline-form share-form" aria-label={`Decline the request of ${r.patient}`} onSubmit={(e) => { e.preventDefault(); void answer("declined", { reason }); }}>
          <div class="field dr-note">
            <label for={`pdr-reason-${slug}`}>Reason (the patient sees it)</label>
            <textarea id={`pdr-reason-${slug}`} rows={2} value={reason} disabled={busy} onInput={(e) => setReason((e.currentTarget as HTMLTextAreaElement).value)} />
          </div>
          <div class="form-actions">
            <button type="submit" class="button" disabled={busy}>Decline the request</button>
          </div>
        </form>
      ) : null}
    </li>
  );
}
