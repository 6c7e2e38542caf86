// Research: the studies registered on the chain (purpose, the parts of a record each asks for,
// its end, whether its researcher is verified), the patient's part in each, withdrawing
// (web/src/sharing/studies.ts), and taking part: the de-identified copy is made in the page and
// shared with the study (web/src/research/ConsentPanel.tsx, consent.ts, deidentify.ts).

import { useEffect, useMemo, useState } from "preact/hooks";
import type { KizunaError } from "../../core/errors.ts";
import type { PatientClient } from "../../patient/patient.ts";
import { Studies, type StudyView } from "../../sharing/studies.ts";
import { shortAddress } from "../../ui/format.ts";
import { ErrorBanner } from "../../ui/Messages.tsx";
import { ConsentPanel } from "../../research/ConsentPanel.tsx";
import { asPageError, formatWhen, LabelCode, Outcome, useAction } from "./sharing/parts.tsx";
import { labelName } from "./sharing/scopes.ts";
import "./sharing/sharing.css";
import "./data-requests.css";
import "./summary.css";

function stateOf(study: StudyView): { text: string; tone: string } {
  if (study.consented) return { text: "you take part", tone: "fulfilled" };
  if (study.withdrew) return { text: "you withdrew", tone: "declined" };
  if (study.ended) return { text: "ended", tone: "declined" };
  return { text: "not taking part", tone: "open" };
}

export function Research(props: { client: PatientClient }) {
  const { client } = props;
  const studies = useMemo(() => new Studies(client), [client]);
  const [list, setList] = useState<StudyView[] | null>(null);
  const [loadError, setLoadError] = useState<KizunaError | null>(null);
  const [loading, setLoading] = useState(true);
  const action = useAction();
  const [joining, setJoining] = useState<string | null>(null); // the study whose consent panel is open

  const reload = async () => {
    setLoading(true);
    try {
      setList(await studies.list());
      setLoadError(null);
    } catch (caught) {
      setLoadError(asPageError(caught));
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => {
    void reload();
  }, [studies]);

  const withdraw = (study: StudyView) => action.run(`withdraw-${study.studyId}`, async () => {
    await studies.withdraw(study);
    await reload();
    return `You no longer take part in “${study.purpose}”. The researcher cannot read your study copy any more; what the study read before stays in its audit log.`;
  });
  const busy = action.busy !== null;

  return (
    <section class="data-requests" aria-labelledby="research-title">
      <h1 id="research-title">Research</h1>
      <p class="lead">
        Studies registered by researchers ask to use parts of health records. If you take part, the study gets a copy with your
        name, addresses, identifiers and free text removed and dates shifted, never your records themselves — and you can stop at any time.
      </p>
      <div class="page-messages" aria-live="polite">
        <Outcome action={action} />
        {loadError ? <ErrorBanner error={loadError} action={{ label: "Try again", run: () => void reload() }} /> : null}
      </div>
      <div class="section-head">
        <h2 id="studies-title">Studies</h2>
        <button type="button" class="button button-quiet" disabled={loading} onClick={() => void reload()}>
          {loading ? "Checking…" : "Check again"}
        </button>
      </div>
      {list && list.length === 0 ? <p class="empty">No study is registered yet.</p> : null}
      <ul class="inbox-list" aria-labelledby="studies-title">
        {(list ?? []).map((study) => {
          const state = stateOf(study);
          return (
            <li key={study.studyId} class="inbox-item" data-testid="study" aria-label={study.purpose}>
              <h3 class="inbox-title">
                <span class={`dr-status dr-status-${state.tone}`} data-testid="study-state">{state.text}</span>{" "}
                {study.purpose}
              </h3>
              <dl class="study-facts">
                <dt>Researcher</dt>
                <dd>
                  <code title={study.researcher}>{shortAddress(study.researcher)}</code>{" "}
                  {study.researcherVerified ? <strong data-testid="study-verified">verified by a registrar</strong>
                    : <strong class="field-error" data-testid="study-verified">not a verified researcher</strong>}
                </dd>
                <dt>Asks for</dt>
                <dd>
                  <ul class="scope-list">
                    {study.scopes.map((s) => <li key={s}>{labelName(s)} <LabelCode label={s} /></li>)}
                  </ul>
                </dd>
                <dt>{study.ended ? "Ended" : "Ends"}</dt><dd>{formatWhen(study.endsAt)}</dd>
              </dl>
              {study.consented ? (
                <div class="form-actions">
                  <button type="button" class="button button-danger-text" disabled={busy} aria-busy={action.busy === `withdraw-${study.studyId}`}
                          onClick={() => void withdraw(study)}>
                    {action.busy === `withdraw-${study.studyId}` ? "Withdrawing…" : "Withdraw from this study"}
                  </button>
                </div>
              ) : !study.ended && study.researcherVerified ? (
                joining === study.studyId ? (
                  <ConsentPanel client={client} study={study} onClose={() => setJoining(null)}
                                onDone={(message) => {
                                  setJoining(null);
                                  void action.run(`consented-${study.studyId}`, async () => {
                                    await reload();
                                    return message;
                                  });
                                }} />
                ) : (
                  <div class="form-actions">
                    <button type="button" class="button" disabled={busy} onClick={() => setJoining(study.studyId)} data-testid="study-join">
                      Take part…
                    </button>
                  </div>
                )
              ) : null}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
