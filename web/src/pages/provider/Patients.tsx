// The provider's patients (issue 14): every patient who granted this provider something, each
// grant's scope, state and expiry — read from the chain through the wallet, not the service's
// word — with how many records each live scope holds now, and a link to the patient's records.

import type { Hex } from "viem";
import { Failure, formatTime, RefreshHead, Section, useLoad } from "../patient/care/common.tsx";
import { scopeName } from "../../provider/grants.ts";
import type { GrantingPatient, ProviderClient } from "../../provider/provider.ts";
import type { ScopeGrant } from "../../provider/grants.ts";
import type { RegistryProvider } from "../../patient/chain.ts";
import { shortAddress, countOf } from "../../ui/format.ts";
import "./reading.css";

export const PATIENT_ROUTE = "provider-patient";

/** The link to one patient's records page. */
export function patientHref(patient: string): string {
  return `#/${PATIENT_ROUTE}?patient=${patient}`;
}

const STATE_TEXT: Record<ScopeGrant["state"], [string, string]> = {
  live: ["Granted", "care-badge-ok"],
  expired: ["Expired", "care-badge-wait"],
  revoked: ["Revoked", "care-badge-bad"],
  "revoked-all": ["Revoked (all)", "care-badge-bad"],
};

export function GrantBadge(props: { grant: ScopeGrant }) {
  const [text, cls] = STATE_TEXT[props.grant.state];
  return <span class={`care-badge ${cls}`}>{text}</span>;
}

/** Until when a grant runs, or since when it ended. */
export function grantTerm(grant: ScopeGrant): string {
  if (grant.state === "live") return `until ${formatTime(grant.expiresAt)}`;
  return `since ${formatTime(grant.endedAt ?? grant.expiresAt)}`;
}

type PatientsData = { patients: GrantingPatient[]; counts: Map<string, number>; registry: RegistryProvider | null };

async function loadPatients(client: ProviderClient): Promise<PatientsData> {
  const [patients, records, registry] = await Promise.all([
    client.patients(), client.records(), client.context.chain.provider(client.address).catch(() => null),
  ]);
  const counts = new Map<string, number>();
  for (const r of records) {
    const key = `${r.patient.toLowerCase()}/${r.scope_id.toLowerCase()}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return { patients, counts, registry };
}

function RegistryStatus(props: { registry: RegistryProvider | null; address: Hex }) {
  const r = props.registry;
  if (!r) return <p class="care-intro" data-testid="registry-status">Your address is not in the provider registry: patients cannot grant you access until a registrar adds you.</p>;
  return (
    <p class="care-intro" data-testid="registry-status">
      Provider registry:{" "}
      {r.active
        ? (r.verified ? <span class="care-badge care-badge-ok">Verified</span> : <span class="care-badge care-badge-wait">Registered, not verified</span>)
        : <span class="care-badge care-badge-bad">Suspended</span>}
      {" "}— your records key there is the one derived from this wallet.
    </p>
  );
}

export function Patients(props: { client: ProviderClient }) {
  const { client } = props;
  const loaded = useLoad(() => loadPatients(client), client);
  const data = loaded.data;
  return (
    <section aria-labelledby="provider-patients-title" data-testid="provider-patients-page">
      <RefreshHead id="provider-patients-title" title="Patients" loaded={loaded} />
      <p class="care-intro">
        The patients who granted you access, read from the blockchain: each scope they shared, until when, and
        what ended. A scope's name is known only to its patient; you see its id and how many records it holds.
      </p>
      {data ? <RegistryStatus registry={data.registry} address={client.address} /> : null}
      <Failure error={loaded.error} retry={loaded.reload} />
      {!data ? (loaded.loading ? <p class="care-loading" role="status">Reading your grants from the blockchain…</p> : null) : (
        data.patients.length === 0
          ? <p class="care-empty">No patient has granted you access yet.</p>
          : data.patients.map((p) => <PatientCard key={p.patient} patient={p} counts={data.counts} />)
      )}
    </section>
  );
}

function PatientCard(props: { patient: GrantingPatient; counts: Map<string, number> }) {
  const { patient, grants, live } = props.patient;
  const id = `patient-${patient}`;
  return (
    <Section id={id} title={`Patient ${shortAddress(patient)}`}>
      <article class="care-card" aria-labelledby={id} data-testid="provider-patient" data-patient={patient}>
        <p class="care-muted provider-card-id"><code title={patient}>{patient}</code></p>
        <p>{live ? `${countOf(live, "scope")} you may read now.` : "Nothing you may read now."}</p>
        <table class="care-table">
          <caption class="sr-only">Grants of patient {patient}</caption>
          <thead><tr><th scope="col">Scope</th><th scope="col">State</th><th scope="col">Term</th><th scope="col">Granted</th><th scope="col">Records</th></tr></thead>
          <tbody>
            {grants.map((g) => (
              <tr key={g.scopeId} data-testid="provider-grant" data-state={g.state}>
                <td data-label="Scope"><code class="provider-scope" title={g.scopeId}>{scopeName(g.scopeId)}</code></td>
                <td data-label="State"><GrantBadge grant={g} /></td>
                <td data-label="Term">{grantTerm(g)}</td>
                <td data-label="Granted">{formatTime(g.grantedAt)} (block {g.grantedBlock})</td>
                <td data-label="Records" class="care-num">{g.state === "live" ? props.counts.get(`${patient.toLowerCase()}/${g.scopeId.toLowerCase()}`) ?? 0 : "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {live ? <p class="care-actions"><a class="button button-primary" href={patientHref(patient)}>Open records of {shortAddress(patient)}</a></p> : null}
      </article>
    </Section>
  );
}
