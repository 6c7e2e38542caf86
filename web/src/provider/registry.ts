// The provider registry in the page (contracts/ProviderRegistry.sol, kizuna/chain/agents/
// registry.py). Only a registrar may ADD a provider (`addProvider` is onlyRole(REGISTRAR_ROLE)):
// a provider cannot register itself. So the provider's page shows the Umbral public key its
// wallet derives (what grants' key fragments are made for) to hand to a registrar, and whether
// the registry lists it, with that key, active; a registered provider whose key differs (another
// derivation) replaces it with its own `rotateUmbralKey` transaction. The registrar's page adds,
// suspends and reinstates providers with the registrar wallet's own transactions (the API has
// no route for them: the chain is the registry). Every status is read from the chain through
// the wallet, never from the service.

import {
  BaseError, ContractFunctionRevertedError, encodeFunctionData, keccak256, parseAbi, toHex, type Hex,
} from "viem";
import { bytesToHex0x, equalBytes, hexToBytes } from "../core/bytes.ts";
import { InputError, KizunaError } from "../core/errors.ts";
import { checkedAddress, type RegistryProvider } from "../patient/chain.ts";
import type { SignPurpose } from "../wallet/signer.ts";
import type { ProviderCare } from "./care.ts";
import type { ProviderContext } from "./context.ts";

const REGISTRY_ABI = parseAbi([
  "function addProvider(address provider, bytes umbralPublicKey, bytes32 credentialCommitment)",
  "function suspendProvider(address provider)",
  "function reinstateProvider(address provider)",
  "function rotateUmbralKey(bytes umbralPublicKey)",
  "function hasRole(bytes32 role, address account) view returns (bool)",
  "error ProviderRegistryAlreadyRegistered(address provider)",
  "error ProviderRegistryUnknownProvider(address provider)",
  "error ProviderRegistryStatusUnchanged(address provider, bool active)",
  "error ProviderRegistryInvalidUmbralKey(uint256 length, bytes1 prefix)",
  "error ProviderRegistryInvalidProvider(address provider)",
  "error AccessControlUnauthorizedAccount(address account, bytes32 neededRole)",
]);

/** keccak256("KIZUNA_REGISTRAR_ROLE"): ProviderRegistry.REGISTRAR_ROLE (registry.py's constant). */
export const REGISTRAR_ROLE: Hex = keccak256(toHex("KIZUNA_REGISTRAR_ROLE"));

/** The provider's standing in the registry, as its own page shows it. */
export type OwnStatus = {
  /** The key this wallet derives: what the registry must hold for grants to reach this page. */
  derivedKey: Hex;
  entry: RegistryProvider | null;
  /** The registry holds the derived key (false: another key, or not registered). */
  keyMatches: boolean;
};

/** What a status means for the provider, in one sentence (pure: web/test/provider_care_registry). */
export function statusText(status: OwnStatus): string {
  const { entry, keyMatches } = status;
  if (!entry) return "Not registered: hand your address and public key to a registrar, who verifies your credentials and adds you.";
  if (!entry.active) return "Suspended by a registrar: you cannot read records, ask for access or open emergency access until you are reinstated.";
  if (!keyMatches) return "Registered, but with another public key than the one your wallet derives here: replace it so grants reach this page.";
  return entry.verified ? "Registered and verified by a registrar: patients can share with you." : "Registered (no credential recorded) and active.";
}

/** A licence or credential reference as the registry records it: keccak256 of its text (the
 * demo's rule), or a 0x-prefixed 32-byte commitment as given. */
export function credentialCommitment(text: string): Hex {
  const value = text.trim();
  if (!value) throw new InputError("credential", "a licence or credential reference is needed");
  if (/^0x[0-9a-fA-F]{64}$/.test(value)) return value.toLowerCase() as Hex;
  return keccak256(toHex(value));
}

/** A 33-byte compressed public key from text, or InputError naming `field`. */
export function umbralKeyOf(text: string, field = "public_key"): Hex {
  const value = text.trim();
  if (!/^0x0[23][0-9a-fA-F]{64}$/.test(value)) throw new InputError(field, "must be a compressed public key: 0x02 or 0x03 then 64 hex digits (66 in all)");
  return value.toLowerCase() as Hex;
}

