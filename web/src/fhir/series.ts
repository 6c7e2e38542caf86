// Chart series from Observations: one chart per measurement (LOINC code), values converted to
// one unit per chart, each point flagged against its own reference range (or a documented
// default), blood pressure's systolic and diastolic on one chart.

import { timelineDate } from "./dates.ts";
import type { DecryptedRecord } from "./records.ts";
import { compareToRange, interpretationFlag, referenceRange, type Flag } from "./summarize.ts";
import { CHARTS, LOINC } from "./measures.ts";
import { convert } from "./units.ts";

/** A normal range in the chart's unit, and where it comes from. */
export interface RangeBand {
  readonly low: number | null;
  readonly high: number | null;
  /** "record": the records' own referenceRange; "default": measures.ts's table. */
  readonly source: "record" | "default";
}

export interface ChartPoint {
  /** Milliseconds since the epoch. */
  readonly t: number;
  /** The value in the chart's unit. */
  readonly v: number;
  readonly flag: Flag | null;
  readonly recordId: string;
}

export interface ChartLine {
  readonly code: string;
  readonly name: string;
  /** Oldest first; one point per (time, value) even when a panel and a single Observation
   *  both carry it (Synthea writes blood pressure both ways). */
  readonly points: readonly ChartPoint[];
  readonly range: RangeBand | null;
}

export interface ChartSeries {
  readonly key: string;
  readonly title: string;
  /** The UCUM unit every value of the chart is in. */
  readonly unit: string;
  readonly lines: readonly ChartLine[];
  /** Values left out because their unit cannot be converted to the chart's (unit → count). */
  readonly skipped: Readonly<Record<string, number>>;
  /** True for the measurements of the table above, false for other codes found. */
  readonly known: boolean;
}

type Json = Record<string, unknown>;

function obj(value: unknown): Json | null {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Json) : null;
}

function codings(concept: unknown): Json[] {
  const list = obj(concept)?.coding;
  return Array.isArray(list) ? list.map(obj).filter((c): c is Json => c !== null) : [];
}

function loincCodes(concept: unknown): string[] {
  return codings(concept)
    .filter((c) => c.system === LOINC && typeof c.code === "string")
    .map((c) => c.code as string);
}

function loincName(concept: unknown, code: string): string {
  const c = obj(concept);
  if (typeof c?.text === "string" && c.text) return c.text;
  const coding = codings(concept).find((x) => x.code === code && typeof x.display === "string");
  return coding ? String(coding.display) : `LOINC ${code}`;
}

interface RawPoint {
  readonly t: number;
  readonly value: number;
  readonly unit: string;
  readonly element: Json;
  readonly recordId: string;
}

interface Collector {
  readonly points: RawPoint[];
  name: string;
}

/** Every numeric Quantity value of every Observation, by LOINC code (panel components under
 *  their own codes). */
function collect(records: readonly DecryptedRecord[]): Map<string, Collector> {
  const byCode = new Map<string, Collector>();
  // The name is the first record's: looked up once per code, not once per value (5,000
  // values of one code are 5,000 lookups otherwise).
  const add = (code: string, concept: unknown, element: Json, t: number, recordId: string) => {
    const q = obj(element.valueQuantity);
    if (typeof q?.value !== "number" || !Number.isFinite(q.value)) return;
    const unit = typeof q.code === "string" ? q.code : typeof q.unit === "string" ? q.unit : "";
    let entry = byCode.get(code);
    if (!entry) byCode.set(code, entry = { points: [], name: loincName(concept, code) });
    entry.points.push({ t, value: q.value, unit, element, recordId });
  };
  for (const record of records) {
    const resource = record.resource;
    if (!resource || resource.resourceType !== "Observation") continue;
    if (resource.status === "entered-in-error" || resource.status === "cancelled") continue;
    const date = timelineDate(resource);
    if (!date) continue;
    for (const code of loincCodes(resource.code)) {
      add(code, resource.code, resource as Json, date.time, record.recordId);
    }
    const components = Array.isArray(resource.component) ? resource.component : [];
    for (const component of components.map(obj)) {
      if (!component) continue;
      for (const code of loincCodes(component.code)) {
        add(code, component.code, component, date.time, record.recordId);
      }
    }
  }
  return byCode;
}

/** The most frequent value by key (ties: the first seen). */
function mostCommon<T>(items: readonly T[], key: (item: T) => string): T | null {
  const counts = new Map<string, { item: T; n: number }>();
  let best: { item: T; n: number } | null = null;
  for (const item of items) {
    const k = key(item);
    const entry = counts.get(k) ?? { item, n: 0 };
    entry.n += 1;
    counts.set(k, entry);
    if (!best || entry.n > best.n) best = entry;
  }
  return best ? best.item : null;
}

