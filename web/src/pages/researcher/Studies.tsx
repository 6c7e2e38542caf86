// Research studies, for a researcher (a provider a registrar verified): the studies this wallet
// registered, each with its purpose, the parts of a record it asks for, its end and its cohort
// (patients taking part and who withdrew, from the chain); registering a new study (the wallet's
// own transaction, its purpose shown); reading the cohort's shared data through the provider
// read path (one signed request and receipt per record, decrypted here) and saving it as FHIR
// Bulk Data NDJSON, the files `kizuna researcher export` writes (web/src/researcher/).

import { useMemo, useRef, useState } from "preact/hooks";
import { InputError, type KizunaError } from "../../core/errors.ts";
import type { ProviderClient } from "../../provider/provider.ts";
import { bulkFiles, type BulkFile } from "../../researcher/ndjson.ts";
import { Research, type CohortMember, type PatientRead, type ResearcherStudy } from "../../researcher/studies.ts";
import { countOf, formatTime, shortAddress } from "../../ui/format.ts";
import { asKizunaError, Failure, fieldMessage, RefreshHead, Section, useLoad } from "../patient/care/common.tsx";
import { LabelCode, Outcome, ScopePicker, useAction } from "../patient/sharing/parts.tsx";
import { dateInputValue, expiryOf, labelName, scopeGroups } from "../patient/sharing/scopes.ts";
import "../patient/care/care.css";
import "../patient/sharing/sharing.css";
import "../provider/reading.css";
import "./studies.css";

type Loaded = { verified: boolean; studies: ResearcherStudy[] };

export function ResearcherStudies(props: { client: ProviderClient }) {
  const research = useMemo(() => new Research(props.client), [props.client]);
  const loaded = useLoad<Loaded>(async () => {
    const [verified, studies] = await Promise.all([research.verified(), research.studies()]);
    return { verified, studies };
  }, research);
  const data = loaded.data;
  return (
    <section aria-labelledby="studies-title" data-testid="researcher-page">
      <RefreshHead id="studies-title" title="Research studies" loaded={loaded} />
      <p class="care-intro">
        Your studies in the study registry, read from the blockchain. Patients who take part share a de-identified copy
        of the records a study asks for; you read it record by record, each read signed by your wallet and kept as a
        receipt the patient and auditors can see. A patient who withdraws is not read again.
      </p>
      <Failure error={loaded.error} retry={loaded.reload} />
      {data && !data.verified ? (
        <p class="care-intro" data-testid="researcher-unverified">
          <span class="care-badge care-badge-bad">Not verified</span> This wallet is not a verified, active provider in the registry,
          so it cannot register studies. A registrar must verify it first.
        </p>
      ) : null}
      <h2 id="studies-list-title">Your studies</h2>
      {!data ? (loaded.loading ? <p class="care-loading" role="status">Reading your studies from the blockchain…</p> : null) : (
        data.studies.length === 0
          ? <p class="care-empty">You have registered no study yet.</p>
          : data.studies.map((s) => <StudyCard key={s.studyId} study={s} research={research} />)
      )}
      {data?.verified ? <NewStudyForm research={research} onRegistered={loaded.reload} /> : null}
    </section>
  );
}

