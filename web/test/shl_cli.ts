// The Node side of tests/web/test_shl_parity.py: web/src/sharing/shl.ts against the real API,
// signed in as a patient (private-key signer). One JSON request on stdin:
//   {base_url, rpc_url, private_key, public_base?, ops: [{op, ...}]}
//   make {documents, label?, expires_at?, passcode?, max_attempts?} -> {uri, link}
//   list -> {value};  revoke {link_id} -> {}
// and one JSON answer {address, results}. An op that fails answers {error, field?, status?, message}.
import type { Hex } from "viem";
import { ApiError, createApi, type ApiOptions } from "../src/api/client.ts";
import { InputError, KizunaError } from "../src/core/errors.ts";
import { Links } from "../src/sharing/shl.ts";
import { loadDeployment, signIn } from "../src/wallet/connection.ts";
import { KeySigner } from "./patient_signer.ts";

type Op = Record<string, unknown> & { op: string };
type Request = { base_url: string; rpc_url: string; private_key: Hex; public_base?: string; ops: Op[] };

async function run(links: Links, op: Op): Promise<object> {
  switch (op.op) {
    case "make":
      return await links.make({
        documents: op.documents as object[], label: (op.label as string | undefined) ?? null,
        expiresAt: (op.expires_at as number | undefined) ?? null, passcode: (op.passcode as string | undefined) ?? null,
        maxAttempts: (op.max_attempts as number | undefined) ?? 5,
      });
    case "list":
      return { value: await links.list() };
    case "revoke":
      await links.revoke(op.link_id as string);
      return {};
    default:
      throw new InputError("op", `unknown op ${JSON.stringify(op.op)}`);
  }
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
  const links = new Links(request.public_base === undefined ? { api, apiOptions } : { api, apiOptions, publicBase: request.public_base });
  const results: object[] = [];
  for (const op of request.ops) {
    try {
      results.push(await run(links, op));
    } catch (error) {
      if (!(error instanceof KizunaError)) throw error;
      results.push({
        error: error.name, message: error.message,
        field: error instanceof InputError ? error.field : error instanceof ApiError ? error.field : undefined,
        status: error instanceof ApiError ? error.status : undefined,
      });
    }
  }
  process.stdout.write(JSON.stringify({ address: signer.address, results }));
}

await main();
