// What the page reads from the chain itself rather than taking on the service's word (as the
// Python client reads it from its own node, kizuna/client/api_service.py): the chain's clock
// for deadlines, a provider's registry key that key fragments are made for, the registry's
// providers, the commitment a record was registered with (readOwn checks the download
// against it), and the roots of the patient's record batches (their manifests must lead there). Reads go through any EIP-1193 / HTTP transport viem takes: the deployment's
// wallet RPC URL, or the wallet itself (`custom(provider)`).

import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  custom,
  getAddress,
  http,
  isAddress,
  parseAbi,
  parseAbiItem,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
} from "viem";
import { proofLeadsTo, type BatchLeaf } from "../core/batch.ts";
import { bytesToHex0x, hexToBytes, type Bytes } from "../core/bytes.ts";
import { InputError, IntegrityError, KizunaError } from "../core/errors.ts";
import type { Deployment } from "../wallet/connection.ts";
import type { Eip1193Provider } from "../wallet/eip1193.ts";

const REGISTRY_ABI = parseAbi([
  "function providerOf(address provider) view returns (bytes umbralPublicKey, bytes32 credentialCommitment, bool active, uint64 registeredAt)",
]);
const PROVIDER_ADDED = parseAbiItem(
  "event ProviderAdded(address indexed provider, address indexed registrar, bytes umbralPublicKey, bytes32 credentialCommitment)",
);
const RECORD_REGISTERED = parseAbiItem(
  "event RecordRegistered(address indexed patient, bytes32 indexed recordId, bytes32 commitment, bytes32 scopeId)",
);

const LEDGER_ABI = parseAbi([
  "function batchOf(bytes32 root) view returns (address patient, uint64 registeredAt, uint32 count)",
]);
const RECORD_BATCH_REGISTERED = parseAbiItem(
  "event RecordBatchRegistered(address indexed patient, bytes32 indexed root, uint32 count)",
);

/** A batch of records as the chain has it: its Merkle root, how many records, where. */
export type RegisteredBatch = { root: Bytes; count: number; blockNumber: number };
/** A batch as the ledger's batchOf answers (null: no batch has that root). */
export type BatchStatus = { patient: Hex; registeredAt: number; count: number };

/** The chain could not be read (node down, no RPC URL): nothing was changed. */
export class ChainUnreachable extends KizunaError {
  override name = "ChainUnreachable";
}

/** A provider as the registry has it. */
export type RegistryProvider = {
  address: Hex;
  /** Its Umbral public key (33 bytes, compressed): what grants' key fragments are made for. */
  umbralPublicKey: Bytes;
  /** Set by the registrar who verified the provider's credentials (zero: none recorded). */
  credentialCommitment: Hex;
  /** A registrar verified it and has not suspended it. */
  active: boolean;
  verified: boolean;
  registeredAt: number;
};

/** An Ethereum address (EIP-55 checksummed), or InputError naming `field`. */
export function checkedAddress(field: string, value: string): Hex {
  if (typeof value !== "string" || !isAddress(value, { strict: false })) {
    throw new InputError(field, `${JSON.stringify(value)} is not an Ethereum address (0x and 40 hex digits)`);
  }
  return getAddress(value);
}

function contract(deployment: Deployment, name: string): Hex {
  const address = deployment.contracts[name];
  if (!address) throw new KizunaError(`This Kizuna deployment names no ${name} contract.`);
  return getAddress(address);
}

async function reading<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof KizunaError) throw error;
    throw new ChainUnreachable(`The blockchain node could not be read (${what}). Check that it is running, then try again.`, {
      cause: error,
      details: error instanceof BaseError ? error.shortMessage : String(error),
    });
  }
}

export class ChainReader {
  readonly client: PublicClient;
  readonly deployment: Deployment;

  constructor(client: PublicClient, deployment: Deployment) {
    this.client = client;
    this.deployment = deployment;
  }

