// The app shell: the landing page and wallet connection, then the signed-in layout (header,
// navigation, the current page). Pages are listed in routes.tsx; the shell knows none of them.

import { useEffect, useRef } from "preact/hooks";
import type { DiscoveredWallet } from "../wallet/discovery.ts";
import { shortAddress } from "../ui/format.ts";
import { ErrorBanner, Notice, WalletPrompt } from "../ui/Messages.tsx";
import { type PageContext, pagesFor } from "./routes.tsx";
import { go, useRoute } from "./router.ts";
import type { AppStore, State } from "./store.ts";
import { useStore } from "./useStore.ts";


export function App(props: { store: AppStore }) {
  const { store } = props;
  const state = useStore(store);
  return (
    <div class="app">
      <a class="skip-link" href="#main">Skip to content</a>
      <Header store={store} state={state} />
      {state.prompt ? <WalletPrompt purpose={state.prompt} /> : null}
      {state.picking ? <WalletPicker wallets={store.availableWallets()} onPick={(w) => void store.connectWith(w)} onCancel={() => store.cancelPicking()} /> : null}
      <div class="messages">
        {state.error ? <ErrorBanner error={state.error} onDismiss={() => store.dismiss()} /> : null}
        {state.notice ? <Notice text={state.notice} onDismiss={() => store.dismiss()} /> : null}
        {state.wrongChain ? (
          <ErrorBanner error={state.wrongChain} action={{ label: "Switch network", run: () => void store.switchChain() }} />
        ) : null}
        {state.sessionLost ? (
          <Notice text="Your session with the Kizuna service ended. Sign in again to continue; what you typed is kept."
                  action={{ label: "Sign in again", run: () => void store.signInAgain() }} />
        ) : null}
      </div>
      {state.phase === "connected" ? <SignedIn store={store} state={state} /> : <Landing store={store} state={state} />}
      <footer class="footer">
        <p>
          Your records are encrypted and decrypted in this page; the service and the chain see only ciphertext and consent.
          {state.deployment ? <> Kizuna {state.deployment.version} · chain {state.deployment.chainId}</> : null}
        </p>
      </footer>
    </div>
  );
}

function Header(props: { store: AppStore; state: State }) {
  const { state, store } = props;
  return (
    <header class="header">
      <a class="brand" href="#/">
        <span class="brand-mark" aria-hidden="true">K</span>
        <span class="brand-name">Kizuna</span>
      </a>
      {state.phase === "connected" && state.account ? (
        <div class="header-account">
          <span class="account" data-testid="account" title={state.account}>
            <span class="sr-only">Connected as </span>{shortAddress(state.account)}
          </span>
          <button type="button" class="button button-quiet" onClick={() => void store.disconnect()}>Disconnect</button>
        </div>
      ) : null}
    </header>
  );
}

function Landing(props: { store: AppStore; state: State }) {
  const { store, state } = props;
  const busy = state.phase === "connecting";
  return (
    <main id="main" class="landing">
      <section class="hero">
        <h1>Your health record, yours to share</h1>
        <p class="lead">
          Kizuna keeps your medical records encrypted with keys only your wallet can make. You decide which
          doctor sees what, until when, and you see every read.
        </p>
        <button type="button" class="button button-primary button-large" onClick={() => void store.connect()} disabled={busy} aria-busy={busy}>
          {busy ? "Connecting…" : "Connect wallet"}
        </button>
        <ol class="steps" aria-label="What connecting does">
          <li><strong>Connect</strong> your wallet (MetaMask or another) to this Kizuna network.</li>
          <li><strong>Sign in</strong>: one free signature proves the account is yours.</li>
          <li><strong>Unlock your keys</strong>: a second signature makes your encryption keys, in this page only.</li>
        </ol>
        <p class="hint">No gas is needed: Kizuna relays your signed consent to the chain.</p>
      </section>
    </main>
  );
}

function WalletPicker(props: { wallets: DiscoveredWallet[]; onPick: (w: DiscoveredWallet) => void; onCancel: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = dialog.current;
    if (d && !d.open) d.showModal();
  }, []);
  return (
    <dialog ref={dialog} class="dialog" aria-labelledby="picker-title" onCancel={props.onCancel}>
      <h2 id="picker-title">Choose a wallet</h2>
      <p>Several wallets are installed in this browser. Which one holds your health record's account?</p>
      <ul class="wallet-list">
        {props.wallets.map((w) => (
          <li key={w.info.uuid}>
            <button type="button" class="button wallet-choice" onClick={() => props.onPick(w)}>
              {w.info.icon ? <img src={w.info.icon} alt="" width={28} height={28} /> : null}
              <span>{w.info.name}</span>
            </button>
          </li>
        ))}
      </ul>
      <button type="button" class="button button-quiet" onClick={props.onCancel}>Cancel</button>
    </dialog>
  );
}

function SignedIn(props: { store: AppStore; state: State }) {
  const { store, state } = props;
  const route = useRoute();
  const context: PageContext = { store, state };
  const pages = pagesFor(context);
  const page = pages.find((p) => p.route === route) ?? pages[0]!;
  useEffect(() => {
    if (route !== page.route) go(page.route);
  }, [route, page.route]);
  return (
    <div class="layout">
      <nav class="nav" aria-label="Your record">
        <ul>
          {pages.map((p) => (
            <li key={p.route}>
              <a href={`#/${p.route}`} aria-current={p.route === page.route ? "page" : undefined}>{p.title}</a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" class="page" tabIndex={-1}>
        {page.render(context)}
      </main>
    </div>
  );
}
