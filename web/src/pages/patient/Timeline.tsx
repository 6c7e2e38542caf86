// The patient's record as a timeline: newest first, grouped by day, filtered by type, scope,
// out-of-range values and a search box. Summaries are computed once per record list; only the
// first day groups are rendered, more as the reader scrolls (or asks), so thousands of records
// stay fast.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { DecryptedRecord, OpenRecord } from "../../fhir/records.ts";
import { linkSummaries } from "../../fhir/links.ts";
import { contentTypeText, summarize, type Summary } from "../../fhir/summarize.ts";
import { RecordItem } from "../../ui/fhir/RecordItem.tsx";
import "../../ui/fhir/fhir.css";
import { countOf } from "../../ui/format.ts";

/** Items rendered at first: a few screens (a phone shows about six, a desktop ten), so the
 *  timeline appears as soon as its records are read; more are added, `PAGE` at a time, before
 *  the reader reaches the end (or when they ask). */
const FIRST = 40;
const PAGE = 150;

interface Entry {
  readonly record: DecryptedRecord;
  readonly summary: Summary;
  /** Milliseconds: the FHIR date, or when the record was added. */
  readonly time: number;
  /** The calendar day (YYYY-MM-DD) the item is grouped under. */
  readonly day: string;
  /** The time of day shown, or null for a date without a time. */
  readonly clock: string | null;
  /** True when the record has no date of its own (placed by when it was added). */
  readonly added: boolean;
  readonly haystack: string;
}

