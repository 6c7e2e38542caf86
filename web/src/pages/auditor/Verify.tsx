// Verification run in the page (issue 14): every read receipt under a root anchored on-chain
// (leaves recomputed and Merkle proofs folded here), every read allowed at its head block by a
// live grant or open emergency access (replayed here from the chain's events), each failure with
// its evidence. Says what came from the service.

import { Fragment } from "preact";
import { useState } from "preact/hooks";
import type { AuditorClient, VerifyStage } from "../../auditor/client.ts";
import type { Finding, Verification } from "../../auditor/verify.ts";
import type { KizunaError } from "../../core/errors.ts";
import { asKizunaError, Failure, Section } from "../patient/care/common.tsx";
import { countOf } from "../../ui/format.ts";

const STAGES: Record<VerifyStage["stage"], string> = {
  receipts: "Fetching the read receipts and their proofs from the service…",
  events: "Reading the consent events and anchored roots from the chain…",
  blocks: "Reading the read's head blocks from the chain…",
  checking: "Checking each receipt…",
};

const CHECKS: Record<string, string> = {
  "receipt.request": "Unreadable signed request",
  "receipt.fields": "Receipt columns differ from what the provider signed",
  "receipt.leaf": "Receipt altered (its leaf is not the hash of its fields)",
  "receipt.signature": "Not signed by its provider",
  "receipt.proof": "Not under the root anchored on-chain",
  "receipt.unanchored": "Receipt slipped in among anchored ones",
  "batch.not_anchored": "Batch root never anchored",
  "batch.count": "Batch size differs from the anchored count",
  "batch.missing": "Anchored batch with no receipts",
  "access.no_grant": "Read without a live grant or emergency access",
  "access.head_block": "Impossible head block",
};

function FindingCard(props: { finding: Finding }) {
  const f = props.finding;
  return (
    <li class="audit-finding" data-testid="finding" data-check={f.check}>
      <h3>{CHECKS[f.check] ?? f.check} <code class="care-muted">{f.check}</code></h3>
      <p>{f.reason}</p>
      <dl class="audit-evidence">
        <dt>{f.check.startsWith("batch.") ? "Root" : "Request id"}</dt><dd>{f.subject}</dd>
        {Object.entries(f.evidence).map(([k, v]) => <Fragment key={k}><dt>{k}</dt><dd>{v}</dd></Fragment>)}
      </dl>
    </li>
  );
}

function Summary(props: { result: Verification }) {
  const r = props.result;
  const failed = r.checked - r.passed - r.pending;
  const items: [string, number][] = [
    ["Reads checked", r.checked], ["Passed", r.passed], ["Failed", failed], ["Pending anchoring", r.pending],
    ["Merkle proofs verified here", r.proofsChecked], ["Allowed by a grant", r.byGrant],
    ["Allowed by emergency access", r.byEmergency], ["Batches", r.batches],
  ];
  return <ul class="audit-summary">{items.map(([label, n]) => <li key={label}><strong>{n}</strong>{label}</li>)}</ul>;
}

export function AuditVerify(props: { client: AuditorClient }) {
  const [stage, setStage] = useState<VerifyStage | null>(null);
  const [result, setResult] = useState<Verification | null>(null);
  const [error, setError] = useState<KizunaError | null>(null);
  const [took, setTook] = useState<number | null>(null);
  const running = stage !== null;

  const run = () => {
    setError(null);
    setResult(null);
    setTook(null);
    const t0 = performance.now();
    props.client.verify(setStage).then(
      (found) => { setResult(found); setTook(performance.now() - t0); setStage(null); },
      (failure) => { setError(asKizunaError(failure)); setStage(null); },
    );
  };

  const ok = result && result.findings.length === 0;
  return (
    <section aria-labelledby="audit-verify-title" data-testid="audit-verify-page">
      <div class="care-head">
        <h1 id="audit-verify-title">Verify the reads</h1>
        <button type="button" class="button button-primary" onClick={run} disabled={running} aria-busy={running}>
          {running ? "Verifying…" : result ? "Run again" : "Run the verification"}
        </button>
      </div>
      <p class="care-intro">
        For every read the service recorded, this page checks the provider's signature of the request, recomputes the
        receipt's Merkle leaf from what the provider signed, folds its Merkle proof up to a root and compares it with the root <strong>anchored on the blockchain</strong>,
        and replays the consent events <strong>from the blockchain</strong> to check that a grant (or an open emergency
        access) allowed the read at the block it was decided at.
      </p>
      <p class="care-intro audit-relied" data-testid="audit-relied">
        Relied on the service for: the list of receipts and their Merkle proofs (what is being checked — a receipt
        the service withholds entirely is caught only when its batch's anchored count no longer matches). Read through
        your wallet's node: the anchored roots, the consent events and the block times. Not checked here (the service's
        <code>kizuna audit</code> does it): the stored ciphertexts against their commitments, and each record's registration.
      </p>
      {stage ? (
        <div role="status" aria-live="polite" data-testid="verify-progress">
          <p>{STAGES[stage.stage]}{stage.progress ? ` ${stage.progress.done} of ${stage.progress.total}` : stage.fetched !== undefined ? ` ${stage.fetched} so far` : ""}</p>
          <progress class="audit-progress" aria-label="Verification progress"
                    {...(stage.progress ? { value: stage.progress.done, max: Math.max(1, stage.progress.total) } : {})} />
        </div>
      ) : null}
      <Failure error={error} retry={run} />
      {result ? (
        <Section id="audit-result-title" title={ok ? "All reads verified" : `${countOf(result.findings.length, "problem")} found`}>
          <div data-testid="verify-result" data-ok={ok ? "true" : "false"}>
            <p class={ok ? "care-done" : "care-field-error"} role="status">
              {ok
                ? `Every read receipt is under a root anchored on-chain and was allowed by the ledger at its block.`
                : `Some reads failed the checks: each is listed below with its evidence.`}
              {took !== null ? ` (${(took / 1000).toFixed(1)} s)` : ""}
            </p>
            <Summary result={result} />
            {result.findings.length ? (
              <ul class="audit-findings" aria-label="Problems found">
                {result.findings.map((f, i) => <FindingCard key={`${f.check}-${f.subject}-${i}`} finding={f} />)}
              </ul>
            ) : null}
          </div>
        </Section>
      ) : !running && !error ? <p class="care-empty">Not run yet.</p> : null}
    </section>
  );
}