function NewStudyForm(props: { research: Research; onRegistered: () => void }) {
  const groups = useMemo(() => scopeGroups(), []);
  const [purpose, setPurpose] = useState("");
  const [scopes, setScopes] = useState<Set<string>>(new Set());
  const [ends, setEnds] = useState(() => dateInputValue(Date.now() / 1000, 90));
  const action = useAction();
  const busy = action.busy !== null;
  const error = action.error;
  const submit = (event: Event) => {
    event.preventDefault();
    void action.run("register", async () => {
      const endsAt = expiryOf(ends);
      if (endsAt === null) throw new InputError("endsAt", "choose the study's last day");
      const studyId = await props.research.register({ purpose, scopes: [...scopes], endsAt });
      // Registered: the form is cleared for the next one (nothing typed is lost on a failure).
      setPurpose("");
      setScopes(new Set());
      props.onRegistered();
      return `Registered the study “${purpose.trim()}” (${studyId.slice(0, 10)}…). Patients see it on their Research page.`;
    });
  };
  const purposeError = fieldMessage(error, "purpose");
  const scopesError = fieldMessage(error, "scopes");
  const endsError = fieldMessage(error, "endsAt");
  return (
    <Section id="study-new" title="Register a study">
      <form class="care-form study-form" onSubmit={submit} noValidate data-testid="study-form">
        <div class="care-field">
          <label for="study-purpose">Purpose (patients read this before they choose to take part)</label>
          <textarea id="study-purpose" class="care-input" rows={3} maxLength={1024} value={purpose} disabled={busy}
                    aria-invalid={purposeError !== null} aria-describedby={purposeError ? "study-purpose-error" : undefined}
                    onInput={(e) => setPurpose((e.currentTarget as HTMLTextAreaElement).value)} />
          {purposeError ? <p class="care-field-error" id="study-purpose-error">{purposeError}</p> : null}
        </div>
        <fieldset class="care-field study-scopes" aria-describedby={scopesError ? "study-scopes-error" : undefined}>
          <legend class="care-legend">The records the study asks for</legend>
          <ScopePicker idPrefix="study-scope" groups={groups} selected={scopes} onChange={setScopes} disabled={busy} />
          {scopesError ? <p class="care-field-error" id="study-scopes-error">{scopesError}</p> : null}
        </fieldset>
        <div class="care-field">
          <label for="study-ends">Last day of the study (patients' sharing ends then)</label>
          <input id="study-ends" type="date" class="care-input" value={ends} disabled={busy} aria-invalid={endsError !== null}
                 aria-describedby={endsError ? "study-ends-error" : undefined}
                 onInput={(e) => setEnds((e.currentTarget as HTMLInputElement).value)} />
          {endsError ? <p class="care-field-error" id="study-ends-error">{endsError}</p> : null}
        </div>
        <div class="page-messages" aria-live="polite"><Outcome action={action} /></div>
        <div class="care-actions">
          <button type="submit" class="button button-primary" disabled={busy} aria-busy={busy}>
            {busy ? "Registering…" : "Register the study"}
          </button>
        </div>
      </form>
    </Section>
  );
}


function StudyCard(props: { study: ResearcherStudy; research: Research }) {
  const { study } = props;
  const live = study.cohort.filter((m) => m.consented).length;
  const withdrawn = study.cohort.length - live;
  const id = `study-${study.studyId}`;
  return (
    <Section id={id} title={study.purpose}>
      <article class="care-card" aria-labelledby={id} data-testid="researcher-study" data-study={study.studyId}>
        <dl class="researcher-facts">
          <dt>Study</dt><dd><code>{study.studyId}</code></dd>
          <dt>Asks for</dt>
          <dd>{study.scopes.map((s, i) => <span key={s}>{i ? ", " : ""}{labelName(s)} (<LabelCode label={s} />)</span>)}</dd>
          <dt>Ends</dt><dd>{formatTime(study.endsAt)}{study.ended ? <> <span class="care-badge care-badge-wait">ended</span></> : null}</dd>
          <dt>Cohort</dt>
          <dd data-testid="study-cohort">{countOf(live, "patient")} taking part · {withdrawn} withdrew</dd>
        </dl>
        <CohortReader study={study} research={props.research} />
      </article>
    </Section>
  );
}

function readState(read: PatientRead | undefined, member: CohortMember): string {
  if (!member.consented) return "not read: the consent was withdrawn, and the service refuses reads of this copy";
  if (!read || !read.listed) return "—";
  if (!read.records.length) return "nothing shared to read";
  const done = read.outcomes.filter((o) => o !== null && !(o instanceof Error)).length;
  const failed = read.outcomes.filter((o) => o instanceof Error).length;
  return `${done} of ${countOf(read.records.length, "record")} read${failed ? `, ${failed} refused or failed` : ""}`;
}

function CohortReader(props: { study: ResearcherStudy; research: Research }) {
  const { study, research } = props;
  const [reads, setReads] = useState<PatientRead[] | null>(null);
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<KizunaError | null>(null);
  const [files, setFiles] = useState<BulkFile[] | null>(null);
  const stopped = useRef(false);
  const live = study.cohort.some((m) => m.consented);

  const read = async () => {
    stopped.current = false;
    setRunning(true);
    setError(null);
    setFiles(null);
    try {
      const done = await research.readCohort(study, setReads, () => stopped.current);
      const contents = done.flatMap((r) => r.outcomes.flatMap((o) => (o && !(o instanceof Error) ? [o.content] : [])));
      setFiles(await bulkFiles(contents));
    } catch (caught) {
      setError(asKizunaError(caught));
    } finally {
      setRunning(false);
    }
  };
  const byPatient = new Map((reads ?? []).map((r) => [r.member.patient, r]));
  const failures = (reads ?? []).flatMap((r) => r.outcomes.flatMap((o) => (o instanceof Error ? [{ patient: r.member.patient, error: o }] : [])));
  const total = (reads ?? []).reduce((n, r) => n + r.records.length, 0);
  const readCount = (reads ?? []).reduce((n, r) => n + r.outcomes.filter((o) => o !== null && !(o instanceof Error)).length, 0);

  return (
    <>
      {study.cohort.length ? (
        <table class="care-table" data-testid="study-members">
          <caption class="sr-only">Patients of the study {study.purpose}</caption>
          <thead><tr><th scope="col">Patient</th><th scope="col">Consent</th><th scope="col">This read</th></tr></thead>
          <tbody>
            {(reads ? reads.map((r) => r.member) : study.cohort).map((m) => (
              <tr key={m.patient} data-testid="study-member" data-patient={m.patient} data-consented={String(m.consented)}>
                <td data-label="Patient"><code title={m.patient}>{shortAddress(m.patient)}</code></td>
                <td data-label="Consent">
                  <span>
                    <span class={`care-badge ${m.consented ? "care-badge-ok" : "care-badge-bad"}`}>{m.consented ? "takes part" : "withdrew"}</span>
                    {!m.consented && m.withdrewAt !== null ? <> on {formatTime(m.withdrewAt)}</> : null}
                  </span>
                </td>
                <td data-label="This read" data-testid="member-read">{reads || !m.consented ? readState(byPatient.get(m.patient), m) : "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : <p class="care-empty">No patient has taken part yet.</p>}
      {running && total ? (
        <div class="provider-progress" role="status">
          <progress max={total} value={readCount} aria-label="Records read" />
          <span>{readCount} of {countOf(total, "record")} read</span>
        </div>
      ) : null}
      <Failure error={error} retry={() => void read()} />
      {failures.length ? (
        <ul class="study-failures" data-testid="study-read-failures">
          {failures.map((f, i) => <li key={i}>Patient {shortAddress(f.patient)}: {f.error.message}</li>)}
        </ul>
      ) : null}
      <p class="care-actions">
        {live ? (
          <button type="button" class="button button-primary" onClick={() => void read()} disabled={running} aria-busy={running}>
            {running ? "Reading…" : reads ? "Read the cohort's data again" : "Read the cohort's data"}
          </button>
        ) : null}
        {running ? <button type="button" class="button" onClick={() => { stopped.current = true; }}>Stop after this record</button> : null}
      </p>
      {live && !reads ? <p class="care-muted">Your wallet signs one request per record: each is a receipt on the patient's record of reads.</p> : null}
      {files && failures.length ? (
        <p class="care-muted" data-testid="study-export-partial">
          {countOf(failures.length, "record")} could not be read (listed above): the files below hold only what was read.
        </p>
      ) : null}
      {files ? <Export files={files} study={study} /> : null}
    </>
  );
}

function save(file: BulkFile): void {
  const blob = new Blob([file.content], { type: file.type === "dicom" ? "application/dicom" : "application/fhir+ndjson" });
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = file.name.replace("/", "-");
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function Export(props: { files: BulkFile[]; study: ResearcherStudy }) {
  const { files } = props;
  if (!files.length) return <p class="care-empty" data-testid="study-export">Nothing to export: no record was read.</p>;
  return (
    <div class="study-export" data-testid="study-export">
      <h3>Export (FHIR Bulk Data NDJSON)</h3>
      <p class="care-muted">One file per resource type, one resource per line — the files <code>kizuna researcher export</code> writes.</p>
      <ul class="care-list">
        {files.map((f) => (
          <li key={f.name} data-testid="study-file" data-name={f.name}>
            <span><code>{f.name}</code> · {f.type === "dicom" ? "DICOM image" : countOf(f.count, "resource")}</span>
            <button type="button" class="button" onClick={() => save(f)}>Save {f.name}</button>
          </li>
        ))}
      </ul>
    </div>
  );
}
