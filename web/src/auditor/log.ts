// The log explorer's pure parts: filters ↔ the hash route's query (a URL per filter and per
// event: #/audit?patient=0x…&kind=access-granted&from=2026-01-01&tx=0x…), filtering, the
// charts' series, and the export's period cut.

import type { Schemas } from "../api/client.ts";
import { InputError } from "../core/errors.ts";
import type { ChartSeries } from "../fhir/series.ts";

export type LogEntry = Schemas["AuditEntryOut"];

export type LogFilter = {
  patient: string;
  provider: string;
  kind: string;
  /** YYYY-MM-DD (UTC), inclusive; "" for no bound. */
  from: string;
  to: string;
  /** One event: its transaction hash (and, for a chain event, its log index). */
  tx: string;
  log: string;
};

export const EMPTY_FILTER: LogFilter = { patient: "", provider: "", kind: "", from: "", to: "", tx: "", log: "" };
const KEYS = Object.keys(EMPTY_FILTER) as (keyof LogFilter)[];

/** The kinds an auditor filters by, in the order of docs/audit.md, with readable names. */
export const KINDS: Record<string, string> = {
  "access-granted": "Grant",
  "access-revoked": "Revocation",
  "all-access-revoked": "Revoke-all",
  "care-event": "Care event",
  "guardian-appointed": "Guardian appointed",
  "guardian-removed": "Guardian removed",
  "guardian-acted": "Guardian acted",
  "emergency-opened": "Emergency access opened",
  "emergency-closed": "Emergency access closed",
  "emergency-policy-set": "Emergency policy set",
  "receipt-root-anchored": "Anchored root",
  "read": "Read",
  "refused-read": "Refused read",
  "refused-reads-suppressed": "Refused reads (counted)",
  "record-registered": "Record registered",
  "record-batch-registered": "Records registered (batch)",
  "record-superseded": "Record superseded",
  "access-requested": "Access requested",
  "request-closed": "Request closed",
  "provider-registry": "Provider registry",
  "role-granted": "Role granted",
  "role-revoked": "Role revoked",
  "role-admin-changed": "Role admin changed",
};

export function kindName(kind: string): string {
  return KINDS[kind] ?? kind;
}

/** The filter a hash route's query names (unknown keys ignored). */
export function filterFromHash(hash: string): LogFilter {
  const query = new URLSearchParams(hash.split("?")[1] ?? "");
  const out = { ...EMPTY_FILTER };
  for (const k of KEYS) out[k] = (query.get(k) ?? "").trim();
  return out;
}

