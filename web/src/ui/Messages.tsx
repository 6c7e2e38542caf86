// The page's messages: errors (role=alert, with what to do), notices, and the wallet prompt that
// says what the wallet is asking to sign and why while it asks.

import type { KizunaError } from "../core/errors.ts";
import type { SignPurpose } from "../wallet/signer.ts";

export function ErrorBanner(props: { error: KizunaError; onDismiss?: () => void; action?: { label: string; run: () => void } }) {
  const { error } = props;
  const field = (error as { field?: string }).field;
  return (
    <div class="banner banner-error" role="alert" data-testid="error">
      <p>
        <strong>{error.shortMessage}</strong>
        {field ? <span class="banner-field"> (field: <code>{field}</code>)</span> : null}
      </p>
      <div class="banner-actions">
        {props.action ? <button type="button" class="button" onClick={props.action.run}>{props.action.label}</button> : null}
        {props.onDismiss ? <button type="button" class="button button-quiet" onClick={props.onDismiss}>Dismiss</button> : null}
      </div>
    </div>
  );
}

export function Notice(props: { text: string; onDismiss?: () => void; action?: { label: string; run: () => void } }) {
  return (
    <div class="banner banner-notice" role="status" data-testid="notice">
      <p>{props.text}</p>
      <div class="banner-actions">
        {props.action ? <button type="button" class="button" onClick={props.action.run}>{props.action.label}</button> : null}
        {props.onDismiss ? <button type="button" class="button button-quiet" onClick={props.onDismiss}>Dismiss</button> : null}
      </div>
    </div>
  );
}

export function WalletPrompt(props: { purpose: SignPurpose }) {
  const { purpose } = props;
  return (
    <div class="wallet-prompt" role="status" aria-live="polite" data-testid="wallet-prompt">
      <div class="wallet-prompt-card">
        <p class="wallet-prompt-kicker">Check your wallet</p>
        <h2>{purpose.title}</h2>
        <p>{purpose.why}</p>
        {purpose.details && purpose.details.length > 0 ? (
          <dl class="facts">
            {purpose.details.map(([k, v]) => (
              <div key={k}><dt>{k}</dt><dd>{v}</dd></div>
            ))}
          </dl>
        ) : null}
        <p class="wallet-prompt-foot">Your wallet shows the exact message. Approve it there, or decline: nothing happens without your signature.</p>
      </div>
    </div>
  );
}
