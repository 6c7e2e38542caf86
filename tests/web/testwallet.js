// The browser tests' wallet: an EIP-1193 provider announced by EIP-6963 (and set as
// window.ethereum), injected before the page's own scripts by context.add_init_script.
// It holds no key and decides nothing: every request goes to the Python side
// (tests/web/injected_wallet.py, exposed as window.__kizunaWalletRequest), which signs with a real
// private key (eth-account) and forwards reads and raw transactions to anvil.
//
// tests/web/injected_wallet.py prepends `const __KIZUNA_TEST_WALLETS = [{uuid, name, rdns}, ...];`
// (one provider per entry: several make the page show its picker).
//
// Test hooks (called by Python through page.evaluate):
//   __kizunaTestWallet.emit(uuid, event, payload)  an EIP-1193 event (accountsChanged, ...)
//   __kizunaTestWallet.hold(method) / release(method)  keep a request unanswered until released,
//       so a test can look at the page while the wallet is asking
//   __kizunaTestWallet.pending()  the methods being held right now
(() => {
  const wallets = __KIZUNA_TEST_WALLETS;
  const listeners = new Map(); // uuid -> Map(event -> Set(listener))
  const providers = new Map(); // uuid -> provider
  const held = new Set(); // methods to hold
  const waiting = []; // [{method, release}]

  // What the page shows while the wallet is asked (its "wallet-prompt" panel), recorded with each
  // request: rendering runs in microtasks, so a macrotask later the panel is in the DOM.
  const promptText = () =>
    new Promise((resolve) => setTimeout(() => {
      const panel = document.querySelector('[data-testid="wallet-prompt"]');
      resolve(panel ? panel.innerText : null);
    }, 0));

  const holdIfAsked = (method) => {
    if (!held.has(method)) return Promise.resolve();
    return new Promise((release) => waiting.push({ method, release }));
  };

  class ProviderRpcError extends Error {
    constructor(code, message, data) {
      super(message);
      this.code = code;
      if (data !== undefined) this.data = data;
    }
  }

  const emit = (uuid, event, payload) => {
    for (const listener of [...(listeners.get(uuid)?.get(event) ?? [])]) listener(payload);
  };

  const makeProvider = (info) => {
    const own = new Map();
    listeners.set(info.uuid, own);
    const provider = {
      isKizunaTestWallet: true,
      async request(args) {
        if (!args || typeof args.method !== "string") throw new ProviderRpcError(-32600, "Invalid request: no method.");
        const params = args.params === undefined ? [] : args.params;
        const prompt = await promptText();
        await holdIfAsked(args.method);
        const answer = await window.__kizunaWalletRequest(info.uuid, args.method, params, prompt);
        // Events the wallet sends after answering (chainChanged after a switch), as MetaMask does.
        for (const [event, payload] of answer.events ?? []) setTimeout(() => emit(info.uuid, event, payload), 0);
        if (answer && answer.error) throw new ProviderRpcError(answer.error.code, answer.error.message, answer.error.data);
        return answer.result;
      },
      on(event, listener) {
        if (!own.has(event)) own.set(event, new Set());
        own.get(event).add(listener);
        return provider;
      },
      removeListener(event, listener) {
        own.get(event)?.delete(listener);
        return provider;
      },
    };
    providers.set(info.uuid, provider);
    return provider;
  };

  const detailOf = (w) =>
    Object.freeze({ info: Object.freeze({ uuid: w.uuid, name: w.name, icon: w.icon, rdns: w.rdns }), provider: providers.get(w.uuid) });

  for (const w of wallets) makeProvider(w);
  const announce = () => {
    for (const w of wallets) window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail: detailOf(w) }));
  };
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
  if (wallets.length > 0) window.ethereum = providers.get(wallets[0].uuid);

  window.__kizunaTestWallet = {
    emit,
    hold(method) {
      held.add(method);
    },
    release(method) {
      held.delete(method);
      for (let i = waiting.length - 1; i >= 0; i--) {
        if (waiting[i].method === method) waiting.splice(i, 1)[0].release();
      }
    },
    pending() {
      return waiting.map((w) => w.method);
    },
    listenerCount(uuid, event) {
      return listeners.get(uuid)?.get(event)?.size ?? 0;
    },
  };
})();
