// What every part of the provider's client shares (P1's reading pages and P2's care pages):
// the API, the provider's wallet signer, its wallet-derived keys (whose Umbral public key is the
// one in the provider registry), the deployment and a chain reader through the wallet. Built
// from the app store's pieces by `providerContextOf` (the store itself is not restructured).

import { createPublicClient, custom, type Hex } from "viem";
import type { Api, ApiOptions } from "../api/client.ts";
import { InputError, KizunaError } from "../core/errors.ts";
import type { WalletKeys } from "../core/walletKeys.ts";
import { ChainReader, checkedAddress } from "../patient/chain.ts";
import type { Deployment } from "../wallet/connection.ts";
import type { DiscoveredWallet } from "../wallet/discovery.ts";
import type { AccountSigner } from "../wallet/signer.ts";

export class ProviderContext {
  readonly api: Api;
  readonly apiOptions: ApiOptions;
  readonly signer: AccountSigner;
  readonly keys: WalletKeys;
  readonly deployment: Deployment;
  readonly chain: ChainReader;

  constructor(fields: { api: Api; apiOptions: ApiOptions; signer: AccountSigner; keys: WalletKeys; deployment: Deployment; chain: ChainReader }) {
    this.api = fields.api;
    this.apiOptions = fields.apiOptions;
    this.signer = fields.signer;
    this.keys = fields.keys;
    this.deployment = fields.deployment;
    this.chain = fields.chain;
    if (checkedAddress("signer", fields.signer.address) !== fields.keys.account) {
      throw new InputError("keys", `the keys are ${fields.keys.account}'s, not the signer's (${fields.signer.address})`);
    }
  }

  /** The provider: the signed-in wallet's account. */
  get address(): Hex {
    return this.signer.address;
  }

  contract(name: string): Hex {
    const address = this.deployment.contracts[name];
    if (!address) throw new KizunaError(`This Kizuna deployment names no ${name} contract.`);
    return checkedAddress(name, address);
  }
}

/** The pieces of the app's state a provider context is made of (AppStore + State). */
export type ProviderPieces = {
  api: Api; apiOptions: ApiOptions;
  wallet: DiscoveredWallet | null; signer: AccountSigner | null; keys: WalletKeys | null; deployment: Deployment | null;
};

/** The provider context of the connected wallet (null until connected and keys unlocked).
 * The chain is read through the wallet (the page's CSP lets it fetch only the API). */
export function providerContextOf(pieces: ProviderPieces): ProviderContext | null {
  const { wallet, signer, keys, deployment } = pieces;
  if (!wallet || !signer || !keys || !deployment) return null;
  // One context per unlocked key set (the pages re-render often; a new connection, a new one).
  const known = contexts.get(keys);
  if (known && known.signer === signer && known.deployment === deployment) return known;
  const chain = new ChainReader(createPublicClient({ transport: custom(wallet.provider) }), deployment);
  const context = new ProviderContext({ api: pieces.api, apiOptions: pieces.apiOptions, signer, keys, deployment, chain });
  contexts.set(keys, context);
  return context;
}

const contexts = new WeakMap<WalletKeys, ProviderContext>();
