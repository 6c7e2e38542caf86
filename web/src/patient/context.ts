// What every part of the patient's client shares: the API, the signer, the keys, the chain
// reader, and the one rule for how an on-chain step is authorised — a signed EIP-712 action the
// service relays (gasless, the default), or a transaction the user's wallet sends and pays for
// ("send it myself"), passed on as its hash.

import type { Hex } from "viem";
import { ok, type Api, type ApiOptions, type Schemas } from "../api/client.ts";
import { InputError, KizunaError } from "../core/errors.ts";
import type { WalletKeys } from "../core/walletKeys.ts";
import type { Deployment } from "../wallet/connection.ts";
import type { AccountSigner, SignPurpose, TransactionRequest } from "../wallet/signer.ts";
import { checkedAddress, type ChainReader } from "./chain.ts";

export type Authorization = Schemas["AuthorizationIn"];
export type Prepared = Schemas["PreparedOut"];

/** How long a signed action stays valid for the relayer (Python's DEFAULT_DEADLINE_S). */
export const DEFAULT_DEADLINE_S = 3600;

export class PatientContext {
  readonly api: Api;
  readonly apiOptions: ApiOptions;
  readonly signer: AccountSigner;
  readonly keys: WalletKeys;
  readonly deployment: Deployment;
  readonly chain: ChainReader;
  /** Changed in place by the page's "pay the fee myself" option (keeps the scope-key cache). */
  gasless: boolean;
  /** The ward a guardian acts for (null: the signed-in patient themself). */
  readonly ward: Hex | null;
  readonly deadlineSeconds: number;

  constructor(fields: {
    api: Api; apiOptions: ApiOptions; signer: AccountSigner; keys: WalletKeys; deployment: Deployment;
    chain: ChainReader; gasless: boolean; patient?: string | undefined; deadlineSeconds?: number | undefined;
  }) {
    this.api = fields.api;
    this.apiOptions = fields.apiOptions;
    this.signer = fields.signer;
    this.keys = fields.keys;
    this.deployment = fields.deployment;
    this.chain = fields.chain;
    this.gasless = fields.gasless;
    this.deadlineSeconds = fields.deadlineSeconds ?? DEFAULT_DEADLINE_S;
    if (checkedAddress("signer", fields.signer.address) !== fields.keys.account) {
      throw new InputError("keys", `the keys are ${fields.keys.account}'s, not the signer's (${fields.signer.address})`);
    }
    const ward = fields.patient === undefined ? null : checkedAddress("patient", fields.patient);
    this.ward = ward === fields.signer.address ? null : ward;
  }

  /** Whose record this is: the ward's when acting for one, else the signer's. */
  get patient(): Hex {
    return this.ward ?? this.signer.address;
  }

  /** The `?patient=` of routes a guardian may call for a ward (nothing for oneself). */
  acting(): { patient?: string } {
    return this.ward ? { patient: this.ward } : {};
  }

  /** Refuse what needs the ward's own keys or signature (acting for a ward comes later). */
  ownOnly(what: string): void {
    if (this.ward) {
      throw new InputError("patient", `${what} for a ward is not possible yet: it needs keys only the ward's own wallet has`);
    }
  }

  contract(name: string): Hex {
    const address = this.deployment.contracts[name];
    if (!address) throw new KizunaError(`This Kizuna deployment names no ${name} contract.`);
    return checkedAddress(name, address);
  }

  /** The deadline of a signed action: the chain's clock plus deadlineSeconds. */
  async deadline(): Promise<number> {
    return (await this.chain.now()) + this.deadlineSeconds;
  }

  /** Authorise a prepared action: signed for the relayer when gasless (and the action has a
   * signed form), else sent from the wallet; what the API takes as `authorization`. */
  async authorize(prepared: Prepared, purpose: SignPurpose): Promise<Authorization> {
    if (this.gasless && prepared.typed_data) {
      const signature = await this.signer.signTypedData(prepared.typed_data, purpose);
      return { signed: { typed_data: prepared.typed_data, signature } };
    }
    return { tx_hash: await this.send(prepared, purpose) };
  }

  /** Authorise a prepared action that no route of its own carries (a study's withdrawal):
   * when gasless, the signature goes to the service's relayer (`POST /wallet/relay`), else the
   * wallet sends the transaction; the transaction's hash either way. */
  async submit(prepared: Prepared, purpose: SignPurpose): Promise<Hex> {
    const authorization = await this.authorize(prepared, purpose);
    if (!authorization.signed) return authorization.tx_hash as Hex;
    const relayed = ok(await this.api.POST("/wallet/relay", { body: authorization.signed }));
    return relayed.tx_hash as Hex;
  }

  /** Send a prepared transaction from the wallet (the user pays the gas); its hash. */
  async send(prepared: Prepared, purpose: SignPurpose): Promise<Hex> {
    const tx = prepared.transaction;
    if (!tx["to"] || !tx["data"]) throw new KizunaError("The service prepared a transaction without a recipient or data.");
    const request: TransactionRequest = { to: tx["to"], data: tx["data"] };
    if (tx["value"]) request.value = tx["value"];
    if (tx["gas"]) request.gas = tx["gas"];
    return this.signer.sendTransaction(request, {
      ...purpose,
      why: `${purpose.why} Your wallet sends this transaction itself and pays its network fee.`,
    });
  }
}
