// Connecting a wallet to this deployment: the account, the chain (switch or add it), Sign-In with
// Ethereum for the API session, and the one signature the patient's keys derive from.

import { type Hex, getAddress } from "viem";
import { type Api, ok, type Schemas } from "../api/client.ts";
import { deriveWalletKeys, keyDerivationTypedData, type WalletKeys } from "../core/walletKeys.ts";
import { type Eip1193Provider, WalletError, WalletLocked, WrongChain, walletRequest, walletErrorOf } from "./eip1193.ts";
import type { AccountSigner } from "./signer.ts";
import { siweMessage } from "./siwe.ts";

/** What the page needs to know of the deployment it serves (GET /version). */
export type Deployment = {
  version: string;
  chainId: number;
  contracts: Record<string, string>;
  walletRpcUrl: string | null;
};

export async function loadDeployment(api: Api): Promise<Deployment> {
  const v = ok(await api.GET("/version"));
  return { version: v.version, chainId: v.chain_id, contracts: v.contracts, walletRpcUrl: v.wallet_rpc_url ?? null };
}

/** The consent ledger's address: the EIP-712 domain of key derivation and gasless actions. */
export function consentLedger(deployment: Deployment): Hex {
  const address = deployment.contracts["ConsentLedger"];
  if (!address) throw new WalletError("This Kizuna deployment names no ConsentLedger contract.");
  return getAddress(address);
}

/** The wallet's first account; asks the user to connect this site when it is not yet. */
export async function requestAccount(provider: Eip1193Provider): Promise<Hex> {
  const accounts = await walletRequest<string[]>(provider, "eth_requestAccounts");
  const first = accounts?.[0];
  if (!first) throw new WalletLocked("Your wallet gave no account: unlock it, then connect again.");
  return getAddress(first);
}

export async function chainIdOf(provider: Eip1193Provider): Promise<number> {
  return Number.parseInt(await walletRequest<string>(provider, "eth_chainId"), 16);
}

/** Make the wallet use the deployment's chain: switch to it, or add it first when the wallet
 * does not know it (4902) and the deployment says which RPC URL to add. */
export async function ensureChain(provider: Eip1193Provider, deployment: Deployment): Promise<void> {
  const expected = deployment.chainId;
  const current = await chainIdOf(provider);
  if (current === expected) return;
  const chainId = `0x${expected.toString(16)}`;
  try {
    await provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
  } catch (error) {
    const code = (error as { code?: number })?.code;
    if (code === 4902 && deployment.walletRpcUrl) {
      try {
        await provider.request({
          method: "wallet_addEthereumChain",
          params: [{ chainId, chainName: `Kizuna (chain ${expected})`, rpcUrls: [deployment.walletRpcUrl],
                     nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 } }],
        });
      } catch (added) {
        throw walletErrorOf(added);
      }
    } else if (code === 4001) {
      throw walletErrorOf(error);
    } else {
      throw new WrongChain(expected, current, error);
    }
  }
  const now = await chainIdOf(provider);
  if (now !== expected) throw new WrongChain(expected, now);
}

export type Session = Schemas["SessionAnswer"];

/** Sign in with Ethereum: a server nonce, the EIP-4361 message signed, a session token. */
export async function signIn(api: Api, signer: AccountSigner, now: Date = new Date()): Promise<Session> {
  const nonce = ok(await api.GET("/auth/nonce"));
  const message = siweMessage({
    domain: nonce.domain, uri: nonce.uri, chainId: nonce.chain_id, nonce: nonce.nonce,
    address: signer.address, issuedAt: now,
    expirationTime: new Date(now.getTime() + 8 * 3600 * 1000),
  });
  const signature = await signer.signMessage(message, {
    title: "Sign in to Kizuna",
    why: "Proves to the Kizuna service that you hold this account. It costs nothing, sends nothing and cannot move funds.",
    details: [["Service", nonce.domain], ["Chain", String(nonce.chain_id)]],
  });
  return ok(await api.POST("/auth/login", { body: { message, signature } }));
}

/** The patient's keys: one wallet signature of the KeyDerivation message (docs/keys.md); the
 * keys stay in this page's memory and are asked for again after a reload. */
export async function unlockKeys(signer: AccountSigner, deployment: Deployment): Promise<WalletKeys> {
  const domain = { chainId: deployment.chainId, verifyingContract: consentLedger(deployment) };
  const typed = keyDerivationTypedData(signer.address, domain);
  const signature = await signer.signTypedData(typed, {
    title: "Unlock your health record's keys",
    why: "Your encryption keys are computed in this page from this signature; they never leave it. Sign this only on Kizuna: whoever holds this signature can read your records.",
    details: [["Message", "KeyDerivation"], ["Contract", domain.verifyingContract]],
  });
  return deriveWalletKeys(signature, signer.address, domain);
}
