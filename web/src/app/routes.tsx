// The signed-in pages, in navigation order. A page is a route, a title and a render function of
// the page context (the store and its state); the providers' and auditors' pages (issue 14) are
// added here by role.

import type { ComponentChildren } from "preact";
import { Account } from "../pages/Account.tsx";
import { AddRecords } from "../pages/patient/AddRecords.tsx";
import { Charts } from "../pages/patient/Charts.tsx";
import { Timeline } from "../pages/patient/Timeline.tsx";
import { RecordsGate } from "./RecordsGate.tsx";
import { Guardians } from "../pages/patient/Guardians.tsx";
import { Reads } from "../pages/patient/Reads.tsx";
import { Requests } from "../pages/patient/Requests.tsx";
import { DataRequests } from "../pages/patient/DataRequests.tsx";
import { ShareLink } from "../pages/patient/ShareLink.tsx";
import { Summary } from "../pages/patient/Summary.tsx";
import { Research } from "../pages/patient/Research.tsx";
import { Sharing } from "../pages/patient/Sharing.tsx";
import { Care as ProviderCarePage } from "../pages/provider/Care.tsx";
import { ProviderDataRequestsPage } from "../pages/provider/DataRequests.tsx";
import { Patients as ProviderPatients, PATIENT_ROUTE } from "../pages/provider/Patients.tsx";
import { PatientRecords, patientOfUrl } from "../pages/provider/PatientRecords.tsx";
import { providerClientOf } from "../provider/provider.ts";
import { Registry } from "../pages/provider/Registry.tsx";
import { ResearcherStudies } from "../pages/researcher/Studies.tsx";
import { auditorPages } from "../pages/auditor/pages.tsx";
import { currentRoute } from "./router.ts";
import type { AppStore, State } from "./store.ts";

export type PageContext = { store: AppStore; state: State };

export type Page = { route: string; title: string; render: (context: PageContext) => ComponentChildren };

export function pagesFor(context: PageContext): Page[] {
  const pages: Page[] = [];
  const roles = context.state.session?.roles ?? [];
  const isProvider = roles.includes("provider");
  const isRegistrar = roles.includes("registrar");
  if (roles.includes("auditor")) pages.push(...auditorPages(context));
  const provider = isProvider ? providerClientOf({ api: context.store.api, apiOptions: context.store.apiOptions, ...context.state }) : null;
  if (provider) {
    pages.push({ route: "provider-patients", title: "Patients", render: () => <ProviderPatients client={provider} /> });
    // One patient's records: a page of its own while it is open (#/provider-patient?patient=0x…).
    if (currentRoute() === PATIENT_ROUTE) pages.push({ route: PATIENT_ROUTE, title: "Patient records", render: () => <PatientRecords client={provider} patient={patientOfUrl()} /> });
  }
  // A researcher is a verified provider (the registry's role): its studies and their cohorts.
  if (provider) pages.push({ route: "researcher-studies", title: "Studies", render: () => <ResearcherStudies client={provider} /> });
  if (isProvider) pages.push({ route: "provider-care", title: "Care", render: (c) => <ProviderCarePage store={c.store} state={c.state} /> });
  if (isProvider) pages.push({ route: "provider-data-requests", title: "Data requests", render: (c) => <ProviderDataRequestsPage store={c.store} state={c.state} /> });
  // A provider not registered yet (or suspended) holds no provider role: it opens #/registry
  // by URL to see the key to hand to a registrar (the patients' navigation is unchanged).
  if (isProvider || isRegistrar || currentRoute() === "registry") {
    pages.push({ route: "registry", title: "Registry", render: (c) => <Registry store={c.store} state={c.state} provider={isProvider} registrar={isRegistrar} /> });
  }
  const client = context.state.client;
  if (client) {
    pages.push({ route: "timeline", title: "Timeline", render: (c) => (
      <RecordsGate store={c.store} state={c.state}>
        {(records) => <Timeline records={records} openRecord={(id) => client.readOwn(id)} />}
      </RecordsGate>
    ) });
    pages.push({ route: "charts", title: "Charts", render: (c) => (
      <RecordsGate store={c.store} state={c.state}>{(records) => <Charts records={records} />}</RecordsGate>
    ) });
    pages.push({ route: "add", title: "Add records", render: (c) => <AddRecords client={client} onAdded={() => c.store.invalidateLibrary()} /> });
  }
  if (client) pages.push({ route: "sharing", title: "Sharing", render: (c) => <Sharing client={client} onGaslessChange={(v) => c.store.setGasless(v)} /> });
  if (client) pages.push({ route: "requests", title: "Requests & inbox", render: () => <Requests client={client} /> });
  if (client) pages.push({ route: "data-requests", title: "Ask for records", render: (c) => <DataRequests client={client} onReceived={() => c.store.invalidateLibrary()} /> });
  if (client) pages.push({ route: "summary", title: "Health summary", render: (c) => (
    <RecordsGate store={c.store} state={c.state}>{(records) => <Summary records={records} client={client} />}</RecordsGate>
  ) });
  if (client) pages.push({ route: "links", title: "Share a link", render: () => <ShareLink client={client} /> });
  if (client) pages.push({ route: "research", title: "Research", render: () => <Research client={client} /> });
  if (client) pages.push({ route: "reads", title: "Who read what", render: () => <Reads client={client} /> });
  if (client) pages.push({ route: "guardians", title: "Guardians & emergency", render: (c) => <Guardians client={client} wards={c.state.session?.guardian_of ?? []} onActFor={(p) => c.store.actFor(p)} /> });
  pages.push({ route: "account", title: "Account", render: (c) => <Account state={c.state} /> });
  return pages;
}
