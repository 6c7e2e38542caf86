// What the auditor's pages share: one AuditorClient per wallet and deployment (pages re-render
// often; the client, its block-time cache and its loads must not be remade each time).

import type { Deployment } from "../../wallet/connection.ts";
import type { Eip1193Provider } from "../../wallet/eip1193.ts";
import type { Api, ApiOptions } from "../../api/client.ts";
import { AuditorClient } from "../../auditor/client.ts";
import "../patient/care/care.css";
import "./auditor.css";

let cached: { provider: Eip1193Provider; deployment: Deployment; account: string; client: AuditorClient } | null = null;

export function auditorClient(api: Api, apiOptions: ApiOptions, provider: Eip1193Provider, deployment: Deployment, account: string): AuditorClient {
  if (!cached || cached.provider !== provider || cached.deployment !== deployment || cached.account !== account) {
    cached = { provider, deployment, account, client: AuditorClient.forWallet(api, apiOptions, provider, deployment) };
  }
  return cached.client;
}