function explained(error: unknown): unknown {
  if (!(error instanceof BaseError)) return error;
  const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null;
  const name = reverted?.data?.errorName;
  const words: Record<string, string> = {
    ProviderRegistryAlreadyRegistered: "This provider is registered already.",
    ProviderRegistryUnknownProvider: "The registry does not know this provider.",
    ProviderRegistryStatusUnchanged: "The provider is already in that state.",
    ProviderRegistryInvalidUmbralKey: "The public key is not a compressed key (33 bytes, 0x02 or 0x03 first).",
    ProviderRegistryInvalidProvider: "That is not a provider's address.",
    AccessControlUnauthorizedAccount: "Your account does not hold the registrar role in the provider registry.",
  };
  return name ? new KizunaError(words[name] ?? `The registry refused: ${name}.`, { cause: error }) : error;
}

export class Registry {
  readonly ctx: ProviderContext;
  readonly #care: ProviderCare;

  constructor(ctx: ProviderContext, care: ProviderCare) {
    this.ctx = ctx;
    this.#care = care;
  }

  /** The key this wallet derives (compressed, 0x hex). */
  derivedKey(): Hex {
    const key = this.ctx.keys.publicKey;
    try {
      return bytesToHex0x(new Uint8Array(key.toCompressedBytes()));
    } finally {
      key.free();
    }
  }

  /** This account's entry (null: not registered) and whether it holds the derived key. */
  async own(): Promise<OwnStatus> {
    const derivedKey = this.derivedKey();
    let entry: RegistryProvider | null = null;
    try {
      entry = await this.ctx.chain.provider(this.ctx.address);
    } catch (error) {
      if (!(error instanceof InputError)) throw error; // InputError: not in the registry
    }
    const keyMatches = entry !== null && equalBytes(entry.umbralPublicKey, hexToBytes(derivedKey));
    return { derivedKey, entry, keyMatches };
  }

  /** Whether `account` holds the registrar role (from the chain). */
  isRegistrar(account: string = this.ctx.address): Promise<boolean> {
    return this.ctx.chain.client.readContract({
      address: this.ctx.contract("ProviderRegistry"), abi: REGISTRY_ABI, functionName: "hasRole",
      args: [REGISTRAR_ROLE, checkedAddress("account", account)],
    });
  }

  /** Every provider the registry ever added, with its entry now. */
  providers(): Promise<RegistryProvider[]> {
    return this.ctx.chain.providers();
  }

  async #send(call: Parameters<typeof encodeFunctionData<typeof REGISTRY_ABI>>[0], purpose: SignPurpose): Promise<Hex> {
    const registry = this.ctx.contract("ProviderRegistry");
    try { // simulated first: a refusal is explained before the wallet asks
      await this.ctx.chain.client.call({ to: registry, data: encodeFunctionData(call), account: this.ctx.address });
    } catch (error) {
      throw explained(error);
    }
    return this.#care.transact({ to: registry, data: encodeFunctionData(call) }, purpose);
  }

  /** The provider replaces its registered key with the one this wallet derives. */
  rotateKey(): Promise<Hex> {
    const key = this.derivedKey();
    return this.#send({ abi: REGISTRY_ABI, functionName: "rotateUmbralKey", args: [key] }, {
      title: "Replace your public key in the registry",
      why: "Puts the public key your wallet derives in the provider registry, so what patients share from now on can be opened in this page.",
      details: [["Provider", this.ctx.address], ["New public key", key]],
    });
  }

  /** A registrar adds (verifies) a provider with its key and credential commitment. */
  add(provider: string, publicKey: string, credential: string): Promise<Hex> {
    const who = checkedAddress("provider", provider);
    const key = umbralKeyOf(publicKey);
    const commitment = credentialCommitment(credential);
    return this.#send({ abi: REGISTRY_ABI, functionName: "addProvider", args: [who, key, commitment] }, {
      title: "Verify a provider",
      why: "Adds this provider to the registry as verified: patients can then share records with them and they can ask for access.",
      details: [["Provider", who], ["Public key", key], ["Credential commitment", commitment]],
    });
  }

  /** A registrar suspends a provider (its reads, requests and emergency access stop at once). */
  suspend(provider: string): Promise<Hex> {
    const who = checkedAddress("provider", provider);
    return this.#send({ abi: REGISTRY_ABI, functionName: "suspendProvider", args: [who] }, {
      title: "Suspend a provider",
      why: "Marks this provider suspended in the registry: from the next block they cannot read records, ask for access or open emergency access.",
      details: [["Provider", who]],
    });
  }

  /** A registrar reinstates a suspended provider. */
  reinstate(provider: string): Promise<Hex> {
    const who = checkedAddress("provider", provider);
    return this.#send({ abi: REGISTRY_ABI, functionName: "reinstateProvider", args: [who] }, {
      title: "Reinstate a provider",
      why: "Marks this provider active again in the registry: the grants patients gave them work again.",
      details: [["Provider", who]],
    });
  }
}
