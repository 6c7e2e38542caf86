// The Node side of tests/web/test_provider_parity.py: the web ProviderClient (web/src/provider)
// against the real API and anvil, signing with a private key (patient_signer.ts's KeySigner).
// One JSON request on stdin: {base_url, rpc_url, private_key, ops: [{op, ...}]}; it signs in
// (SIWE), unlocks the keys (KeyDerivation signature), runs the ops in order and prints one JSON
// answer {address, results, asked}. A failing op answers {error, message, status?, ...}.
//   patients                              -> {value: [{patient, live, grants: [{scope_id, state, expires_at}]}]}
//   records {patient, content_type?}      -> {value: [RecordOut]}
//   read {patient, record_id, scope_id?}  -> {content (hex), content_type, receipt} | refusal
//   readAll {patient}                     -> {contents: {record_id: hex}, failures, progress}
import { createPublicClient, http, type Hex } from "viem";
import { ApiError, createApi, type ApiOptions } from "../src/api/client.ts";
import { bytesToHex } from "../src/core/bytes.ts";
import { InputError, KizunaError } from "../src/core/errors.ts";
import { ChainReader } from "../src/patient/chain.ts";
import { ProviderContext } from "../src/provider/context.ts";
import { ProviderClient, ReadRefused } from "../src/provider/provider.ts";
import { loadDeployment, signIn, unlockKeys } from "../src/wallet/connection.ts";
import { KeySigner } from "./patient_signer.ts";

type Op = Record<string, unknown> & { op: string };
type Request = { base_url: string; rpc_url: string; private_key: Hex; ops: Op[] };

async function run(client: ProviderClient, op: Op): Promise<object> {
  switch (op.op) {
    case "patients":
      return { value: (await client.patients()).map((p) => ({
        patient: p.patient, live: p.live,
        grants: p.grants.map((g) => ({ scope_id: g.scopeId, state: g.state, expires_at: g.expiresAt, ended_at: g.endedAt })),
      })) };
    case "records":
      return { value: await client.records(op.patient as string, op.content_type ? { contentType: op.content_type as string } : {}) };
    case "read": {
      // A record as listed; with scope_id given, one this provider may not have listed (a refusal).
      const listed = (await client.records(op.patient as string)).find((r) => r.record_id === (op.record_id as string).toLowerCase());
      const record = listed ?? {
        record_id: op.record_id as string, patient: op.patient as string, scope_id: op.scope_id as string,
        cid: "", commitment: "", size: 0, content_type: "", created_at: 0, epoch: 0, block_number: null,
      };
      const done = await client.read(record);
      return { content: bytesToHex(done.content), content_type: done.contentType, receipt: done.receipt };
    }
    case "readAll": {
      const records = await client.records(op.patient as string);
      const contents: Record<string, string> = {};
      const failures: object[] = [];
      const progress: number[] = [];
      await client.readAll(op.patient as string, records, (index, outcome) => {
        progress.push(index);
        if (outcome instanceof Error) failures.push(failure(outcome));
        else contents[outcome.record.record_id] = bytesToHex(outcome.content);
      });
      return { contents, failures, progress };
    }
    default:
      throw new InputError("op", `unknown op ${JSON.stringify(op.op)}`);
  }
}

function failure(error: unknown): object {
  if (!(error instanceof KizunaError)) throw error;
  return {
    error: error.name,
    message: error.message,
    field: error instanceof InputError ? error.field : undefined,
    status: error instanceof ApiError ? error.status : undefined,
    ...(error instanceof ReadRefused ? { scope_id: error.scopeId, state: error.grant?.state ?? "never", service_kind: error.serviceKind } : {}),
  };
}

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const request = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Request;
  let token: string | null = null;
  const apiOptions: ApiOptions = { baseUrl: request.base_url, token: () => token };
  const api = createApi(apiOptions);
  const deployment = await loadDeployment(api);
  const signer = new KeySigner(request.private_key, request.rpc_url, deployment.chainId);
  token = (await signIn(api, signer)).token;
  const keys = await unlockKeys(signer, deployment);
  const chain = new ChainReader(createPublicClient({ transport: http(request.rpc_url) }), deployment);
  const client = new ProviderClient(new ProviderContext({ api, apiOptions, signer, keys, deployment, chain }));
  const results: object[] = [];
  for (const op of request.ops) {
    try {
      results.push(await run(client, op));
    } catch (error) {
      results.push(failure(error));
    }
  }
  process.stdout.write(JSON.stringify({ address: signer.address, results, asked: signer.asked }));
}

await main();
