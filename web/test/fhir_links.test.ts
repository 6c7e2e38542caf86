// A DiagnosticReport lists its results' values, resolved among the patient's other records by
// the urn:uuid references the importer keeps (a real Synthea patient).
import assert from "node:assert/strict";
import { test } from "node:test";

import { linkSummaries } from "../src/fhir/links.ts";
import type { FhirResource } from "../src/fhir/records.ts";
import { summarize } from "../src/fhir/summarize.ts";
import { fixtures } from "./fhir_fixtures.ts";

type Json = Record<string, any>;

test("a lab report lists each result with its value and flag; a missing result is said", () => {
  const resources = fixtures().synthea.map((f) => f.resource);
  const byId = new Map(resources.map((r) => [r.id, r as Json]));
  const reportIndex = resources.findIndex((r) => r.resourceType === "DiagnosticReport"
    && (r as Json).result?.some((x: Json) => byId.get(x.reference.slice("urn:uuid:".length))?.code?.coding?.[0]?.code === "2093-3"));
  assert.ok(reportIndex >= 0, "a lipid panel in the Synthea patient");
  const report = resources[reportIndex] as Json;
  const results = report.result.map((x: Json) => byId.get(x.reference.slice("urn:uuid:".length))!);

  const items = resources.map((resource) => ({ resource, summary: summarize(resource) }));
  assert.match(items[reportIndex]!.summary.facts.find((f) => f.label === "Results")!.value, /^\d+ results$/);
  const linked = linkSummaries(items)[reportIndex]!;
  for (const obs of results) {
    const line = linked.facts.find((f) => f.label === obs.code.coding[0].display);
    assert.ok(line, `${obs.code.coding[0].display} listed`);
    assert.ok(line.value.startsWith(`${obs.valueQuantity.value} mg/dL`), line.value);
  }
  assert.ok(!linked.facts.some((f) => f.label === "Results"));

  // One result not among the records.
  const gone = results[0].id;
  const partial = linkSummaries(items.filter((i) => i.resource.id !== gone));
  const again = partial.find((s, i) => s.resourceType === "DiagnosticReport" && items.filter((x) => x.resource.id !== gone)[i]!.resource.id === report.id)!;
  assert.deepEqual(again.facts.find((f) => f.label === "Results"), { label: "Results", value: "1 more not in your records" });
});

test("a report takes the flag of an out-of-range result", () => {
  const resources = fixtures().synthea.map((f) => f.resource);
  const items = resources.map((resource) => ({ resource, summary: summarize(resource) }));
  const linked = linkSummaries(items);
  const flagged = linked.filter((s, i) => s.resourceType === "DiagnosticReport" && s.flag !== null && items[i]!.summary.flag === null);
  assert.ok(flagged.length > 0);
  for (const s of flagged) assert.ok(s.facts.some((f) => / \((high|low|abnormal)\)$/.test(f.value)), s.title);
  // Without the other records nothing changes.
  const alone = resources.find((r) => r.resourceType === "DiagnosticReport") as FhirResource;
  const single = { resource: alone, summary: summarize(alone) };
  assert.equal(linkSummaries([single])[0], single.summary);
});
