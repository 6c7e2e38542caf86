// The provider's reading operations in the page (kizuna/client/provider.py): who granted them
// what until when (from the chain), the records they may read now (the API's list, filtered),
// one read, "read all of this patient" — and, when a read is refused, why, from the chain.

import type { Hex } from "viem";
import { ApiError, ok } from "../api/client.ts";
import { KizunaError } from "../core/errors.ts";
import { checkedAddress } from "../patient/chain.ts";
import { providerContextOf, type ProviderContext, type ProviderPieces } from "./context.ts";
import { grantOf, providerGrants, refusalReason, type ScopeGrant } from "./grants.ts";
import { readMany, readRecord, type ReadableRecord, type ReadResult } from "./reads.ts";

/** A read the service refused, with the chain's explanation (which scope, why, since when). */
export class ReadRefused extends KizunaError {
  override name = "ReadRefused";
  readonly scopeId: string;
  /** The grant as the chain has it now (null: never granted). */
  readonly grant: ScopeGrant | null;
  /** What the service said (its error kind, e.g. GrantRevoked). */
  readonly serviceKind: string;

  constructor(message: string, fields: { scopeId: string; grant: ScopeGrant | null; serviceKind: string; cause: unknown }) {
    super(message, { cause: fields.cause });
    this.scopeId = fields.scopeId;
    this.grant = fields.grant;
    this.serviceKind = fields.serviceKind;
  }
}

/** A patient who granted this provider something, with every grant (live or not). */
export type GrantingPatient = { patient: Hex; grants: ScopeGrant[]; live: number };

export type RecordFilter = { contentType?: string; scopeId?: string; since?: number; until?: number };

export class ProviderClient {
  readonly context: ProviderContext;

  constructor(context: ProviderContext) {
    this.context = context;
  }

  get address(): Hex {
    return this.context.address;
  }

  /** Every patient who ever granted this provider a scope, each grant's state now (from the
   * chain): those with a live grant first. */
  async patients(): Promise<GrantingPatient[]> {
    const grants = await providerGrants(this.context);
    const byPatient = new Map<Hex, ScopeGrant[]>();
    for (const grant of grants) byPatient.set(grant.patient, [...(byPatient.get(grant.patient) ?? []), grant]);
    return [...byPatient].map(([patient, list]) => ({ patient, grants: list, live: list.filter((g) => g.state === "live").length }))
      .sort((a, b) => b.live - a.live || a.patient.localeCompare(b.patient));
  }

  /** One patient's grants to this provider, now. */
  grantsOf(patient: string): Promise<ScopeGrant[]> {
    return providerGrants(this.context, checkedAddress("patient", patient));
  }

  /** The records this provider may read now (live grants), by patient, type, scope and date
   * (type and date filtered by the service; the scope here: the API has no scope filter). */
  async records(patient?: string, filter: RecordFilter = {}): Promise<ReadableRecord[]> {
    const query: { patient?: string; content_type?: string; since?: number; until?: number } = {};
    if (patient) query.patient = checkedAddress("patient", patient);
    if (filter.contentType) query.content_type = filter.contentType;
    if (filter.since !== undefined) query.since = filter.since;
    if (filter.until !== undefined) query.until = filter.until;
    const listed = ok(await this.context.api.GET("/provider/records", { params: { query } }));
    const scope = filter.scopeId?.toLowerCase();
    return scope ? listed.filter((r) => r.scope_id.toLowerCase() === scope) : listed;
  }

  /** Read one record (a signed request, its receipt, decryption here). A refusal is a
   * ReadRefused saying which scope was revoked / expired / never granted, and since when. */
  async read(record: ReadableRecord): Promise<ReadResult> {
    try {
      return await readRecord(this.context, record);
    } catch (error) {
      throw await this.#explained(record, error);
    }
  }

  /** Read every given record of one patient, one signed request (and receipt) each; `onEach`
   * hears each outcome, refusals explained. `stop()` ends the batch between reads. */
  async readAll(patient: string, records: readonly ReadableRecord[], onEach: (index: number, outcome: ReadResult | Error) => void, stop?: () => boolean): Promise<void> {
    await readMany(this.context, patient, records, async (index, outcome) => {
      onEach(index, outcome instanceof Error ? await this.#explained(records[index]!, outcome) : outcome);
    }, stop);
  }

  async #explained<E>(record: ReadableRecord, error: E): Promise<E | ReadRefused> {
    if (!isRefusal(error)) return error;
    let grant: ScopeGrant | null = null;
    let reason: string | null;
    try {
      grant = grantOf(await this.grantsOf(record.patient), record.patient, record.scope_id);
      reason = refusalReason(grant, record.scope_id);
    } catch {
      reason = null; // the chain could not be read: the service's own words below
    }
    const message = reason
      ? `The read was refused. ${reason}`
      : `The read was refused: ${error.message}`;
    return new ReadRefused(message, { scopeId: record.scope_id, grant, serviceKind: error.kind, cause: error });
  }
}

function isRefusal(error: unknown): error is ApiError {
  return error instanceof ApiError && error.status === 403;
}

const clients = new WeakMap<ProviderContext, ProviderClient>();

/** The provider client of the connected wallet (one per connection; null until connected). */
export function providerClientOf(pieces: ProviderPieces): ProviderClient | null {
  const context = providerContextOf(pieces);
  if (!context) return null;
  let client = clients.get(context);
  if (!client) {
    client = new ProviderClient(context);
    clients.set(context, client);
  }
  return client;
}
