// Requests and inbox: providers' access requests (their note decrypted in this page), each
// answered with a grant (pre-filled from the note; the patient checks it) or a decline; and the
// reports, prescriptions and bookings providers sent, opened and decrypted here. Providers can
// write only once the patient's inbox key is published (one signature, offered here).

import { useEffect, useMemo, useState } from "preact/hooks";
import { utf8Decode } from "../../core/bytes.ts";
import type { KizunaError } from "../../core/errors.ts";
import { formatDate, summarize } from "../../fhir/summarize.ts";
import type { DecryptedRecord, FhirResource, OpenRecord } from "../../fhir/records.ts";
import type { PatientClient, RegistryProvider } from "../../patient/patient.ts";
import { KIND_TEXT, PatientRequests, type InboxItem, type OpenedMessage } from "../../patient/requests.ts";
import { RecordItem } from "../../ui/fhir/RecordItem.tsx";
import { ErrorBanner } from "../../ui/Messages.tsx";
import { useLoad } from "../../ui/useLoad.ts";
import {
  asPageError, ExpiryInput, formatDay, Outcome, ProviderName, ScopePicker, useAction, type Action,
} from "./sharing/parts.tsx";
import { dateInputValue, expiryOf, peopleList, scopeGroups, suggestedGrant } from "./sharing/scopes.ts";
import "../../ui/fhir/fhir.css";
import "./sharing/sharing.css";
import { countOf } from "../../ui/format.ts";

type Loaded = { items: InboxItem[]; providers: RegistryProvider[]; keyPublished: boolean; now: number };

export function Requests(props: { client: PatientClient }) {
  const { client } = props;
  const requests = useMemo(() => new PatientRequests(client), [client]);
  const { data, error: loadError, loading, reload } = useLoad(async (): Promise<Loaded> => {
    const [items, providers, keyPublished, now] = await Promise.all([
      requests.inbox(), client.providers(), requests.inboxKeyPublished(), client.now(),
    ]);
    return { items, providers, keyPublished, now };
  }, client);
  const action = useAction();

  const asks = (data?.items ?? []).filter((i) => i.kind === "access-request");
  // Data requests (`data-request-<status>`) carry no message to open: `kizuna patient data-requests` follows them.
  const messages = (data?.items ?? []).filter((i) => i.kind !== "access-request" && !i.kind.startsWith("data-request-"));
  const busy = action.busy !== null;

  const publish = () => action.run("publish", async () => {
    await requests.publishInboxKey();
    await reload();
    return "Providers can now send you requests, reports and prescriptions that only you can read.";
  });

  return (
    <section class="requests" aria-labelledby="requests-title">
      <h1 id="requests-title">Requests and messages</h1>
      <p class="lead">
        Providers ask here for access to parts of your record, and send you reports, prescriptions and bookings.
        Everything is encrypted to you and opened in this page only.
      </p>
      <div class="page-messages" aria-live="polite">
        <Outcome action={action} />
        {loadError ? <ErrorBanner error={loadError} action={{ label: "Try again", run: () => void reload() }} /> : null}
      </div>
      {data && !data.keyPublished ? (
        <div class="callout">
          <p>
            <strong>Providers cannot write to you yet.</strong> Publish your inbox key: the public key they encrypt requests and reports to.
            It is one free signature and shares nothing.
          </p>
          <button type="button" class="button button-primary" disabled={busy} aria-busy={action.busy === "publish"} onClick={() => void publish()}>
            {action.busy === "publish" ? "Publishing…" : "Let providers write to me"}
          </button>
        </div>
      ) : null}
      <div class="section-head">
        <h2 id="asks-title">Access requests</h2>
        <button type="button" class="button button-quiet" disabled={loading} onClick={() => void reload()}>
          {loading ? "Checking…" : "Check for new"}
        </button>
      </div>
      {loading && !data ? <p class="hint" role="status">Reading your inbox…</p> : null}
      {data && asks.length === 0 ? <p class="empty">No provider is waiting for an answer.</p> : null}
      <ul class="inbox-list" aria-labelledby="asks-title">
        {asks.map((item) => (
          <AccessRequest key={item.ref} item={item} client={client} requests={requests} providers={data?.providers ?? []}
                         now={data?.now ?? 0} action={action} reload={reload} />
        ))}
      </ul>
      <h2 id="messages-title">Reports, prescriptions and bookings</h2>
      {data && messages.length === 0 ? <p class="empty">No messages yet.</p> : null}
      <ul class="inbox-list" aria-labelledby="messages-title">
        {messages.map((item) => (
          <Message key={item.ref} item={item} client={client} requests={requests} providers={data?.providers ?? []} />
        ))}
      </ul>
    </section>
  );
}

