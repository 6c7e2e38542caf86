// Who is connected: the account, what the chain says it may do (roles), the session, the
// deployment. Names are the user's own, kept in this browser only.

import type { State } from "../app/store.ts";

const ROLE_TEXT: Record<string, string> = {
  patient: "Patient: you own your records and decide who reads them",
  provider: "Provider: registered in the provider registry",
  auditor: "Auditor: may inspect and verify the access log",
  registrar: "Registrar: may register providers",
  guardian: "Guardian: appointed by a patient to act for them",
};

export function Account(props: { state: State }) {
  const { state } = props;
  const session = state.session;
  return (
    <section aria-labelledby="account-title">
      <h1 id="account-title">Your account</h1>
      <dl class="facts facts-wide">
        <div><dt>Address</dt><dd><code data-testid="account-address">{state.account}</code></dd></div>
        <div><dt>Wallet</dt><dd>{state.wallet?.info.name}</dd></div>
        <div><dt>Network</dt><dd>chain {state.deployment?.chainId}</dd></div>
        {session ? <div><dt>Signed in until</dt><dd>{new Date(session.expires_at).toLocaleString()}</dd></div> : null}
      </dl>
      <h2>What this account may do</h2>
      <ul class="plain-list">
        {(session?.roles ?? []).map((role) => <li key={role}>{ROLE_TEXT[role] ?? role}</li>)}
      </ul>
      {session && session.guardian_of.length > 0 ? (
        <>
          <h2>You are a guardian of</h2>
          <ul class="plain-list">{session.guardian_of.map((p) => <li key={p}><code>{p}</code></li>)}</ul>
        </>
      ) : null}
      <p class="hint">Your encryption keys are in this page's memory only: reloading the page asks your wallet again.</p>
    </section>
  );
}
