// Reviews (issue 14, "the review that follows" a break-glass): the emergency accesses no auditor
// has reviewed yet (GET /auditor/inbox), each marked reviewed here (POST /auditor/reviews). The
// chain flags every emergency access for review; the review itself is the service's record (who,
// when), which the provider sees on their Care page. No wallet request: the auditor's session.

import { useState } from "preact/hooks";
import type { AuditorClient, EmergencyAccessOut } from "../../auditor/client.ts";
import { EMPTY_FILTER, hashFor } from "../../auditor/log.ts";
import type { KizunaError } from "../../core/errors.ts";
import { REASONS } from "../../provider/care.ts";
import { shortAddress } from "../../ui/format.ts";
import { asKizunaError, Failure, formatTime, Section, useLoad } from "../patient/care/common.tsx";
import { LOG_ROUTE } from "./Log.tsx";

export const REVIEWS_ROUTE = "audit-reviews";

function reasonText(code: number): string {
  return REASONS.find((r) => r.code === code)?.text ?? `reason code ${code}`;
}

function Access(props: { access: EmergencyAccessOut; busy: boolean; onReview: () => void }) {
  const { access } = props;
  const link = hashFor(LOG_ROUTE, { ...EMPTY_FILTER, tx: access.tx_hash, log: String(access.log_index) });
  return (
    <li data-testid="review-item" data-patient={access.patient} data-provider={access.provider}>
      <dl class="audit-evidence audit-review">
        <dt>Provider</dt><dd>{access.provider}</dd>
        <dt>Patient</dt><dd>{access.patient}</dd>
        <dt>Reason</dt><dd>{reasonText(access.reason_code)} (code {access.reason_code})</dd>
        <dt>Opened</dt>
        <dd>
          block {access.block_number}, {access.closed_by
            ? <>closed by {shortAddress(access.closed_by)} (block {access.closed_block})</>
            : <>open until {formatTime(access.until)}</>}.{" "}
          <a class="audit-link" href={link}>The event in the log</a>
        </dd>
      </dl>
      <div class="care-actions">
        <button type="button" class="button button-primary" onClick={props.onReview} disabled={props.busy} aria-busy={props.busy}
                aria-label={`Mark reviewed: ${access.provider}'s access to ${access.patient}`}>
          {props.busy ? "Recording…" : "Mark reviewed"}
        </button>
      </div>
    </li>
  );
}

export function AuditReviews(props: { client: AuditorClient }) {
  const { client } = props;
  const loaded = useLoad(() => client.awaitingReview(), client);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<KizunaError | null>(null);
  const [done, setDone] = useState<string | null>(null);

  const review = async (access: EmergencyAccessOut) => {
    const key = `${access.tx_hash}#${access.log_index}`;
    setBusy(key);
    setError(null);
    setDone(null);
    try {
      const marked = await client.markReviewed(access.tx_hash, access.log_index);
      setDone(`Marked reviewed${marked.reviewed_at != null ? ` on ${formatTime(marked.reviewed_at)}` : ""}: ${access.provider}'s emergency access to ${access.patient}. The provider sees your review.`);
      loaded.reload();
    } catch (failure) {
      setError(asKizunaError(failure));
    } finally {
      setBusy(null);
    }
  };

  const awaiting = loaded.data ?? [];
  return (
    <section aria-labelledby="audit-reviews-title" data-testid="audit-reviews-page">
      <h1 id="audit-reviews-title">Emergency access reviews</h1>
      <p class="care-intro">
        Every break-glass access a provider opens is flagged for review on the blockchain. Look at who opened it, for whom
        and why (the log has the transaction), then mark it reviewed: the service records your address and the time, and
        the provider sees the review.
      </p>
      <Failure error={error} onDismiss={() => setError(null)} />
      {done ? <p class="care-done" role="status" data-testid="review-done">{done}</p> : null}
      <Failure error={loaded.error} retry={loaded.reload} />
      {!loaded.data ? (loaded.loading ? <p class="care-loading" role="status">Loading the accesses awaiting review…</p> : null) : (
        <Section id="audit-awaiting-title" title={`Awaiting review (${awaiting.length})`}>
          {awaiting.length ? (
            <ul class="care-list">
              {awaiting.map((a) => (
                <Access key={`${a.tx_hash}#${a.log_index}`} access={a} busy={busy === `${a.tx_hash}#${a.log_index}`} onReview={() => review(a)} />
              ))}
            </ul>
          ) : <p class="care-empty">No emergency access awaits review.</p>}
        </Section>
      )}
    </section>
  );
}