const CLOCK = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const DAY = new Intl.DateTimeFormat(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric", timeZone: "UTC" });

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

function localDay(time: number): string {
  const d = new Date(time);
  return `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function dayLabel(day: string): string {
  const [y, m, d] = day.split("-").map(Number);
  const when = new Date(Date.UTC(y!, m! - 1, d!));
  when.setUTCFullYear(y!);
  return DAY.format(when);
}

function fileSummary(record: DecryptedRecord): Summary {
  const json = /json/i.test(record.contentType);
  const readable = json ? "A record that is not readable FHIR JSON" : contentTypeText(record.contentType) ?? "File";
  return {
    resourceType: "File", kind: "File", title: readable, value: null, flag: null, status: null,
    facts: [], date: null, series: [],
    attachments: [{ recordId: record.recordId, url: null, data: null, contentType: record.contentType, title: null, size: null }],
  };
}

/** DICOM files belong to an ImagingStudy (stored beside it, not linked by record id): they are
 *  counted, not listed one by one. */
function isDicom(record: DecryptedRecord): boolean {
  return !record.resource && record.contentType.split(";")[0]!.trim().toLowerCase() === "application/dicom";
}

function entries(records: readonly DecryptedRecord[]): Entry[] {
  // A document's file is shown inside its DocumentReference, not again on its own.
  const described = new Set<string>();
  const own = records.map((record) => {
    const summary = record.resource ? summarize(record.resource) : null;
    for (const a of summary?.attachments ?? []) if (a.recordId) described.add(a.recordId);
    return summary;
  });
  // Reports list their results' values (found among the other records).
  const linked = linkSummaries(records.flatMap((record, i) => own[i] ? [{ resource: record.resource, summary: own[i]! }] : []));
  const summaries: (Summary | null)[] = [];
  let next = 0;
  for (const summary of own) summaries.push(summary ? linked[next++]! : null);
  const out: Entry[] = [];
  records.forEach((record, i) => {
    if (!record.resource && (described.has(record.recordId.toLowerCase()) || isDicom(record))) return;
    const summary = summaries[i] ?? fileSummary(record);
    const date = summary.date;
    const time = date ? date.time : record.createdAt * 1000;
    const day = date && date.precision !== "time" ? date.text.slice(0, 10).padEnd(10, "-01").slice(0, 10) : localDay(time);
    const haystack = [day, summary.kind, summary.title, summary.value ?? "", summary.status ?? "", record.label ?? "",
      summary.resourceType, ...summary.facts.map((f) => f.value), ...summary.series.map((s) => s.modality)]
      .join("\n").toLowerCase();
    out.push({
      record, summary, time, day, added: !date, haystack,
      clock: date?.precision === "time" || !date ? CLOCK.format(time) : null,
    });
  });
  return out.sort((a, b) => b.time - a.time);
}

function counts(values: readonly string[]): [string, number][] {
  const map = new Map<string, number>();
  for (const v of values) map.set(v, (map.get(v) ?? 0) + 1);
  return [...map].sort((a, b) => a[0].localeCompare(b[0]));
}

const NO_SCOPE = "\u0000none";

/** Where the timeline is shown: the patient's own page (the defaults), or inside another page
 * (a provider's view of what they read: a second-level title, its own words when empty). */
export interface TimelinePlace {
  readonly title?: string;
  readonly level?: 1 | 2;
  readonly empty?: string;
  /** Prefix of the filter inputs' ids (unique in the page). */
  readonly idPrefix?: string;
}

export function Timeline(props: { records: readonly DecryptedRecord[]; openRecord: OpenRecord; place?: TimelinePlace }) {
  const place = props.place ?? {};
  const Title = place.level === 2 ? "h2" : "h1";
  const DayTitle = place.level === 2 ? "h3" : "h2";
  const id = (name: string) => `${place.idPrefix ?? "timeline"}-${name}`;
  const all = useMemo(() => entries(props.records), [props.records]);
  const dicomFiles = useMemo(() => props.records.filter(isDicom).length, [props.records]);
  const types = useMemo(() => counts(all.map((e) => e.summary.resourceType)), [all]);
  const scopes = useMemo(() => counts(all.map((e) => e.record.label ?? NO_SCOPE)), [all]);
  const [type, setType] = useState("");
  const [scope, setScope] = useState("");
  const [query, setQuery] = useState("");
  const [flaggedOnly, setFlaggedOnly] = useState(false);
  const [shown, setShown] = useState(FIRST);

  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const filtered = useMemo(() => all.filter((e) =>
    (!type || e.summary.resourceType === type)
    && (!scope || (e.record.label ?? NO_SCOPE) === scope)
    && (!flaggedOnly || e.summary.flag !== null)
    && words.every((w) => e.haystack.includes(w))), [all, type, scope, flaggedOnly, words.join(" ")]);

  // A new filter starts again from the top.
  useEffect(() => setShown(FIRST), [type, scope, flaggedOnly, query]);

  const visible = filtered.slice(0, shown);
  const groups: { day: string; items: Entry[] }[] = [];
  for (const entry of visible) {
    const last = groups[groups.length - 1];
    if (last && last.day === entry.day) last.items.push(entry);
    else groups.push({ day: entry.day, items: [entry] });
  }

  // Load more when the end of the list scrolls into view.
  const sentinel = useRef<HTMLDivElement>(null);
  const more = filtered.length - visible.length;
  useEffect(() => {
    const target = sentinel.current;
    if (!target || more <= 0 || typeof IntersectionObserver === "undefined") return;
    const observer = new IntersectionObserver((seen) => {
      if (seen.some((s) => s.isIntersecting)) setShown((n) => n + PAGE);
    }, { rootMargin: "600px" });
    observer.observe(target);
    return () => observer.disconnect();
  }, [more, shown]);

  const clear = () => { setType(""); setScope(""); setQuery(""); setFlaggedOnly(false); };
  const filtering = type || scope || query || flaggedOnly;

  return (
    <section aria-labelledby={id("title")} class="fhir-timeline">
      <Title id={id("title")}>{place.title ?? "Your timeline"}</Title>
      <form class="fhir-filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <div class="fhir-field fhir-field-search">
          <label for={id("search")}>Search</label>
          <input id={id("search")} type="search" value={query} placeholder="e.g. cholesterol, vaccine, 2023-05"
            onInput={(e) => setQuery((e.currentTarget as HTMLInputElement).value)} />
        </div>
        <div class="fhir-field">
          <label for={id("type")}>Type</label>
          <select id={id("type")} value={type} onChange={(e) => setType((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">All types</option>
            {types.map(([t, n]) => <option key={t} value={t}>{t.replace(/([a-z])([A-Z])/g, "$1 $2")} ({n})</option>)}
          </select>
        </div>
        <div class="fhir-field">
          <label for={id("scope")}>Sharing scope</label>
          <select id={id("scope")} value={scope} onChange={(e) => setScope((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">All scopes</option>
            {scopes.map(([s, n]) => <option key={s} value={s}>{s === NO_SCOPE ? "Unknown scope" : s} ({n})</option>)}
          </select>
        </div>
        <div class="fhir-field fhir-field-check">
          <input id={id("flagged")} type="checkbox" checked={flaggedOnly}
            onChange={(e) => setFlaggedOnly((e.currentTarget as HTMLInputElement).checked)} />
          <label for={id("flagged")}>Only values outside the normal range</label>
        </div>
      </form>
      <p class="fhir-count" role="status" aria-live="polite" data-testid="timeline-count">
        {filtering ? `${filtered.length} of ${countOf(all.length, "record")} match` : countOf(all.length, "record")}
        {filtering ? <> · <button type="button" class="fhir-link" onClick={clear}>Clear filters</button></> : null}
      </p>
      {dicomFiles ? (
        <p class="hint">{dicomFiles} DICOM image file{dicomFiles === 1 ? " is" : "s are"} kept with your imaging studies and not listed one by one.</p>
      ) : null}
      {all.length === 0 ? (
        <p class="fhir-empty">{place.empty ?? "No records yet. Add a FHIR file, a document or a measurement and it appears here."}</p>
      ) : filtered.length === 0 ? (
        <p class="fhir-empty">Nothing matches these filters.</p>
      ) : null}
      {groups.map((group) => (
        <section key={group.day} class="fhir-day" aria-label={dayLabel(group.day)}>
          <DayTitle class="fhir-day-title">{dayLabel(group.day)}</DayTitle>
          {group.items.map((entry) => (
            <RecordItem key={entry.record.recordId} record={entry.record} summary={entry.summary}
              time={entry.added ? `added ${entry.clock ?? ""}`.trim() : entry.clock} openRecord={props.openRecord} />
          ))}
        </section>
      ))}
      {more > 0 ? (
        <div ref={sentinel} class="fhir-more">
          <button type="button" class="button" onClick={() => setShown((n) => n + PAGE)}>
            Show older records ({more} more)
          </button>
        </div>
      ) : null}
    </section>
  );
}
