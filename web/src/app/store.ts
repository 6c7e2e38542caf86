// The page's state of the user's connection: which wallet, which account, the API session and
// the keys (in memory only). One store, observed by the components (useStore); the wallet's
// EIP-1193 events change it without reloading the page.

import { createPublicClient, custom, type Hex } from "viem";
import { type Api, type ApiOptions, createApi } from "../api/client.ts";
import { KizunaError, toKizunaError } from "../core/errors.ts";
import type { WalletKeys } from "../core/walletKeys.ts";
import { type DiscoveredWallet, legacyWallet, watchWallets } from "../wallet/discovery.ts";
import { NoWallet, WrongChain } from "../wallet/eip1193.ts";
import {
  chainIdOf, type Deployment, ensureChain, loadDeployment, requestAccount, type Session, signIn, unlockKeys,
} from "../wallet/connection.ts";
import { type SignPurpose, WalletSigner } from "../wallet/signer.ts";
import { ChainReader } from "../patient/chain.ts";
import { PatientClient } from "../patient/patient.ts";
import type { DecryptedRecord } from "../fhir/records.ts";
import { type LibraryProgress, loadLibrary } from "./library.ts";
import { releaseDecryptPool } from "../workers/pool.ts";

export type Phase = "landing" | "connecting" | "connected";

export type State = {
  phase: Phase;
  wallets: DiscoveredWallet[];
  /** The wallet picker is open (several wallets announced themselves). */
  picking: boolean;
  wallet: DiscoveredWallet | null;
  deployment: Deployment | null;
  account: Hex | null;
  session: Session | null;
  /** The session ended (expired, or signed out elsewhere): pages stay, a banner offers sign-in. */
  sessionLost: boolean;
  keys: WalletKeys | null;
  signer: WalletSigner | null;
  /** The patient's operations (keys, API, chain through the wallet), once connected. */
  client: PatientClient | null;
  /** true: consent actions are signed and relayed (no gas); false: the wallet sends them. */
  gasless: boolean;
  /** The records, decrypted in this page (null: not loaded yet). */
  library: DecryptedRecord[] | null;
  libraryProgress: LibraryProgress | null;
  /** A guardian acting for this ward (lists and reads only); null: for themselves. */
  actingFor: Hex | null;
  /** The wallet request being answered, shown in the page meanwhile. */
  prompt: SignPurpose | null;
  /** What went wrong last (shown in role=alert until dismissed or the next action). */
  error: KizunaError | null;
  /** A neutral message (an account switch, a disconnect). */
  notice: string | null;
  /** The wallet is on a chain other than the deployment's (after connecting). */
  wrongChain: WrongChain | null;
};

const INITIAL: State = {
  phase: "landing", wallets: [], picking: false, wallet: null, deployment: null, account: null,
  session: null, sessionLost: false, keys: null, signer: null, client: null, gasless: true,
  actingFor: null, library: null, libraryProgress: null, prompt: null, error: null,
  notice: null, wrongChain: null,
};

const asKizunaError = (error: unknown): KizunaError => toKizunaError(error, "Nothing was sent; try again.");

export class AppStore {
  #state: State = INITIAL;
  readonly #listeners = new Set<() => void>();
  readonly api: Api;
  readonly apiOptions: ApiOptions;
  #unwatch: (() => void) | null = null;
  #loading = false;
  /** Bumped when the records change: a load begun before does not overwrite the newer state. */
  #generation = 0;
  #detach: (() => void) | null = null;

  readonly win: Window;

