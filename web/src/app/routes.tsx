// The signed-in pages, in navigation order. A page is a route, a title and a render function of
// the page context (the store and its state); the providers' and auditors' pages (issue 14) are
// added here by role.

import type { ComponentChildren } from "preact";
import { Account } from "../pages/Account.tsx";
import type { AppStore, State } from "./store.ts";

export type PageContext = { store: AppStore; state: State };

export type Page = { route: string; title: string; render: (context: PageContext) => ComponentChildren };

export function pagesFor(context: PageContext): Page[] {
  const pages: Page[] = [];
  pages.push({ route: "account", title: "Account", render: (c) => <Account state={c.state} /> });
  return pages;
}
