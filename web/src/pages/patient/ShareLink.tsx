// Share a link (SMART Health Link): chosen parts of the record, decrypted in this page, put in
// one FHIR Bundle, encrypted here under a key that only the link holds (web/src/sharing/shl.ts);
// an optional passcode and an expiry. The link (shlink:/…) is shown once, to copy and hand over;
// the list shows every link with each time it was opened, and ends a link on request. The link
// is also drawn as a QR code (LinkMade). The International Patient Summary is shared from its
// own page (Summary.tsx), through the same Links.make.

import { useEffect, useMemo, useState } from "preact/hooks";
import { InputError } from "../../core/errors.ts";
import type { LabelledRecord, PatientClient } from "../../patient/patient.ts";
import { FHIR_JSON, Links, type LinkInfo } from "../../sharing/shl.ts";
import { ErrorBanner } from "../../ui/Messages.tsx";
import { useLoad } from "../../ui/useLoad.ts";
import { LinkMade } from "./LinkMade.tsx";
import { formatWhen, LabelCode, Outcome, useAction } from "./sharing/parts.tsx";
import { dateInputValue, expiryOf, labelName } from "./sharing/scopes.ts";
import "./sharing/sharing.css";
import "./data-requests.css";
import "./summary.css";
import { countOf } from "../../ui/format.ts";

type Loaded = { links: LinkInfo[]; records: LabelledRecord[]; now: number };

const OUTCOME_TEXT: Readonly<Record<string, string>> = {
  manifest: "opened", file: "downloaded the records", direct: "opened", "wrong-passcode": "wrong passcode",
};

