// Who signs for the page: an account that signs EIP-712 typed data (gasless actions, the key
// derivation), EIP-191 text (Sign-In with Ethereum) and, for users who prefer to pay gas, sends
// transactions itself. In the page it is the wallet (WalletSigner); in Node tests a private key
// (test/…), so the patient's operations (src/patient) are the same code in both.

import type { Hex } from "viem";
import { getAddress } from "viem";
import { type Eip1193Provider, walletRequest } from "./eip1193.ts";

/** What a signature is for, shown to the user in the page while their wallet asks. */
export type SignPurpose = {
  /** A short title: "Share with Dr Tanaka", "Sign in". */
  title: string;
  /** Why it is needed and what it lets happen, in a sentence or two. */
  why: string;
  /** The main facts of the message (label → value), as the wallet will show them. */
  details?: Array<[string, string]>;
};

/** A transaction for the wallet to send (eth_sendTransaction), as the API prepares it. */
export type TransactionRequest = { to: string; data: string; value?: string; from?: string; gas?: string };

export interface AccountSigner {
  readonly address: Hex;
  /** eth_signTypedData_v4 of `typedData` (the JSON document, as the API prepares it). */
  signTypedData(typedData: object, purpose: SignPurpose): Promise<Hex>;
  /** personal_sign of `message` (UTF-8 text). */
  signMessage(message: string, purpose: SignPurpose): Promise<Hex>;
  /** Send a transaction from this account (the user pays the gas); its hash. */
  sendTransaction(tx: TransactionRequest, purpose: SignPurpose): Promise<Hex>;
}

/** Tells the page a wallet request is open (to show its purpose) and when it is answered. */
export type PromptHooks = { open(purpose: SignPurpose): void; close(): void };

function utf8Hex(text: string): Hex {
  return `0x${Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The connected wallet as a signer; every request shows its purpose in the page meanwhile. */
export class WalletSigner implements AccountSigner {
  readonly address: Hex;
  readonly #provider: Eip1193Provider;
  readonly #hooks: PromptHooks;

  constructor(provider: Eip1193Provider, address: string, hooks: PromptHooks) {
    this.#provider = provider;
    this.address = getAddress(address);
    this.#hooks = hooks;
  }

  async #asking<T>(purpose: SignPurpose, call: () => Promise<T>): Promise<T> {
    this.#hooks.open(purpose);
    try {
      return await call();
    } finally {
      this.#hooks.close();
    }
  }

  signTypedData(typedData: object, purpose: SignPurpose): Promise<Hex> {
    return this.#asking(purpose, () =>
      walletRequest<Hex>(this.#provider, "eth_signTypedData_v4", [this.address, JSON.stringify(typedData)]));
  }

  signMessage(message: string, purpose: SignPurpose): Promise<Hex> {
    return this.#asking(purpose, () => walletRequest<Hex>(this.#provider, "personal_sign", [utf8Hex(message), this.address]));
  }

  sendTransaction(tx: TransactionRequest, purpose: SignPurpose): Promise<Hex> {
    return this.#asking(purpose, () =>
      walletRequest<Hex>(this.#provider, "eth_sendTransaction", [{ ...tx, from: this.address }]));
  }
}