  /** A reader over the deployment's RPC URL (what `GET /version` names for wallets). */
  static forDeployment(deployment: Deployment, rpcUrl: string | null = deployment.walletRpcUrl): ChainReader {
    if (!rpcUrl) {
      throw new KizunaError("This Kizuna deployment names no RPC URL to read the chain from: pass a chain reader (ChainReader.forWallet).");
    }
    return new ChainReader(createPublicClient({ transport: http(rpcUrl) }), deployment);
  }

  /** A reader through the connected wallet's own node (eth_call, eth_getLogs): what the page
   * uses when the deployment names no RPC URL. */
  static forWallet(provider: Eip1193Provider, deployment: Deployment): ChainReader {
    return new ChainReader(createPublicClient({ transport: custom(provider) }), deployment);
  }

  /** The receipt of a sent transaction once mined and successful. `late`: what to tell the
   * user when it is not seen within 120 s (it may still go through); `reverted`: when the
   * contract refused it. */
  async mined(hash: Hex, messages: { late: string; reverted: string }): Promise<TransactionReceipt> {
    let receipt: TransactionReceipt;
    try {
      receipt = await this.client.waitForTransactionReceipt({ hash, timeout: 120_000 });
    } catch (error) {
      throw new KizunaError(messages.late, { cause: error });
    }
    if (receipt.status !== "success") throw new KizunaError(messages.reverted);
    return receipt;
  }

  /** The chain's clock (the head block's time): deadlines and expiries are in it. */
  async now(): Promise<number> {
    const block = await reading("the head block", () => this.client.getBlock({ blockTag: "latest" }));
    return Number(block.timestamp);
  }

  /** The registry's entry of `provider`; InputError("provider") when it is none. */
  async provider(provider: string): Promise<RegistryProvider> {
    const address = checkedAddress("provider", provider);
    let entry: readonly [Hex, Hex, boolean, bigint];
    try {
      entry = await this.client.readContract({
        address: contract(this.deployment, "ProviderRegistry"),
        abi: REGISTRY_ABI,
        functionName: "providerOf",
        args: [address],
      });
    } catch (error) {
      if (error instanceof BaseError && error.walk((e) => e instanceof ContractFunctionRevertedError)) {
        throw new InputError("provider", `${address} is not a provider in the registry`);
      }
      return reading("the provider registry", () => Promise.reject(error));
    }
    const [key, credential, active, registeredAt] = entry;
    return {
      address,
      umbralPublicKey: hexToBytes(key, "umbralPublicKey"),
      credentialCommitment: credential,
      active,
      verified: BigInt(credential) !== 0n,
      registeredAt: Number(registeredAt),
    };
  }

  /** A provider that may receive a grant: registered and not suspended (InputError otherwise). */
  async activeProvider(provider: string): Promise<RegistryProvider> {
    const entry = await this.provider(provider);
    if (!entry.active) throw new InputError("provider", `${entry.address} is suspended in the registry`);
    return entry;
  }

  /** Every provider the registry ever added, with its current entry (newest first). */
  async providers(): Promise<RegistryProvider[]> {
    const logs = await reading("the provider registry", () =>
      this.client.getLogs({ address: contract(this.deployment, "ProviderRegistry"), event: PROVIDER_ADDED, fromBlock: 0n }));
    const seen = [...new Set(logs.map((log) => log.args.provider).filter((p): p is Hex => !!p))];
    const entries = await Promise.all(seen.map((address) => this.provider(address)));
    return entries.sort((a, b) => b.registeredAt - a.registeredAt);
  }