export function ShareLink(props: { client: PatientClient }) {
  const { client } = props;
  const links = useMemo(() => new Links({ api: client.context.api, apiOptions: client.context.apiOptions }), [client]);
  const { data, error: loadError, loading, reload } = useLoad(async (): Promise<Loaded> => {
    const [list, records, now] = await Promise.all([links.list(), client.records(), client.now()]);
    return { links: list, records: records.filter((r) => r.contentType === FHIR_JSON), now };
  }, client);
  const action = useAction();
  const [chosen, setChosen] = useState<Set<string>>(new Set());
  const [label, setLabel] = useState("");
  const [until, setUntil] = useState("");
  const [passcode, setPasscode] = useState("");
  const [formError, setFormError] = useState<string | null>(null);
  const [made, setMade] = useState<string | null>(null);

  // The expiry starts a week from the chain's now, once that is known; what the patient chose stays.
  useEffect(() => {
    if (data) setUntil((u) => u || dateInputValue(data.now, 7));
  }, [data]);

  // The parts of the record the patient has FHIR records in, with how many.
  const counts = new Map<string, number>();
  for (const r of data?.records ?? []) if (r.label) counts.set(r.label, (counts.get(r.label) ?? 0) + 1);
  const busy = action.busy !== null;

  const share = async (event: Event) => {
    event.preventDefault();
    if (chosen.size === 0) return setFormError("Choose at least one part of your record to share.");
    const expiresAt = expiryOf(until);
    if (expiresAt === null) return setFormError("Choose the last day the link works.");
    setFormError(null);
    setMade(null);
    await action.run("share", async () => {
      const records = (data?.records ?? []).filter((r) => r.label !== null && chosen.has(r.label));
      const contents = await client.readMany(records);
      const resources = contents.map((c, i) => {
        try {
          return JSON.parse(new TextDecoder().decode(c)) as object;
        } catch {
          throw new InputError("records", `record ${records[i]?.id ?? i} is not FHIR JSON`);
        }
      });
      const done = await links.make({
        documents: [{ resourceType: "Bundle", type: "collection", entry: resources.map((resource) => ({ resource })) }],
        label: label || null, expiresAt, passcode: passcode || null,
      });
      setMade(done.uri);
      await reload();
      return `Made a link to ${countOf(resources.length, "record")}, working until ${formatWhen(expiresAt)}. Copy it now: it is shown only once.`;
    });
  };

  const revoke = (link: LinkInfo) => action.run(`revoke-${link.link_id}`, async () => {
    await links.revoke(link.link_id);
    await reload();
    return `The link${link.label ? ` “${link.label}”` : ""} no longer opens for anyone.`;
  });

  return (
    <section class="data-requests" aria-labelledby="shl-title">
      <h1 id="shl-title">Share a link</h1>
      <p class="lead">
        Make a link to parts of your record for a doctor or family member who does not use Kizuna. The records are encrypted in
        this page; the key is inside the link only, so whoever holds the link can read them until it expires or you end it.
      </p>
      <div class="page-messages" aria-live="polite">
        <Outcome action={action} />
        {loadError ? <ErrorBanner error={loadError} action={{ label: "Try again", run: () => void reload() }} /> : null}
      </div>
      {made ? <LinkMade uri={made} id="shl" /> : null}

      <h2 id="shl-new-title">New link</h2>
      <form class="share-form" aria-labelledby="shl-new-title" onSubmit={share} noValidate>
        <fieldset class="scope-fieldset">
          <legend>What to share</legend>
          {data && counts.size === 0 ? <p class="empty">You have no FHIR records to share yet.</p> : null}
          <ul class="scope-list dr-types">
            {[...counts.entries()].sort().map(([l, n]) => (
              <li key={l}>
                <input type="checkbox" id={`shl-${l}`} checked={chosen.has(l)} disabled={busy}
                       onChange={(e) => {
                         const next = new Set(chosen);
                         if ((e.currentTarget as HTMLInputElement).checked) next.add(l);
                         else next.delete(l);
                         setChosen(next);
                       }} />
                <label for={`shl-${l}`}><span class="scope-name">{labelName(l)}</span> <LabelCode label={l} /> <span class="scope-count">({n})</span></label>
              </li>
            ))}
          </ul>
        </fieldset>
        <div class="dr-period">
          <div class="field">
            <label for="shl-label">Name of the link (optional, the reader sees it)</label>
            <input id="shl-label" maxLength={80} value={label} disabled={busy} onInput={(e) => setLabel((e.currentTarget as HTMLInputElement).value)} />
          </div>
          <div class="field">
            <label for="shl-until">Works until (the end of this day)</label>
            <input id="shl-until" type="date" value={until} disabled={busy} min={dateInputValue(data?.now ?? Date.now() / 1000, 0)}
                   onInput={(e) => setUntil((e.currentTarget as HTMLInputElement).value)} />
          </div>
          <div class="field">
            <label for="shl-passcode">Passcode (optional, 4 or more characters)</label>
            <input id="shl-passcode" type="text" autoComplete="off" value={passcode} disabled={busy} aria-describedby="shl-passcode-hint"
                   onInput={(e) => setPasscode((e.currentTarget as HTMLInputElement).value)} />
          </div>
        </div>
        <p id="shl-passcode-hint" class="hint">Tell the passcode separately (by phone, in person). After 5 wrong tries the link locks.</p>
        {formError ? <p class="field-error" role="alert">{formError}</p> : null}
        <div class="form-actions">
          <button type="submit" class="button button-primary" disabled={busy} aria-busy={action.busy === "share"}>
            {action.busy === "share" ? "Encrypting…" : "Make the link"}
          </button>
        </div>
      </form>

      <div class="section-head">
        <h2 id="shl-list-title">Your links</h2>
        <button type="button" class="button button-quiet" disabled={loading} onClick={() => void reload()}>
          {loading ? "Checking…" : "Check who opened them"}
        </button>
      </div>
      {data && data.links.length === 0 ? <p class="empty">You have not made any link yet.</p> : null}
      <ul class="inbox-list" aria-labelledby="shl-list-title">
        {(data?.links ?? []).map((link) => (
          <li key={link.link_id} class="inbox-item" data-testid="shl-link" aria-label={link.label ?? `Link made ${formatWhen(link.created_at)}`}>
            <h3 class="inbox-title">
              <span class={`dr-status dr-status-${link.state === "active" ? "fulfilled" : "declined"}`} data-testid="shl-state">{link.state}</span>{" "}
              {link.label ?? "Untitled link"}
            </h3>
            <dl class="dr-facts">
              <dt>Made</dt><dd>{formatWhen(link.created_at)}</dd>
              {link.expires_at ? <><dt>Works until</dt><dd>{formatWhen(link.expires_at)}</dd></> : null}
              <dt>Passcode</dt><dd>{link.flag.includes("P") ? "yes" : "no"}</dd>
              <dt>Opened</dt>
              <dd>
                {link.accesses.length === 0 ? "not yet" : (
                  <ul class="shl-accesses">
                    {link.accesses.map((a, i) => <li key={i}>{formatWhen(a.at)}: {a.recipient} — {OUTCOME_TEXT[a.outcome] ?? a.outcome}</li>)}
                  </ul>
                )}
              </dd>
            </dl>
            {link.state === "active" ? (
              <div class="form-actions">
                <button type="button" class="button button-danger-text" disabled={busy} onClick={() => void revoke(link)}>End this link</button>
              </div>
            ) : null}
          </li>
        ))}
      </ul>
    </section>
  );
}
