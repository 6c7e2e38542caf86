// Who read what (issue 13, item 7): every read of the patient's data — the provider, the record
// (its label, named in this page from the patient's own vocabulary), when, at which block, and
// whether its receipt is anchored on chain yet — with a chart of reads per provider over time,
// and, apart, the read requests the access check refused.

import { useState } from "preact/hooks";
import type { PatientClient, ReadEntry, AttemptedReads, LabelledRecord, RegistryProvider } from "../../patient/patient.ts";
import { labelForPeople } from "../../patient/scopes.ts";
import {
  Failure, formatTime, ProviderName, RefreshHead, registryMap, Section, useLoad,
} from "./care/common.tsx";
import { shortAddress } from "../../ui/format.ts";
import { ReadsChart } from "./care/ReadsChart.tsx";

const REASONS: Record<string, string> = {
  "no-grant": "not shared with this provider",
  revoked: "you had revoked the access",
  expired: "the access had ended",
  superseded: "the record had been replaced by a newer version",
  "wrong-patient": "the request named another patient",
  "not-an-active-provider": "not an active provider in the registry",
  "unknown-record": "no such record",
  "proof-fails": "the service's copy of the record did not match what you registered",
  refused: "refused",
};

type ReadsData = {
  reads: ReadEntry[];
  attempted: AttemptedReads;
  records: Map<string, LabelledRecord>;
  registry: Map<string, RegistryProvider> | null;
};

async function loadReads(client: PatientClient): Promise<ReadsData> {
  // The records name each read's record (their labels need the vocabulary blinded here); the
  // registry says who is verified, but a registry that cannot be read only loses the badges.
  const [reads, attempted, records, providers] = await Promise.all([
    client.reads(), client.attemptedReads(), client.records(),
    client.providers().catch(() => null),
  ]);
  return {
    reads: [...reads].sort((a, b) => b.served_at - a.served_at),
    attempted,
    records: new Map(records.map((r) => [r.id.toLowerCase(), r])),
    registry: providers ? registryMap(providers) : null,
  };
}

function recordText(read: { record_id: string; scope_id?: string }, data: ReadsData, client: PatientClient): string {
  const record = data.records.get(read.record_id.toLowerCase());
  const label = record?.label ?? (read.scope_id ? client.labelOf(read.scope_id) : null);
  return label ? labelForPeople(label) : `record ${shortAddress(read.record_id)}`;
}

/** Reads listed at first (and added by "Show more"): a long history stays quick to render. */
const PAGE = 100;

export function Reads(props: { client: PatientClient }) {
  const { client } = props;
  const loaded = useLoad(() => loadReads(client), client);
  const data = loaded.data;
  const [shown, setShown] = useState(PAGE);
  return (
    <section aria-labelledby="reads-title" data-testid="reads-page">
      <RefreshHead id="reads-title" title="Who read what" loaded={loaded} />
      <p class="care-intro">
        {client.context.ward ? <>You are acting for <code>{client.context.ward}</code>. </> : null}
        Every time a provider reads {client.context.ward ? "their" : "your"} data, the service signs a receipt, and
        the receipts are anchored on the blockchain so that no read can be hidden afterwards.
      </p>
      <Failure error={loaded.error} retry={loaded.reload} />
      {!data ? (loaded.loading ? <p class="care-loading" role="status">Loading the reads of your data…</p> : null) : (
        <>
          <Section id="reads-chart-title" title="Reads per provider">
            {data.reads.length ? (
              <ReadsChart reads={data.reads.map((r) => ({ provider: r.provider, at: r.served_at }))} />
            ) : <p class="care-empty">No provider has read your data yet.</p>}
          </Section>
          <Section id="reads-list-title" title={`Reads (${data.reads.length})`}>
            {data.reads.length ? (
              <table class="care-table" data-testid="reads-table">
                <thead>
                  <tr><th scope="col">When</th><th scope="col">Provider</th><th scope="col">Record</th><th scope="col">Block</th><th scope="col">Receipt</th></tr>
                </thead>
                <tbody>
                  {data.reads.slice(0, shown).map((r) => (
                    <tr key={r.request_id}>
                      <td data-label="When">{formatTime(r.served_at)}</td>
                      <td data-label="Provider"><ProviderName address={r.provider} registry={data.registry} /></td>
                      <td data-label="Record">{recordText(r, data, client)}</td>
                      <td data-label="Block" class="care-num">{r.head_block}</td>
                      <td data-label="Receipt">
                        {r.anchored
                          ? <span class="care-badge care-badge-ok">Anchored on chain</span>
                          : <span class="care-badge care-badge-wait">Not anchored yet</span>}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : <p class="care-empty">No reads yet.</p>}
            {data.reads.length > shown ? (
              <p class="care-actions">
                <button type="button" class="button" onClick={() => setShown(shown + PAGE)}>
                  Show {Math.min(PAGE, data.reads.length - shown)} more of {data.reads.length - shown} older reads
                </button>
              </p>
            ) : null}
          </Section>
          <Refused data={data} client={client} />
        </>
      )}
    </section>
  );
}

function Refused(props: { data: ReadsData; client: PatientClient }) {
  const { data, client } = props;
  const { attempts, suppressed } = data.attempted;
  return (
    <Section id="refused-title" title={`Refused attempts (${attempts.length + suppressed.reduce((n, s) => n + s.count, 0)})`}
             intro="Read requests the access check turned down: nothing was served. Each was signed by the provider named.">
      {attempts.length ? (
        <table class="care-table" data-testid="refused-table">
          <thead>
            <tr><th scope="col">When</th><th scope="col">Provider</th><th scope="col">Record</th><th scope="col">Why refused</th><th scope="col">Block</th></tr>
          </thead>
          <tbody>
            {[...attempts].sort((a, b) => b.refused_at - a.refused_at).map((a) => (
              <tr key={a.seq}>
                <td data-label="When">{formatTime(a.refused_at)}</td>
                <td data-label="Provider"><ProviderName address={a.provider} registry={data.registry} /></td>
                <td data-label="Record">{recordText(a, data, client)}</td>
                <td data-label="Why refused"><span class="care-badge care-badge-bad">{REASONS[a.reason] ?? a.reason}</span></td>
                <td data-label="Block" class="care-num">{a.head_block}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : <p class="care-empty">No refused attempts.</p>}
      {suppressed.length ? (
        <ul class="plain-list">
          {suppressed.map((s) => (
            <li key={`${s.provider}-${s.hour_start}`}>
              {s.count} more refused attempt{s.count === 1 ? "" : "s"} by <ProviderName address={s.provider} registry={data.registry} /> in
              the hour from {formatTime(s.hour_start)} (counted, not listed one by one).
            </li>
          ))}
        </ul>
      ) : null}
    </Section>
  );
}
