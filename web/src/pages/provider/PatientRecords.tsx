// One patient's records as their provider sees them (issue 14): the records the provider may
// read now, filtered by type, scope and date (the service's list of live grants); "Read" signs a
// ReadRequest in the wallet, the page decrypts with the provider's wallet-derived key and renders
// the record with the patient pages' FHIR components; "Read all" reads each record with its own
// signed request (one wallet prompt and one receipt per read), with progress. A refused read
// says which scope was revoked, expired or never granted, and since when, from the chain.

import { useMemo, useRef, useState } from "preact/hooks";
import { KizunaError } from "../../core/errors.ts";
import { utf8Decode } from "../../core/bytes.ts";
import { isFhirJson } from "../../app/library.ts";
import type { DecryptedRecord, FhirResource } from "../../fhir/records.ts";
import { contentTypeText, sizeText, summarize, type Summary } from "../../fhir/summarize.ts";
import { grantOf, scopeName } from "../../provider/grants.ts";
import type { ProviderClient, RecordFilter } from "../../provider/provider.ts";
import { ReadRefused } from "../../provider/provider.ts";
import type { ReadableRecord, ReadResult } from "../../provider/reads.ts";
import { nodeName, reportText, ThresholdRefused } from "../../provider/threshold.ts";
import { RecordItem } from "../../ui/fhir/RecordItem.tsx";
import "../../ui/fhir/fhir.css";
import { shortAddress } from "../../ui/format.ts";
import { Charts } from "../patient/Charts.tsx";
import { Timeline } from "../patient/Timeline.tsx";
import { asKizunaError, Failure, formatTime, Section, useLoad } from "../patient/care/common.tsx";
import { GrantBadge, grantTerm } from "./Patients.tsx";
import "./reading.css";

/** The patient named in the URL (#/provider-patient?patient=0x…), or null. */
export function patientOfUrl(win: Window = window): string | null {
  const query = win.location.hash.split("?")[1] ?? "";
  return new URLSearchParams(query).get("patient");
}

type Read = { result: ReadResult; record: DecryptedRecord; summary: Summary | null };

/** When the record says it happened (its FHIR date), else when it was added. */
function itemTime(read: Read): string {
  const date = read.summary?.date;
  if (!date) return `added ${formatTime(read.record.createdAt)}`;
  return date.precision === "time" ? formatTime(date.time / 1000) : date.text;
}

/** For sorting, newest first: the FHIR date's instant, else when the record was added. */
function sortTime(read: Read): number {
  return read.summary?.date?.time ?? read.record.createdAt * 1000;
}

/** A content type for people: FHIR JSON records say so. */
function typeText(type: string): string {
  return isFhirJson(type) ? "FHIR record" : contentTypeText(type) ?? type;
}

function parsed(bytes: Uint8Array): FhirResource | null {
  try {
    const value: unknown = JSON.parse(utf8Decode(bytes));
    if (value && typeof value === "object" && typeof (value as { resourceType?: unknown }).resourceType === "string") return value as FhirResource;
  } catch {
    // Not JSON: shown as a file.
  }
  return null;
}

function decrypted(result: ReadResult): DecryptedRecord {
  const r = result.record;
  return {
    // The scope's name is the label the timeline's scope filter groups by.
    recordId: r.record_id.toLowerCase(), label: scopeName(r.scope_id), contentType: result.contentType, createdAt: r.created_at,
    resource: isFhirJson(result.contentType) ? parsed(result.content) : null, bytes: result.content,
  };
}

const EXTENSIONS: Record<string, string> = {
  "application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg", "application/dicom": "dcm", "text/plain": "txt",
};