/** Open a message once (the note of a request is opened as soon as it is shown). */
function useOpened(requests: PatientRequests, item: InboxItem, auto: boolean) {
  const [opened, setOpened] = useState<OpenedMessage | null>(null);
  const [error, setError] = useState<KizunaError | null>(null);
  const [opening, setOpening] = useState(false);
  const open = async () => {
    if (!item.cid) return;
    setOpening(true);
    try {
      setOpened(await requests.open(item.ref));
      setError(null);
    } catch (caught) {
      setError(asPageError(caught));
    } finally {
      setOpening(false);
    }
  };
  useEffect(() => {
    if (auto) void open();
  }, [item.ref]);
  return { opened, error, opening, open };
}

function AccessRequest(props: {
  item: InboxItem; client: PatientClient; requests: PatientRequests; providers: RegistryProvider[]; now: number;
  action: Action; reload: () => Promise<void>;
}) {
  const { item, client, action } = props;
  const provider = item.provider ?? item.actor;
  const note = useOpened(props.requests, item, true);
  const text = note.opened ? utf8Decode(note.opened.content) : null;
  const groups = useMemo(() => scopeGroups(), []);
  const [answering, setAnswering] = useState(false);
  const [chosen, setChosen] = useState<Set<string>>(new Set());
  const [until, setUntil] = useState("");
  const [suggested, setSuggested] = useState(false);
  const entry = props.providers.find((p) => p.address.toLowerCase() === provider.toLowerCase());
  const busy = action.busy !== null;
  const slug = item.ref.slice(2, 10);

  const startGrant = () => {
    if (!answering && !suggested) {
      const suggestion = suggestedGrant(text ?? "");
      setChosen(new Set(suggestion.labels));
      setUntil(suggestion.until ?? dateInputValue(props.now, suggestion.days));
      setSuggested(true);
    }
    setAnswering(!answering);
  };
  const grant = async (event: Event) => {
    event.preventDefault();
    const expiresAt = expiryOf(until);
    if (chosen.size === 0 || expiresAt === null) return;
    const labels = [...chosen];
    await action.run(`grant-${item.ref}`, async () => {
      const done = await client.grant(provider, labels, expiresAt);
      await props.reload();
      return `Shared ${peopleList(labels)} with ${provider} until ${formatDay(expiresAt)} (block ${done.blockNumber}). The request is answered.`;
    });
  };
  const decline = () => action.run(`decline-${item.ref}`, async () => {
    const done = await props.requests.decline(provider);
    await props.reload();
    return `Declined ${provider}'s request (block ${done.blockNumber}). Nothing was shared.`;
  });

  return (
    <li class="inbox-item" aria-labelledby={`ask-${slug}`}>
      <h3 id={`ask-${slug}`} class="inbox-title">
        <span class="kind">Access request</span> from <ProviderName address={provider} providers={props.providers} />
      </h3>
      <p class="hint">Sent in block {item.block_number}</p>
      <div class="note">
        {text !== null ? <blockquote class="note-text" data-testid="request-note">{text}</blockquote>
          : note.opening ? <p class="hint" role="status">Decrypting the note…</p>
          : !item.cid ? <p class="hint">The service does not hold this request's note.</p> : null}
        {note.error ? <ErrorBanner error={note.error} action={{ label: "Try again", run: () => void note.open() }} /> : null}
      </div>
      <div class="form-actions">
        <button type="button" class="button button-primary" aria-expanded={answering} disabled={busy || entry?.active === false} onClick={startGrant}>
          Grant…
        </button>
        <button type="button" class="button" disabled={busy} aria-busy={action.busy === `decline-${item.ref}`} onClick={() => void decline()}>
          {action.busy === `decline-${item.ref}` ? "Declining…" : "Decline"}
        </button>
      </div>
      {answering ? (
        <form class="inline-form share-form" onSubmit={grant} aria-label={`Share with ${provider}`}>
          <p class="hint">Pre-filled from the request: check what you share before you sign.</p>
          <fieldset class="scope-fieldset">
            <legend>What to share</legend>
            <ScopePicker idPrefix={`ask-${slug}`} groups={groups} selected={chosen} onChange={setChosen} disabled={busy} />
          </fieldset>
          <ExpiryInput id={`ask-${slug}-until`} value={until} onInput={setUntil} min={dateInputValue(props.now, 1)} disabled={busy} />
          <div class="form-actions">
            <button type="submit" class="button button-primary" disabled={busy || chosen.size === 0 || expiryOf(until) === null}
                    aria-busy={action.busy === `grant-${item.ref}`}>
              {action.busy === `grant-${item.ref}` ? "Sharing…" : `Share ${countOf(chosen.size, "part")}`}
            </button>
          </div>
        </form>
      ) : null}
    </li>
  );
}

function Message(props: { item: InboxItem; client: PatientClient; requests: PatientRequests; providers: RegistryProvider[] }) {
  const { item } = props;
  const message = useOpened(props.requests, item, false);
  const from = item.provider ?? item.actor;
  const slug = item.ref.slice(2, 10);
  return (
    <li class="inbox-item" aria-labelledby={`msg-${slug}`}>
      <h3 id={`msg-${slug}`} class="inbox-title">
        <span class="kind">{KIND_TEXT[item.kind] ?? item.kind}</span> from <ProviderName address={from} providers={props.providers} />
      </h3>
      <p class="hint">
        Sent in block {item.block_number}
        {item.flagged_for_review ? " · flagged for review: the sender held no grant of yours when it was sent" : ""}
      </p>
      {message.opened ? <MessageBody opened={message.opened} openRecord={(id) => props.client.readOwn(id)} /> : (
        item.cid ? (
          <button type="button" class="button" disabled={message.opening} aria-busy={message.opening} onClick={() => void message.open()}>
            {message.opening ? "Opening…" : "Open"}<span class="sr-only"> {KIND_TEXT[item.kind] ?? item.kind}</span>
          </button>
        ) : <p class="hint">The service does not hold this message's content.</p>
      )}
      {message.error ? <ErrorBanner error={message.error} action={{ label: "Try again", run: () => void message.open() }} /> : null}
    </li>
  );
}

const JSON_TYPES = /^application\/(fhir\+)?json\b/;

/** A Communication's payload text (summarize() gives its kind and status, not its words). */
function payloadText(resource: FhirResource): string[] {
  const payload = resource["payload"];
  if (!Array.isArray(payload)) return [];
  return payload.map((p) => (p as { contentString?: unknown })?.contentString)
    .filter((s): s is string => typeof s === "string" && s.trim() !== "");
}

function resourcesOf(parsed: unknown): FhirResource[] {
  const r = parsed as { resourceType?: unknown; entry?: unknown };
  if (!r || typeof r.resourceType !== "string") return [];
  if (r.resourceType === "Bundle" && Array.isArray(r.entry)) {
    return r.entry.map((e) => (e as { resource?: FhirResource })?.resource).filter((x): x is FhirResource => !!x && typeof x.resourceType === "string");
  }
  return [r as FhirResource];
}

function MessageBody(props: { opened: OpenedMessage; openRecord: OpenRecord }) {
  const { opened } = props;
  const url = useMemo(() => (JSON_TYPES.test(opened.contentType) || opened.contentType.startsWith("text/")
    ? null : URL.createObjectURL(new Blob([opened.content], { type: opened.contentType }))), [opened]);
  useEffect(() => () => {
    if (url) URL.revokeObjectURL(url);
  }, [url]);
  if (opened.contentType.startsWith("text/")) {
    return <blockquote class="note-text">{utf8Decode(opened.content)}</blockquote>;
  }
  if (JSON_TYPES.test(opened.contentType)) {
    let parsed: unknown = null;
    const raw = utf8Decode(opened.content);
    try {
      parsed = JSON.parse(raw);
    } catch {
      return <pre class="raw">{raw}</pre>;
    }
    const resources = resourcesOf(parsed);
    if (resources.length === 0) return <pre class="raw">{raw}</pre>;
    return (
      <div class="message-body" data-testid="message-body">
        {resources.map((resource, i) => {
          const summary = summarize(resource);
          const record: DecryptedRecord = {
            recordId: `${opened.ref}-${i}`, label: null, contentType: opened.contentType, createdAt: 0, resource,
          };
          return (
            <div key={i} class="msg-resource">
              <RecordItem record={record} summary={summary} time={formatDate(summary.date)} openRecord={props.openRecord} />
              {payloadText(resource).map((t, j) => <p key={j} class="msg-text">{t}</p>)}
            </div>
          );
        })}
      </div>
    );
  }
  return (
    <p>
      A file ({opened.contentType}, {opened.content.length} bytes), decrypted in this page:{" "}
      {url ? <a href={url} download={`message.${opened.contentType.split("/")[1] ?? "bin"}`}>save it</a> : null}
    </p>
  );
}