/** The hash route for `route` with `filter` (empty fields left out): a shareable link. */
export function hashFor(route: string, filter: LogFilter): string {
  const query = new URLSearchParams();
  for (const k of KEYS) if (filter[k]) query.set(k, filter[k]);
  const q = query.toString();
  return `#/${route}${q ? `?${q}` : ""}`;
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** Unix seconds of a YYYY-MM-DD day's start (UTC), or of its end with `end`. */
export function dayBound(field: string, day: string, end = false): number | null {
  if (!day) return null;
  const t = DAY.test(day) ? Date.parse(`${day}T00:00:00Z`) : NaN;
  if (Number.isNaN(t)) throw new InputError(field, `${JSON.stringify(day)} is not a date (YYYY-MM-DD)`);
  return t / 1000 + (end ? 86_399 : 0);
}

/** The filter's problems, by field (empty: usable). */
export function filterProblems(filter: LogFilter): Partial<Record<keyof LogFilter, string>> {
  const out: Partial<Record<keyof LogFilter, string>> = {};
  if (filter.patient && !ADDRESS.test(filter.patient)) out.patient = "not an Ethereum address (0x and 40 hex digits)";
  if (filter.provider && !ADDRESS.test(filter.provider)) out.provider = "not an Ethereum address (0x and 40 hex digits)";
  for (const k of ["from", "to"] as const) {
    try { dayBound(k, filter[k]); } catch { out[k] = "not a date (YYYY-MM-DD)"; }
  }
  if (!out.from && !out.to && filter.from && filter.to && filter.from > filter.to) out.to = "before the start of the period";
  if (filter.tx && !/^0x[0-9a-fA-F]{64}$/.test(filter.tx)) out.tx = "not a transaction hash (0x and 64 hex digits)";
  return out;
}

const same = (a: string | null | undefined, b: string) => !!a && a.toLowerCase() === b.toLowerCase();

/** The entries `filter` keeps (a usable filter: see filterProblems). A provider filter also
 * matches the acting address, as the service's does. */
export function filterEntries(entries: readonly LogEntry[], filter: LogFilter): LogEntry[] {
  const from = dayBound("from", filter.from), to = dayBound("to", filter.to, true);
  return entries.filter((e) =>
    (!filter.patient || same(e.patient, filter.patient)) &&
    (!filter.provider || same(e.provider, filter.provider) || same(e.actor, filter.provider)) &&
    (!filter.kind || e.kind === filter.kind) &&
    (from === null || e.time >= from) && (to === null || e.time <= to) &&
    (!filter.tx || same(e.tx_hash, filter.tx)) && (!filter.log || String(e.log_index) === filter.log));
}

/** The link to one event: its transaction and, for a chain event, its log index. */
export function eventFilter(e: LogEntry): LogFilter {
  return { ...EMPTY_FILTER, tx: e.tx_hash, log: e.log_index >= 0 ? String(e.log_index) : "", kind: e.tx_hash ? "" : e.kind };
}

const DAY_S = 86_400;
const dayOf = (t: number) => Math.floor(t / DAY_S) * DAY_S;

function perDay(lines: Map<string, Map<number, number>>, names: (key: string) => string): ChartSeries["lines"] {
  return [...lines.entries()].map(([k, days]) => ({
    code: k, name: names(k), range: null,
    points: [...days.entries()].sort((a, b) => a[0] - b[0]).map(([t, v]) => ({ t: t * 1000, v, flag: null, recordId: "" })),
  }));
}

function count(map: Map<string, Map<number, number>>, k: string, t: number): void {
  const days = map.get(k) ?? new Map<number, number>();
  days.set(dayOf(t), (days.get(dayOf(t)) ?? 0) + 1);
  map.set(k, days);
}

/** Reads per provider per day (at most 4 providers drawn: the busiest). */
export function readsPerProvider(entries: readonly LogEntry[], label: (address: string) => string): ChartSeries {
  const lines = new Map<string, Map<number, number>>();
  for (const e of entries) if (e.kind === "read" && e.provider) count(lines, e.provider, e.time);
  const busiest = new Map([...lines.entries()].sort((a, b) => total(b[1]) - total(a[1])).slice(0, 4));
  return { key: "reads", title: "Reads per provider per day", unit: "", skipped: {}, known: true, lines: perDay(busiest, label) };
}

const total = (days: Map<number, number>) => [...days.values()].reduce((s, v) => s + v, 0);

/** Grants and revocations (revoke-alls counted with revocations) per day. */
export function grantsAndRevocations(entries: readonly LogEntry[]): ChartSeries {
  const lines = new Map<string, Map<number, number>>([["grants", new Map()], ["revocations", new Map()]]);
  for (const e of entries) {
    if (e.kind === "access-granted") count(lines, "grants", e.time);
    else if (e.kind === "access-revoked" || e.kind === "all-access-revoked") count(lines, "revocations", e.time);
  }
  return { key: "consent", title: "Grants and revocations per day", unit: "", skipped: {}, known: true,
    lines: perDay(lines, (k) => (k === "grants" ? "Grants" : "Revocations")) };
}

/** Anchoring lag: per anchored batch, seconds from its first read's serving to the anchor's
 * block time (reads name their batch root; the anchor entry names the root it anchored). */
export function anchoringLag(entries: readonly LogEntry[]): ChartSeries {
  const anchoredAt = new Map<string, number>();
  for (const e of entries) {
    const root = e.details.root;
    if (e.kind === "receipt-root-anchored" && typeof root === "string") anchoredAt.set(root.toLowerCase(), e.time);
  }
  const firstRead = new Map<string, number>();
  for (const e of entries) {
    const root = e.details.batchRoot;
    if (e.kind === "read" && typeof root === "string") {
      const k = root.toLowerCase();
      firstRead.set(k, Math.min(firstRead.get(k) ?? Infinity, e.time));
    }
  }
  const points = [...anchoredAt.entries()].filter(([root]) => firstRead.has(root))
    .map(([root, t]) => ({ t: t * 1000, v: t - firstRead.get(root)!, flag: null, recordId: root }))
    .sort((a, b) => a.t - b.t);
  return { key: "lag", title: "Anchoring lag (seconds from a batch's first read to its anchor)", unit: "s", skipped: {}, known: true,
    lines: [{ code: "lag", name: "Lag", range: null, points }] };
}
