// One record on the timeline, written for people: what it is, its value with an out-of-range
// flag, status and facts, the document's file or the imaging study's series, and the raw FHIR
// JSON one click away.

import { useState } from "preact/hooks";
import type { DecryptedRecord, OpenRecord } from "../../fhir/records.ts";
import { FLAG_TEXT, type Summary } from "../../fhir/summarize.ts";
import { AttachmentView } from "./AttachmentView.tsx";

const FLAG_MARK = { high: "↑", low: "↓", abnormal: "!" } as const;

export function RecordItem(props: { record: DecryptedRecord; summary: Summary; time: string | null; openRecord: OpenRecord }) {
  const { record, summary } = props;
  const [raw, setRaw] = useState(false);
  const rawId = `raw-${record.recordId}`;
  const titleId = `title-${record.recordId}`;
  return (
    <article class={`fhir-item${summary.flag ? " fhir-item-flagged" : ""}`} aria-labelledby={titleId} data-testid="timeline-item">
      <div class="fhir-item-head">
        <span class="fhir-kind">{summary.kind}</span>
        {props.time ? <span class="fhir-time">{props.time}</span> : null}
        {record.label ? <span class="fhir-scope" title="Sharing scope">{record.label}</span> : null}
      </div>
      <h3 class="fhir-title" id={titleId}>{summary.title}</h3>
      {summary.value || summary.flag ? (
        <p class="fhir-value">
          {summary.value ? <span class="fhir-value-text">{summary.value}</span> : null}
          {summary.flag ? (
            <span class={`fhir-flag fhir-flag-${summary.flag}`} data-testid="out-of-range">
              <span aria-hidden="true">{FLAG_MARK[summary.flag]} </span>{FLAG_TEXT[summary.flag]}
            </span>
          ) : null}
        </p>
      ) : null}
      {summary.status ? <p class="fhir-status">{summary.status}</p> : null}
      {summary.facts.length ? (
        <dl class="fhir-facts">
          {summary.facts.map((fact, i) => <div key={i}><dt>{fact.label}</dt><dd>{fact.value}</dd></div>)}
        </dl>
      ) : null}
      {summary.series.length ? (
        <table class="fhir-series">
          <caption class="sr-only">Series of this imaging study</caption>
          <thead><tr><th scope="col">Modality</th><th scope="col">Series</th><th scope="col">Body part</th><th scope="col">Images</th></tr></thead>
          <tbody>
            {summary.series.map((s, i) => (
              <tr key={i}><td>{s.modality}</td><td>{s.description ?? "—"}</td><td>{s.bodySite ?? "—"}</td><td>{s.instances ?? "—"}</td></tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {summary.attachments.map((a, i) => <AttachmentView key={i} attachment={a} openRecord={props.openRecord} />)}
      {record.resource ? (
        <div class="fhir-raw">
          <button type="button" class="button button-quiet fhir-raw-toggle" aria-expanded={raw} aria-controls={rawId} onClick={() => setRaw(!raw)}>
            {raw ? "Hide raw FHIR" : "Raw FHIR"}
          </button>
          {raw ? <pre id={rawId} class="fhir-json" tabIndex={0}>{JSON.stringify(record.resource, null, 2)}</pre> : null}
        </div>
      ) : null}
    </article>
  );
}
