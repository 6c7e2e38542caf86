// Summaries that need other records: a DiagnosticReport lists its results (the Observations it
// references, each with its value and flag) instead of "3 results". References resolve the way
// the importer keeps them (docs/fhir.md: each resource is stored as it was, `urn:uuid:`
// references unchanged): by `urn:uuid:<id>` and by `Type/id`.

import type { FhirResource } from "./records.ts";
import type { Fact, Summary } from "./summarize.ts";

type Json = Record<string, unknown>;

function references(resource: FhirResource, element: string): string[] {
  const list = resource[element];
  if (!Array.isArray(list)) return [];
  return list.map((item) => (item as Json | null)?.reference).filter((r): r is string => typeof r === "string");
}

/** The keys a reference to this resource may use. */
function keys(resource: FhirResource): string[] {
  const id = resource.id;
  if (typeof id !== "string") return [];
  return [`urn:uuid:${id}`, `${resource.resourceType}/${id}`];
}

/** Each summary with what it refers to filled in (a new object where something changed). */
export function linkSummaries(items: readonly { resource: FhirResource | null; summary: Summary }[]): Summary[] {
  const byKey = new Map<string, Summary>();
  for (const { resource, summary } of items) {
    if (resource) for (const key of keys(resource)) byKey.set(key, summary);
  }
  return items.map(({ resource, summary }) => {
    if (!resource || resource.resourceType !== "DiagnosticReport") return summary;
    const refs = references(resource, "result");
    const found = refs.map((ref) => byKey.get(ref)).filter((s): s is Summary => s !== undefined);
    if (found.length === 0) return summary;
    const lines: Fact[] = found.map((s) => ({
      label: s.title,
      value: (s.value ?? "—") + (s.flag === "high" ? " (high)" : s.flag === "low" ? " (low)" : s.flag ? " (abnormal)" : ""),
    }));
    const missing = refs.length - found.length;
    const facts = summary.facts.filter((f) => f.label !== "Results");
    if (missing > 0) facts.push({ label: "Results", value: `${missing} more not in your records` });
    const flag = summary.flag ?? found.find((s) => s.flag === "high" || s.flag === "low")?.flag
      ?? found.find((s) => s.flag)?.flag ?? null;
    return { ...summary, flag, facts: [...lines, ...facts] };
  });
}
