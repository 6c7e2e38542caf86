// The Node side of tests/web/test_data_requests_parity.py: web/src/patient/dataRequests.ts
// against the real API and anvil, signing with a private key (patient_signer.ts). One JSON
// request on stdin:
//   {base_url?, rpc_url?, private_key?, ops: [{op, ...}]}
// and one JSON answer: {address, results: [...], asked: [purposes shown]}. Pure ops need no
// stack (no base_url): they answer the committed documents for comparison with Python.
//   requestCommitment {patient, provider, types, since, until, deadline_days, note_ref, nonce} -> {ref}
//   answerCommitment {request, state, reason, deliveries, nonce} -> {ref}
//   provenance {resource, request, answer}          -> {value}
//   checkedFields {types, since, until, deadline_days} -> {value}
//   publishInboxKey | grant {provider, labels, expires_in}
//   ask {provider, types, since?, until?, deadline_days?, note?} -> {value}
//   list -> {value};  received {request_id} -> {bundle, files};  receive {request_id} -> {batches, resources, files}
//   records -> {value};  filesLeft {request_id} -> {left}
import { createPublicClient, http, type Hex } from "viem";
import { ApiError, createApi, type ApiOptions } from "../src/api/client.ts";
import { hexToBytes, bytesToHex0x } from "../src/core/bytes.ts";
import { InputError, KizunaError } from "../src/core/errors.ts";
import type { JsonObject } from "../src/importer/json.ts";
import { ChainReader } from "../src/patient/chain.ts";
import { answerCommitment, checkedFields, DataRequests, provenance, requestCommitment, type DataRequest } from "../src/patient/dataRequests.ts";
import { PatientClient } from "../src/patient/patient.ts";
import { PatientRequests } from "../src/patient/requests.ts";
import { loadDeployment, signIn, unlockKeys } from "../src/wallet/connection.ts";
import { KeySigner } from "./patient_signer.ts";

type Op = Record<string, unknown> & { op: string };
type Request = { base_url?: string; rpc_url?: string; private_key?: Hex; ops: Op[] };

function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v) => (v instanceof Uint8Array ? bytesToHex0x(v) : typeof v === "bigint" ? String(v) : v)));
}

async function pure(op: Op): Promise<object | null> {
  switch (op.op) {
    case "requestCommitment":
      return { ref: bytesToHex0x(await requestCommitment({
        patient: op.patient as string, provider: op.provider as string,
        fields: { types: op.types as string[], since: op.since as string | null, until: op.until as string | null, deadlineDays: op.deadline_days as number },
        noteRef: op.note_ref ? hexToBytes(op.note_ref as string) : null, nonce: hexToBytes(op.nonce as string),
      })) };
    case "answerCommitment":
      return { ref: bytesToHex0x(await answerCommitment({
        requestId: hexToBytes(op.request as string), state: op.state as string, reason: op.reason as string | null,
        deliveries: (op.deliveries as string[]).map((d) => hexToBytes(d)), nonce: hexToBytes(op.nonce as string),
      })) };
    case "provenance":
      return { value: await provenance(op.resource as JsonObject, op.request as DataRequest, op.answer as DataRequest["answers"][number]) };
    case "checkedFields":
      return { value: checkedFields({ types: op.types as string[], since: op.since as string | null, until: op.until as string | null, deadlineDays: op.deadline_days as number | null }) };
    default:
      return null;
  }
}

async function run(client: PatientClient, requests: DataRequests, op: Op): Promise<object> {
  const find = async (id: string) => {
    const found = (await requests.list()).find((r) => r.request_id === id);
    if (!found) throw new InputError("request_id", `no request ${id}`);
    return found;
  };
  switch (op.op) {
    case "publishInboxKey":
      await new PatientRequests(client).publishInboxKey();
      return {};
    case "grant": {
      const done = await client.grant(op.provider as string, op.labels as string[], (await client.now()) + (op.expires_in as number));
      return { tx_hash: done.txHash };
    }
    case "ask":
      return { value: await requests.ask(op.provider as string, {
        types: op.types as string[], since: (op.since as string | undefined) ?? null, until: (op.until as string | undefined) ?? null,
        deadlineDays: (op.deadline_days as number | undefined) ?? null, note: (op.note as string | undefined) ?? null,
      }) };
    case "list":
      return { value: await requests.list() };
    case "filesLeft":
      return { left: await requests.filesLeft(await find(op.request_id as string), await client.registeredIds()) };
    case "received": {
      const got = await requests.received(await find(op.request_id as string));
      return { bundle: got.bundle, files: got.files };
    }
    case "receive": {
      const done = await requests.receive(await find(op.request_id as string));
      return { batches: done.batches, resources: done.resources, files: done.files, added: done.added, already: done.already };
    }
    case "records":
      return { value: plain(await client.records()) as object };
    default:
      throw new InputError("op", `unknown op ${JSON.stringify(op.op)}`);
  }
}

function failure(error: unknown): object {
  if (!(error instanceof KizunaError)) throw error;
  return {
    error: error.name, message: error.message,
    field: error instanceof InputError ? error.field : error instanceof ApiError ? error.field : undefined,
    status: error instanceof ApiError ? error.status : undefined,
  };
}

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const request = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Request;
  const results: object[] = [];
  if (!request.base_url) {
    for (const op of request.ops) {
      try {
        const answer = await pure(op);
        if (!answer) throw new InputError("op", `unknown pure op ${JSON.stringify(op.op)}`);
        results.push(answer);
      } catch (error) {
        results.push(failure(error));
      }
    }
    process.stdout.write(JSON.stringify({ address: null, results, asked: [] }));
    return;
  }
  let token: string | null = null;
  const apiOptions: ApiOptions = { baseUrl: request.base_url, token: () => token };
  const api = createApi(apiOptions);
  const deployment = await loadDeployment(api);
  const signer = new KeySigner(request.private_key as Hex, request.rpc_url as string, deployment.chainId);
  token = (await signIn(api, signer)).token;
  const keys = await unlockKeys(signer, deployment);
  const client = new PatientClient({
    api, apiOptions, signer, keys, deployment, gasless: true, streamUploads: true,
    chain: new ChainReader(createPublicClient({ transport: http(request.rpc_url) }), deployment),
  });
  const requests = new DataRequests(client);
  for (const op of request.ops) {
    try {
      results.push((await pure(op)) ?? (await run(client, requests, op)));
    } catch (error) {
      results.push(failure(error));
    }
  }
  process.stdout.write(JSON.stringify({ address: signer.address, results, asked: signer.asked }));
}

await main();