  constructor(win: Window) {
    this.win = win;
    this.apiOptions = {
      token: () => this.#state.session?.token ?? null,
      onSessionExpired: () => {
        if (this.#state.session) this.#set({ session: null, sessionLost: true });
      },
    };
    this.api = createApi(this.apiOptions);
  }

  get state(): State {
    return this.#state;
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #set(patch: Partial<State>): void {
    this.#state = { ...this.#state, ...patch };
    for (const listener of this.#listeners) listener();
  }

  /** Start listening for wallets (EIP-6963) and read the deployment. */
  start(): void {
    this.#unwatch = watchWallets(this.win, (wallets) => this.#set({ wallets }));
    loadDeployment(this.api).then(
      (deployment) => this.#set({ deployment }),
      (error) => this.#set({ error: asKizunaError(error) }),
    );
  }

  stop(): void {
    this.#unwatch?.();
    this.#detach?.();
  }

  dismiss(): void {
    this.#set({ error: null, notice: null });
  }

  /** The wallets to offer: those announced, else the legacy injected one. */
  availableWallets(): DiscoveredWallet[] {
    if (this.#state.wallets.length > 0) return this.#state.wallets;
    const legacy = legacyWallet(this.win);
    return legacy ? [legacy] : [];
  }

  /** "Connect wallet": with several wallets, open the picker; with one, use it. */
  async connect(): Promise<void> {
    const wallets = this.availableWallets();
    if (wallets.length === 0) {
      this.#set({ error: new NoWallet("No Ethereum wallet was found in this browser. Install MetaMask (or another wallet), then reload this page.") });
      return;
    }
    if (wallets.length > 1) {
      this.#set({ picking: true, error: null, notice: null });
      return;
    }
    await this.connectWith(wallets[0]!);
  }

  cancelPicking(): void {
    this.#set({ picking: false });
  }

  /** Connect with one wallet: account, chain, sign-in, keys. Each step's failure is shown and
   * leaves the page as it was (landing), ready to try again. */
  async connectWith(wallet: DiscoveredWallet): Promise<void> {
    this.#set({ picking: false, phase: "connecting", wallet, error: null, notice: null });
    try {
      const deployment = this.#state.deployment ?? (await loadDeployment(this.api));
      const provider = wallet.provider;
      const account = await requestAccount(provider);
      await ensureChain(provider, deployment);
      const signer = new WalletSigner(provider, account, {
        open: (purpose) => this.#set({ prompt: purpose }),
        close: () => this.#set({ prompt: null }),
      });
      const session = await signIn(this.api, signer);
      this.#set({ deployment, account, session, signer, sessionLost: false });
      const keys = await unlockKeys(signer, deployment);
      this.#attach(wallet);
      this.#set({ phase: "connected", keys, wrongChain: null });
      this.#set({ client: this.#client() });
    } catch (error) {
      await this.#endSession();
      this.#set({ ...this.#cleared(), wallets: this.#state.wallets, deployment: this.#state.deployment, error: asKizunaError(error) });
    }
  }

  /** The patient client for the current state. The chain is read through the wallet (the
   * user's own view of it; the page's CSP lets it fetch nothing but this API). */
  #client(): PatientClient | null {
    const { wallet, keys, signer, deployment, gasless, actingFor } = this.#state;
    if (!wallet || !keys || !signer || !deployment) return null;
    const chain = new ChainReader(createPublicClient({ transport: custom(wallet.provider) }), deployment);
    return new PatientClient({
      api: this.api, apiOptions: this.apiOptions, signer, keys, deployment, gasless, chain,
      ...(actingFor ? { patient: actingFor } : {}),
    });
  }

  /** Download and decrypt the records (again, after an upload). One load at a time. */
  async refreshLibrary(): Promise<void> {
    const client = this.#state.client;
    if (!client || this.#loading) return;
    this.#loading = true;
    const generation = this.#generation;
    try {
      const records = await loadLibrary(client, (p) => {
        if (this.#state.client === client) this.#set({ libraryProgress: p });
      });
      if (this.#state.client === client && generation === this.#generation) {
        this.#set({ library: records, libraryProgress: null });
      } else {
        this.#set({ libraryProgress: null });
      }
    } catch (error) {
      this.#set({ error: asKizunaError(error), libraryProgress: null });
    } finally {
      this.#loading = false;
    }
    // Records changed during the load: load again (the gate is still waiting for them).
    if (generation !== this.#generation && this.#state.library === null) void this.refreshLibrary();
  }

  /** Records were added or changed: the library is decrypted again when next shown. */
  invalidateLibrary(): void {
    this.#generation += 1;
    this.#set({ library: null });
  }

  /** "Pay the gas myself" on or off. */
  setGasless(gasless: boolean): void {
    // The same client, so the scope keys it registered this session are not asked for again.
    if (this.#state.client) this.#state.client.context.gasless = gasless;
    this.#set({ gasless });
  }

  /** A guardian acts for a ward (null: for themselves again). */
  actFor(patient: string | null): void {
    this.#set({ actingFor: patient ? (patient as Hex) : null, library: null });
    this.#set({ client: this.#client() });
  }

  /** Sign in again after the session expired (the keys are still in memory). */
  async signInAgain(): Promise<void> {
    const signer = this.#state.signer;
    if (!signer) return;
    try {
      const session = await signIn(this.api, signer);
      this.#set({ session, sessionLost: false, error: null });
    } catch (error) {
      this.#set({ error: asKizunaError(error) });
    }
  }

  /** Ask the wallet to switch to the deployment's chain (after it moved away). */
  async switchChain(): Promise<void> {
    const { wallet, deployment } = this.#state;
    if (!wallet || !deployment) return;
    try {
      await ensureChain(wallet.provider, deployment);
      this.#set({ wrongChain: null, error: null });
    } catch (error) {
      this.#set({ error: asKizunaError(error) });
    }
  }

  /** Disconnect: end the API session, forget the keys and the account. */
  async disconnect(notice: string | null = null): Promise<void> {
    await this.#endSession();
    this.#set({ ...this.#cleared(), wallets: this.#state.wallets, deployment: this.#state.deployment, notice });
  }

  #cleared(): State {
    this.#detach?.();
    this.#detach = null;
    // The decryption workers hold a copy of the decrypting key: they end with the keys.
    if (this.#state.keys) releaseDecryptPool(this.#state.keys);
    return { ...INITIAL };
  }

  async #endSession(): Promise<void> {
    if (!this.#state.session) return;
    try {
      await this.api.POST("/auth/logout");
    } catch {
      // Ending an already ended session is fine; the token is dropped here either way.
    }
  }

  /** Follow the wallet: another account signs this one out; another chain is flagged. */
  #attach(wallet: DiscoveredWallet): void {
    const provider = wallet.provider;
    if (!provider.on) return;
    const onAccounts = (accounts: string[]) => {
      const next = accounts?.[0]?.toLowerCase();
      if (next === this.#state.account?.toLowerCase()) return;
      void this.disconnect(next
        ? "Your wallet switched to another account, so you were signed out of the previous one. Connect again to continue as the new account."
        : "Your wallet disconnected this page (or was locked). Connect again to continue.");
    };
    const onChain = (chainIdHex: string) => {
      const deployment = this.#state.deployment;
      if (!deployment) return;
      const chainId = Number.parseInt(chainIdHex, 16);
      this.#set({ wrongChain: chainId === deployment.chainId ? null : new WrongChain(deployment.chainId, chainId) });
    };
    const onDisconnect = () => void this.disconnect("Your wallet disconnected from its network. Connect again when it is back.");
    provider.on("accountsChanged", onAccounts);
    provider.on("chainChanged", onChain);
    provider.on("disconnect", onDisconnect);
    this.#detach = () => {
      provider.removeListener?.("accountsChanged", onAccounts);
      provider.removeListener?.("chainChanged", onChain);
      provider.removeListener?.("disconnect", onDisconnect);
    };
    void chainIdOf(provider).then((id) => onChain(`0x${id.toString(16)}`), () => undefined);
  }
}