function buildLine(
  code: string, name: string, raw: readonly RawPoint[], toUnit: (value: number, unit: string) => number | null,
  defaultRange: { low: number | null; high: number | null } | undefined, skipped: Record<string, number>,
): ChartLine {
  const seen = new Set<string>();
  const points: ChartPoint[] = [];
  const recordRanges: { low: number | null; high: number | null }[] = [];
  for (const p of [...raw].sort((a, b) => a.t - b.t)) {
    const v = toUnit(p.value, p.unit);
    if (v === null) {
      skipped[p.unit || "(no unit)"] = (skipped[p.unit || "(no unit)"] ?? 0) + 1;
      continue;
    }
    const key = `${p.t}|${v}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const own = referenceRange(p.element);
    const ownRange = own && (own.low !== null || own.high !== null) ? {
      low: own.low === null ? null : toUnit(own.low, own.unit ?? p.unit),
      high: own.high === null ? null : toUnit(own.high, own.unit ?? p.unit),
    } : null;
    if (ownRange) recordRanges.push(ownRange);
    const stated = interpretationFlag(p.element);
    const flag = stated !== null ? (stated === "normal" ? null : stated)
      : compareToRange(v, ownRange ?? defaultRange ?? null);
    points.push({ t: p.t, v, flag, recordId: p.recordId });
  }
  const fromRecords = mostCommon(recordRanges, (r) => `${r.low}|${r.high}`);
  const range: RangeBand | null = fromRecords ? { ...fromRecords, source: "record" }
    : defaultRange ? { ...defaultRange, source: "default" } : null;
  return { code, name, points, range };
}

/** The charts of a patient's records: the known measurements first (in the table's order),
 *  then every other LOINC code with numeric values, by title. Charts without points are left
 *  out. */
export function chartSeries(records: readonly DecryptedRecord[]): ChartSeries[] {
  const byCode = collect(records);
  const charts: ChartSeries[] = [];
  const used = new Set<string>();
  for (const definition of CHARTS) {
    for (const panel of definition.panels ?? []) used.add(panel);
    const skipped: Record<string, number> = {};
    const toUnit = (value: number, unit: string) => convert(value, unit, definition.family);
    const lines = definition.lines.map((line) => {
      const codes = [line.code, ...(line.alsoCodes ?? [])];
      codes.forEach((c) => used.add(c));
      const raw = codes.flatMap((c) => byCode.get(c)?.points ?? []);
      return buildLine(line.code, line.name, raw, toUnit, line.range, skipped);
    });
    // A line without points (serum glucose when only blood glucose was measured) is left out.
    const measured = lines.filter((line) => line.points.length > 0);
    if (measured.length > 0) {
      charts.push({ key: definition.key, title: definition.title, unit: definition.unit, lines: measured, skipped, known: true });
    }
  }
  const others: ChartSeries[] = [];
  for (const [code, entry] of byCode) {
    if (used.has(code)) continue;
    // No conversion table for other codes: the most frequent unit wins, others are reported.
    const unit = mostCommon(entry.points, (p) => p.unit)?.unit ?? "";
    const skipped: Record<string, number> = {};
    const line = buildLine(code, entry.name, entry.points, (v, u) => (u === unit ? v : null), undefined, skipped);
    if (line.points.length > 0) {
      others.push({ key: `loinc-${code}`, title: entry.name, unit, lines: [line], skipped, known: false });
    }
  }
  others.sort((a, b) => a.title.localeCompare(b.title));
  return [...charts, ...others];
}

/** The periods a chart can show, in milliseconds (null: everything). */
export const PERIODS = {
  all: null,
  "1y": 365 * 86_400_000,
  "6m": 182 * 86_400_000,
  "3m": 91 * 86_400_000,
  "1m": 30 * 86_400_000,
} as const;

export type PeriodKey = keyof typeof PERIODS;

/** The latest point of all charts (periods count back from it, so a history imported years
 *  after its last visit still shows its last year), or null without points. */
export function latestPoint(charts: readonly ChartSeries[]): number | null {
  let latest: number | null = null;
  for (const chart of charts) {
    for (const line of chart.lines) {
      const last = line.points[line.points.length - 1];
      if (last && (latest === null || last.t > latest)) latest = last.t;
    }
  }
  return latest;
}

/** uPlot's aligned columns for a chart: x (Unix seconds), then per line its values and its
 *  out-of-range values (null elsewhere), restricted to [from, ∞) when `from` is given. */
export function alignedData(chart: ChartSeries, from: number | null = null): (number | null)[][] {
  const times = new Set<number>();
  for (const line of chart.lines) for (const p of line.points) if (from === null || p.t >= from) times.add(p.t);
  const xs = [...times].sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const columns: (number | null)[][] = [xs.map((t) => t / 1000)];
  for (const line of chart.lines) {
    const values: (number | null)[] = new Array(xs.length).fill(null);
    const flagged: (number | null)[] = new Array(xs.length).fill(null);
    for (const p of line.points) {
      const i = index.get(p.t);
      if (i === undefined) continue;
      values[i] = p.v;
      if (p.flag) flagged[i] = p.v;
    }
    columns.push(values, flagged);
  }
  return columns;
}
