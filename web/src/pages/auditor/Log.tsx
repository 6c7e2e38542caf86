// The on-chain log as an explorer (issue 14): every grant, revocation, revoke-all, care event,
// guardian change, emergency access and anchored root — and the service's read receipts — with
// block, time and transaction; filters by patient, provider, kind and period, each filter (and
// each event) a link: the hash route's query (#/audit?patient=0x…&kind=access-granted).

import { useEffect, useState } from "preact/hooks";
import type { AuditorClient } from "../../auditor/client.ts";
import {
  eventFilter, filterEntries, filterFromHash, filterProblems, hashFor, KINDS, kindName,
  type LogEntry, type LogFilter,
} from "../../auditor/log.ts";
import { shortAddress } from "../../ui/format.ts";
import { Failure, formatTime, RefreshHead, Section, useLoad } from "../patient/care/common.tsx";

export const LOG_ROUTE = "audit";
const PAGE = 100;

function useHashFilter(): LogFilter {
  const [filter, setFilter] = useState(() => filterFromHash(location.hash));
  useEffect(() => {
    const onChange = () => setFilter(filterFromHash(location.hash));
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return filter;
}

function Address(props: { value: string | null | undefined }) {
  if (!props.value) return <span class="care-muted">—</span>;
  return <code title={props.value} aria-label={props.value}>{shortAddress(props.value)}</code>;
}

export function AuditLog(props: { client: AuditorClient }) {
  const loaded = useLoad(() => props.client.log(), props.client);
  const filter = useHashFilter();
  const [draft, setDraft] = useState<LogFilter>(filter);
  const [shown, setShown] = useState(PAGE);
  useEffect(() => { setDraft(filter); setShown(PAGE); }, [filter]);
  const applied = filterProblems(filter);
  const usable = Object.keys(applied).length === 0;
  const problems = filterProblems(draft);
  const [submitted, setSubmitted] = useState(false);
  const entries = loaded.data && usable ? [...filterEntries(loaded.data, filter)].reverse() : [];

  const field = (k: keyof LogFilter, label: string, type: "text" | "date" = "text", placeholder = "") => {
    const problem = submitted ? problems[k] : undefined;
    return (
      <div class="care-field">
        <label for={`audit-${k}`}>{label}</label>
        {/* "text" | "date": preact types each input type apart, hence the cast. */}
        <input id={`audit-${k}`} class="care-input" type={type as "text"} value={draft[k]} placeholder={placeholder}
               {...(problem ? { "aria-invalid": true, "aria-describedby": `audit-${k}-error` } : {})}
               onInput={(e) => setDraft({ ...draft, [k]: (e.currentTarget as HTMLInputElement).value.trim() })} />
        {problem ? <p id={`audit-${k}-error`} class="care-field-error">{label}: {problem}</p> : null}
      </div>
    );
  };

  return (
    <section aria-labelledby="audit-log-title" data-testid="audit-log-page">
      <RefreshHead id="audit-log-title" title="Audit log" loaded={loaded} />
      <p class="care-intro audit-relied" data-testid="audit-log-source">
        This log is decoded from the blockchain by the Kizuna service (its auditor log); reads and refused reads
        are the service's own records. The <a href="#/audit-verify">Verify</a> page checks every read against
        the chain itself.
      </p>
      <form class="audit-filters" aria-label="Filter the log" onSubmit={(e) => {
        e.preventDefault();
        setSubmitted(true);
        if (Object.keys(problems).length === 0) location.hash = hashFor(LOG_ROUTE, draft);
      }}>
        {field("patient", "Patient", "text", "0x…")}
        {field("provider", "Provider", "text", "0x…")}
        <div class="care-field">
          <label for="audit-kind">Event kind</label>
          <select id="audit-kind" class="care-input" value={draft.kind}
                  onChange={(e) => setDraft({ ...draft, kind: (e.currentTarget as HTMLSelectElement).value })}>
            <option value="">All kinds</option>
            {Object.entries(KINDS).map(([k, name]) => <option key={k} value={k}>{name}</option>)}
          </select>
        </div>
        {field("from", "From (day)", "date")}
        {field("to", "To (day)", "date")}
        <div class="care-actions">
          <button type="submit" class="button button-primary">Apply filters</button>
          <a class="button" href={`#/${LOG_ROUTE}`} onClick={() => setSubmitted(false)}>Clear</a>
        </div>
      </form>
      {filter.tx ? (
        <p class="care-intro">{filter.log ? "Showing one event" : "Showing the entries of one transaction"}: transaction{" "}
          <code class="audit-hash">{filter.tx}</code>{filter.log ? <>, log index {filter.log}</> : null}. <a href={`#/${LOG_ROUTE}`}>Show the whole log</a></p>
      ) : null}
      {!usable ? (
        <p class="care-field-error" role="alert">This link's filter is not usable: {Object.entries(applied).map(([k, why]) => `${k} ${why}`).join("; ")}.</p>
      ) : null}
      <Failure error={loaded.error} retry={loaded.reload} />
      {!loaded.data ? (loaded.loading ? <p class="care-loading" role="status">Loading the log…</p> : null) : (
        <Section id="audit-entries-title" title={`Events (${entries.length} of ${loaded.data.length})`}>
          <p class="care-muted audit-link">Link to this view: <a href={hashFor(LOG_ROUTE, filter)} data-testid="audit-view-link">{hashFor(LOG_ROUTE, filter)}</a></p>
          {entries.length ? (
            <table class="care-table audit-table" data-testid="audit-log-table">
              <thead>
                <tr><th scope="col">When</th><th scope="col">Event</th><th scope="col">Patient</th><th scope="col">Provider</th><th scope="col">Block</th><th scope="col">Transaction</th></tr>
              </thead>
              <tbody>
                {entries.slice(0, shown).map((e: LogEntry) => (
                  <tr key={`${e.tx_hash}:${e.log_index}:${String(e.details.requestId ?? "")}`} data-kind={e.kind}>
                    <td data-label="When">{formatTime(e.time)}</td>
                    <td data-label="Event">
                      {kindName(e.kind)}
                      {e.flags.map((f) => <span key={f} class={`care-badge ${f === "pending" ? "care-badge-wait" : "care-badge-bad"}`}> {f}</span>)}
                    </td>
                    <td data-label="Patient"><Address value={e.patient} /></td>
                    <td data-label="Provider"><Address value={e.provider ?? e.actor} /></td>
                    <td data-label="Block" class="care-num">{e.block_number}</td>
                    <td data-label="Transaction">
                      {e.tx_hash
                        ? <a class="audit-hash" href={hashFor(LOG_ROUTE, eventFilter(e))} title={e.tx_hash}>{shortAddress(e.tx_hash)}{e.log_index >= 0 ? ` #${e.log_index}` : ""}</a>
                        : <span class="care-muted">{e.kind === "read" ? "not anchored yet" : "none (off-chain)"}</span>}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : <p class="care-empty">No event matches these filters.</p>}
          {entries.length > shown ? (
            <p class="care-actions">
              <button type="button" class="button" onClick={() => setShown(shown + PAGE)}>
                Show {Math.min(PAGE, entries.length - shown)} more of {entries.length - shown} older events
              </button>
            </p>
          ) : null}
        </Section>
      )}
    </section>
  );
}