/** Save the decrypted bytes as a file (made in the page: nothing is sent anywhere). */
function download(read: Read): void {
  const type = read.result.contentType;
  const fhir = read.record.resource;
  const name = fhir
    ? `${fhir.resourceType}-${read.record.recordId.slice(2, 10)}.json`
    : `record-${read.record.recordId.slice(2, 10)}.${EXTENSIONS[type.split(";")[0]!.trim()] ?? "bin"}`;
  const url = URL.createObjectURL(new Blob([read.result.content as BlobPart], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function toSeconds(day: string, endOfDay: boolean): number | undefined {
  if (!day) return undefined;
  const ms = Date.parse(`${day}T${endOfDay ? "23:59:59" : "00:00:00"}Z`);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}

export function PatientRecords(props: { client: ProviderClient; patient: string | null }) {
  const { client, patient } = props;
  if (!patient) {
    return (
      <section aria-labelledby="provider-records-title">
        <h1 id="provider-records-title">Patient records</h1>
        <p class="care-intro">Choose a patient on the <a href="#/provider-patients">Patients</a> page.</p>
      </section>
    );
  }
  return <PatientView key={patient} client={client} patient={patient} />;
}

function PatientView(props: { client: ProviderClient; patient: string }) {
  const { client, patient } = props;
  const [type, setType] = useState("");
  const [scope, setScope] = useState("");
  const [since, setSince] = useState("");
  const [until, setUntil] = useState("");
  const filter: RecordFilter = useMemo(() => {
    const f: RecordFilter = {};
    if (type) f.contentType = type;
    if (scope) f.scopeId = scope;
    const s = toSeconds(since, false);
    const u = toSeconds(until, true);
    if (s !== undefined) f.since = s;
    if (u !== undefined) f.until = u;
    return f;
  }, [type, scope, since, until]);
  const grants = useLoad(() => client.grantsOf(patient), client);
  const listed = useLoad(() => client.records(patient, filter), JSON.stringify(filter));
  const all = useLoad(() => client.records(patient), client);
  const [reads, setReads] = useState<Map<string, Read>>(new Map());
  const [failures, setFailures] = useState<Map<string, KizunaError>>(new Map());
  const [busy, setBusy] = useState<string | null>(null);
  const [progress, setProgress] = useState<{ done: number; total: number } | null>(null);
  // What was read, as a list (with downloads and receipts) or as the patient's timeline.
  const [view, setView] = useState<"list" | "timeline">("list");
  const stopping = useRef(false);

  // Every record this provider was shown (a refusal of one no longer listed still names it).
  const known = useRef(new Map<string, ReadableRecord>());
  for (const r of [...(all.data ?? []), ...(listed.data ?? [])]) known.current.set(r.record_id.toLowerCase(), r);

  const types = [...new Set((all.data ?? []).map((r) => r.content_type))].sort();
  const scopes = [...new Set((all.data ?? []).map((r) => r.scope_id.toLowerCase()))].sort();

  const settle = (id: string, outcome: ReadResult | Error) => {
    if (outcome instanceof Error) {
      setFailures((m) => new Map(m).set(id, asKizunaError(outcome)));
      if (outcome instanceof ReadRefused) { listed.reload(); all.reload(); grants.reload(); }
    } else {
      const record = decrypted(outcome);
      setReads((m) => new Map(m).set(id, { result: outcome, record, summary: record.resource ? summarize(record.resource) : null }));
      setFailures((m) => { const n = new Map(m); n.delete(id); return n; });
    }
  };

  const readOne = async (record: ReadableRecord) => {
    const id = record.record_id.toLowerCase();
    setBusy(id);
    try {
      settle(id, await client.read(record));
      // Show what was read: it is rendered below the list (after this render).
      requestAnimationFrame(() => document.querySelector(`.provider-read[data-record="${id}"]`)?.scrollIntoView({ block: "start" }));
    } catch (error) {
      settle(id, error instanceof Error ? error : asKizunaError(error));
    } finally {
      setBusy(null);
    }
  };

  const readAll = async () => {
    const records = listed.data ?? [];
    stopping.current = false;
    setProgress({ done: 0, total: records.length });
    try {
      await client.readAll(patient, records, (index, outcome) => {
        settle(records[index]!.record_id.toLowerCase(), outcome);
        setProgress({ done: index + 1, total: records.length });
      }, () => stopping.current);
    } catch (error) {
      setFailures((m) => new Map(m).set("batch", asKizunaError(error)));
    } finally {
      setProgress(null);
    }
  };

  // A record's file (a DocumentReference's attachment is its own record): read it, signed.
  const openRecord = async (recordId: string): Promise<Blob> => {
    const id = recordId.toLowerCase();
    const already = reads.get(id);
    if (already) return new Blob([already.result.content as BlobPart], { type: already.result.contentType });
    const record = known.current.get(id);
    if (!record) throw new KizunaError(`Record ${shortAddress(recordId)} is not among the records you may read now.`);
    const done = await client.read(record);
    settle(id, done);
    return new Blob([done.content as BlobPart], { type: done.contentType });
  };

  const readList = [...reads.values()].sort((a, b) => sortTime(b) - sortTime(a));
  const decryptedRecords = useMemo(() => readList.map((r) => r.record), [reads]);
  const refused = [...failures].filter(([, e]) => e instanceof ReadRefused);
  const otherFailures = [...failures].filter(([, e]) => !(e instanceof ReadRefused));
  const records = listed.data ?? [];

  return (
    <section aria-labelledby="provider-records-title" data-testid="provider-records-page">
      <div class="care-head">
        <h1 id="provider-records-title">Records of <span title={patient}>{shortAddress(patient)}</span></h1>
        <a class="button" href="#/provider-patients">All patients</a>
      </div>
      <p class="care-intro">
        Each read is signed by your wallet and leaves a receipt the patient sees. The record is decrypted here, in
        this page, with your key; the service only re-encrypts it for you and never sees it.
      </p>
      {refused.map(([id, error]) => (
        <div key={id} class="banner banner-error" role="alert" data-testid="read-refused">
          <p><strong>{error.message}</strong></p>
          <div class="banner-actions">
            <button type="button" class="button button-quiet" onClick={() => setFailures((m) => { const n = new Map(m); n.delete(id); return n; })}>Dismiss</button>
          </div>
        </div>
      ))}
      {otherFailures.map(([id, error]) => error instanceof ThresholdRefused ? (
        <div key={id} class="banner banner-error" role="alert" data-testid="threshold-refused">
          <p><strong>Record {shortAddress(id)} could not be read: the patient's grant needs {error.threshold} proxy nodes to serve it, and {error.served === 0 ? "none" : `only ${error.served}`} did.</strong></p>
          <ul>{error.skipped.map((s) => <li key={s.node.address}>{nodeName(s.node)} {s.why}.</li>)}</ul>
          <p>Nothing was decrypted. Try again when the nodes are back.</p>
          <div class="banner-actions">
            <button type="button" class="button button-quiet" onClick={() => setFailures((m) => { const n = new Map(m); n.delete(id); return n; })}>Dismiss</button>
          </div>
        </div>
      ) : (
        <Failure key={id} error={error} onDismiss={() => setFailures((m) => { const n = new Map(m); n.delete(id); return n; })} />
      ))}
      <Failure error={grants.error ?? listed.error} retry={() => { grants.reload(); listed.reload(); }} />

      <Section id="provider-grants-title" title="What this patient granted you">
        {grants.data ? (
          grants.data.length ? (
            <ul class="care-list" data-testid="patient-grants">
              {grants.data.map((g) => (
                <li key={g.scopeId}>
                  <code class="provider-scope" title={g.scopeId}>{scopeName(g.scopeId)}</code>
                  <span><GrantBadge grant={g} /> {grantTerm(g)}</span>
                </li>
              ))}
            </ul>
          ) : <p class="care-empty">This patient never granted you anything.</p>
        ) : <p class="care-loading" role="status">Reading the grants from the blockchain…</p>}
      </Section>

      <Section id="provider-readable-title" title={`Records you may read now (${records.length})`}>
        <form class="care-row provider-filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter the records">
          <div class="care-field">
            <label for="filter-type">Type</label>
            <select id="filter-type" class="care-input" value={type} onChange={(e) => setType(e.currentTarget.value)}>
              <option value="">Any type</option>
              {types.map((t) => <option key={t} value={t}>{typeText(t)}</option>)}
            </select>
          </div>
          <div class="care-field">
            <label for="filter-scope">Scope</label>
            <select id="filter-scope" class="care-input" value={scope} onChange={(e) => setScope(e.currentTarget.value)}>
              <option value="">Any scope</option>
              {scopes.map((s) => <option key={s} value={s}>{scopeName(s)}</option>)}
            </select>
          </div>
          <div class="care-field">
            <label for="filter-since">Added from</label>
            <input id="filter-since" type="date" class="care-input" value={since} onInput={(e) => setSince(e.currentTarget.value)} />
          </div>
          <div class="care-field">
            <label for="filter-until">Added until</label>
            <input id="filter-until" type="date" class="care-input" value={until} onInput={(e) => setUntil(e.currentTarget.value)} />
          </div>
        </form>
        <p class="care-actions">
          <button type="button" class="button button-primary" disabled={!records.length || progress !== null || busy !== null} onClick={() => void readAll()}>
            Read all {records.length} record{records.length === 1 ? "" : "s"}
          </button>
          {progress ? <button type="button" class="button" onClick={() => { stopping.current = true; }}>Stop after this read</button> : null}
        </p>
        {progress ? (
          <div class="provider-progress" role="status" data-testid="read-all-progress">
            <label for="read-all-bar">Reading {progress.done} of {progress.total} (each read asks your wallet to sign)</label>
            <progress id="read-all-bar" max={progress.total} value={progress.done}>{progress.done} of {progress.total}</progress>
          </div>
        ) : null}
        {listed.loading && !listed.data ? <p class="care-loading" role="status">Loading the records…</p> : null}
        {records.length ? (
          <table class="care-table" data-testid="readable-records">
            <thead><tr><th scope="col">Added</th><th scope="col">Scope</th><th scope="col">Type</th><th scope="col">Size</th><th scope="col">Read</th></tr></thead>
            <tbody>
              {records.map((r) => {
                const id = r.record_id.toLowerCase();
                const read = reads.has(id);
                const grant = grants.data ? grantOf(grants.data, patient, r.scope_id) : null;
                return (
                  <tr key={id} data-record={id}>
                    <td data-label="Added">{formatTime(r.created_at)}</td>
                    <td data-label="Scope"><code class="provider-scope" title={r.scope_id}>{scopeName(r.scope_id)}</code>{grant && grant.state !== "live" ? <> <GrantBadge grant={grant} /></> : null}</td>
                    <td data-label="Type">{typeText(r.content_type)}</td>
                    <td data-label="Size" class="care-num">{sizeText(r.size)}</td>
                    <td data-label="Read">
                      <button type="button" class="button" disabled={busy !== null || progress !== null} aria-busy={busy === id}
                              aria-label={`${read ? "Read again" : "Read"} record ${shortAddress(id)}`} onClick={() => void readOne(r)}>
                        {busy === id ? "Reading…" : read ? "Read again" : "Read"}
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        ) : listed.data ? <p class="care-empty">No record you may read matches.</p> : null}
      </Section>

      <Section id="provider-read-title" title={`Read in this page (${readList.length})`}
               intro="Decrypted here with your key; kept in this page's memory only, gone when you leave or reload.">
        <div class="provider-view" role="group" aria-label="Show what you read as">
          <button type="button" class="button" aria-pressed={view === "list"} onClick={() => setView("list")}>List</button>
          <button type="button" class="button" aria-pressed={view === "timeline"} onClick={() => setView("timeline")}>Timeline</button>
        </div>
        {view === "timeline" ? (
          <div data-testid="provider-timeline">
            <Timeline records={decryptedRecords} openRecord={openRecord}
                      place={{ title: "Timeline of what you read", level: 2, idPrefix: "provider-timeline",
                               empty: "Nothing read yet: read a record, or all of them, and it appears here by date." }} />
          </div>
        ) : readList.length ? (
          <div class="provider-reads" data-testid="provider-read-records">
            {readList.map((read) => (
              <div key={read.record.recordId} class="provider-read" data-record={read.record.recordId}>
                {read.record.resource
                  ? <RecordItem record={read.record} summary={read.summary!} time={itemTime(read)} openRecord={openRecord} />
                  : <article class="fhir-item" aria-label={`File ${shortAddress(read.record.recordId)}`}><h3 class="fhir-title">{contentTypeText(read.result.contentType) ?? "File"} ({read.result.content.length} bytes)</h3></article>}
                <p class="care-actions">
                  <button type="button" class="button" onClick={() => download(read)}
                          aria-label={`Download ${read.record.resource ? "FHIR JSON" : "file"} of record ${shortAddress(read.record.recordId)}`}>
                    {read.record.resource ? "Download FHIR JSON" : "Download file"}
                  </button>
                  <span class="care-muted">Receipt #{read.result.receipt.seq}{read.result.nodes?.servedBy[0] ? ` at node ${shortAddress(read.result.nodes.servedBy[0].address)}` : ""}, block {read.result.receipt.headBlock}</span>
                </p>
                {read.result.nodes ? (
                  <div class="care-muted" data-testid="read-nodes">
                    <p>{reportText({ ...read.result.nodes, skipped: [] })}: {read.result.nodes.servedBy.map((n) => shortAddress(n.address)).join(", ")}; each keeps its own receipt.</p>
                    {read.result.nodes.skipped.length ? <ul>{read.result.nodes.skipped.map((s) => <li key={s.node.address}>Skipped: {nodeName(s.node)} {s.why}.</li>)}</ul> : null}
                  </div>
                ) : null}
              </div>
            ))}
          </div>
        ) : <p class="care-empty">Nothing read yet.</p>}
      </Section>
      {decryptedRecords.some((r) => r.resource?.resourceType === "Observation") ? (
        <div class="care-section"><Charts records={decryptedRecords} title="Measurements read" /></div>
      ) : null}
    </section>
  );
}