  /** The commitment `patient` registered for `recordId` (the newest registration).
   * `block` is a hint (the service names it, GET /patient/records/{id}): the event is looked
   * for in that one block first — a cost that does not grow with the chain — then, when it
   * is not there, in the whole chain. A wrong hint costs a scan, never a wrong answer: the
   * event is the node's, and a record id is registered once. */
  async registeredCommitment(patient: string, recordId: Bytes, block?: number | null): Promise<Bytes> {
    const query = (range: { fromBlock: bigint; toBlock?: bigint }) => reading("the record's registration", () =>
      this.client.getLogs({
        address: contract(this.deployment, "ConsentLedger"),
        event: RECORD_REGISTERED,
        args: { patient: checkedAddress("patient", patient), recordId: bytesToHex0x(recordId) },
        ...range,
      }));
    let logs = block === undefined || block === null ? [] : await query({ fromBlock: BigInt(block), toBlock: BigInt(block) });
    if (logs.length === 0) logs = await query({ fromBlock: 0n });
    const last = logs.at(-1);
    if (!last?.args.commitment) {
      throw new InputError("record_id", `no record ${bytesToHex0x(recordId)} is registered on chain by ${patient}`);
    }
    return hexToBytes(last.args.commitment, "commitment");
  }

  /** Every commitment `patient` registered, by record id (lower-case 0x hex): ONE eth_getLogs
   * of their RecordRegistered events — what a bulk read checks each download against. */
  async registeredCommitments(patient: string): Promise<Map<string, Bytes>> {
    const logs = await reading("the records' registrations", () =>
      this.client.getLogs({
        address: contract(this.deployment, "ConsentLedger"),
        event: RECORD_REGISTERED,
        args: { patient: checkedAddress("patient", patient) },
        fromBlock: 0n,
      }));
    const found = new Map<string, Bytes>();
    for (const log of logs) {
      if (log.args.recordId && log.args.commitment) {
        found.set(log.args.recordId.toLowerCase(), hexToBytes(log.args.commitment, "commitment"));
      }
    }
    return found;
  }

  /** Every batch `patient` registered (their RecordBatchRegistered events, one eth_getLogs),
   * oldest first: the roots a batch record's manifest must lead to (patient/batches.ts). */
  async registeredBatches(patient: string): Promise<RegisteredBatch[]> {
    const logs = await reading("the record batches' registrations", () =>
      this.client.getLogs({
        address: contract(this.deployment, "ConsentLedger"),
        event: RECORD_BATCH_REGISTERED,
        args: { patient: checkedAddress("patient", patient) },
        fromBlock: 0n,
      }));
    return logs.flatMap((log) => log.args.root && log.args.count !== undefined
      ? [{ root: hexToBytes(log.args.root, "root"), count: Number(log.args.count), blockNumber: Number(log.blockNumber) }]
      : []);
  }

  /** The ledger's batchOf(root): its patient, time and count; null when no batch has it. */
  async batchOf(root: Uint8Array): Promise<BatchStatus | null> {
    const [patient, registeredAt, count] = await reading("the record batch", () => this.client.readContract({
      address: contract(this.deployment, "ConsentLedger"), abi: LEDGER_ABI, functionName: "batchOf", args: [bytesToHex0x(root)],
    }));
    if (BigInt(patient) === 0n) return null;
    return { patient: getAddress(patient), registeredAt: Number(registeredAt), count: Number(count) };
  }

  /** The commitment of `leaf` (a record the service says is in batch `root`), once the node
   * says `root` is a batch of `patient` and `proof` leads from the leaf to it; IntegrityError
   * otherwise (kizuna/client/chainview.py batch_commitment). */
  async batchCommitment(patient: string, leaf: BatchLeaf, root: Uint8Array, proof: readonly Uint8Array[]): Promise<Bytes> {
    const owner = checkedAddress("patient", patient);
    const batch = await this.batchOf(root);
    if (!batch) throw new IntegrityError(`no batch ${bytesToHex0x(root)} is registered on chain`);
    if (batch.patient !== owner) throw new IntegrityError(`batch ${bytesToHex0x(root)} is registered to ${batch.patient}, not to ${owner}`);
    if (!proofLeadsTo(root, leaf, proof)) {
      throw new IntegrityError(`the proof of record ${bytesToHex0x(leaf.recordId)} does not lead to batch ${bytesToHex0x(root)}`);
    }
    return leaf.commitment;
  }
}
