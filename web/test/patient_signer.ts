// An AccountSigner backed by a private key (viem's privateKeyToAccount), for Node tests: it
// signs exactly what a wallet would (eth_signTypedData_v4 of the document the API prepares, or
// the page builds), sends transactions to the node, and keeps every purpose it was shown so a
// test can check that each wallet request says what it is for.

import { createWalletClient, defineChain, http, type Hex, type TypedDataDefinition } from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { forViem, type JsonTypedData } from "../src/core/eip712.ts";
import type { AccountSigner, SignPurpose, TransactionRequest } from "../src/wallet/signer.ts";



export type Asked = { kind: "typed" | "message" | "transaction"; purpose: SignPurpose; primaryType?: string };

export class KeySigner implements AccountSigner {
  readonly address: Hex;
  readonly asked: Asked[] = [];
  readonly #account: PrivateKeyAccount;
  readonly #rpcUrl: string;
  readonly #chainId: number;

  constructor(privateKey: Hex, rpcUrl: string, chainId: number) {
    this.#account = privateKeyToAccount(privateKey);
    this.address = this.#account.address;
    this.#rpcUrl = rpcUrl;
    this.#chainId = chainId;
  }

  async signTypedData(typedData: object, purpose: SignPurpose): Promise<Hex> {
    const typed = typedData as JsonTypedData;
    this.asked.push({ kind: "typed", purpose, primaryType: typed.primaryType });
    return this.#account.signTypedData(forViem(typed));
  }

  async signMessage(message: string, purpose: SignPurpose): Promise<Hex> {
    this.asked.push({ kind: "message", purpose });
    return this.#account.signMessage({ message });
  }

  async sendTransaction(tx: TransactionRequest, purpose: SignPurpose): Promise<Hex> {
    this.asked.push({ kind: "transaction", purpose });
    const chain = defineChain({
      id: this.#chainId, name: "kizuna-test", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [this.#rpcUrl] } },
    });
    const wallet = createWalletClient({ account: this.#account, chain, transport: http(this.#rpcUrl) });
    return wallet.sendTransaction({
      to: tx.to as Hex,
      data: tx.data as Hex,
      value: tx.value ? BigInt(tx.value) : undefined,
      gas: tx.gas ? BigInt(tx.gas) : undefined,
    });
  }
}
