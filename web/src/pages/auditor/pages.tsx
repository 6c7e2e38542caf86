// The auditor's pages, in navigation order (routes.tsx lists them first for an auditor).

import type { Page, PageContext } from "../../app/routes.tsx";
import { AuditCharts } from "./Charts.tsx";
import { auditorClient } from "./common.tsx";
import { AuditExport } from "./Export.tsx";
import { AuditLog, LOG_ROUTE } from "./Log.tsx";
import { AuditReviews, REVIEWS_ROUTE } from "./Reviews.tsx";
import { AuditVerify } from "./Verify.tsx";

export function auditorPages(context: PageContext): Page[] {
  const { wallet, deployment, account } = context.state;
  if (!wallet || !deployment || !account) return [];
  const client = () => auditorClient(context.store.api, context.store.apiOptions, wallet.provider, deployment, account);
  return [
    { route: LOG_ROUTE, title: "Audit log", render: () => <AuditLog client={client()} /> },
    { route: "audit-verify", title: "Verify reads", render: () => <AuditVerify client={client()} /> },
    { route: "audit-charts", title: "Audit charts", render: () => <AuditCharts client={client()} /> },
    { route: "audit-export", title: "Export (FHIR)", render: () => <AuditExport client={client()} /> },
    { route: REVIEWS_ROUTE, title: "Reviews", render: () => <AuditReviews client={client()} /> },
  ];
}
