// Chart series from a real Synthea patient: one chart per code, blood pressure from panels and
// single Observations without duplicates, reference ranges from the records or the documented
// defaults, out-of-range points, and one unit per chart (kg and [lb_av] converted, not mixed).
import assert from "node:assert/strict";
import { test } from "node:test";

import type { DecryptedRecord } from "../src/fhir/records.ts";
import { alignedData, chartSeries, latestPoint } from "../src/fhir/series.ts";
import { copy, fixtures, syntheaRecords } from "./fhir_fixtures.ts";

type Obs = Record<string, any>;

function codeOf(r: Obs): string | undefined {
  return r.code?.coding?.[0]?.code;
}

function observations(code: string): Obs[] {
  return fixtures().synthea.map((f) => f.resource as Obs)
    .filter((r) => r.resourceType === "Observation" && codeOf(r) === code);
}

function records(resources: Obs[]): DecryptedRecord[] {
  return resources.map((resource, i) => ({
    recordId: `0x${i.toString(16).padStart(64, "0")}`, label: "Observation:vital-signs",
    contentType: "application/fhir+json", createdAt: 0, resource: resource as DecryptedRecord["resource"] & object,
  }));
}

test("the Synthea patient's charts: the known measurements first, then every other numeric code", () => {
  const charts = chartSeries(syntheaRecords());
  const keys = charts.map((c) => c.key);
  for (const key of ["blood-pressure", "heart-rate", "weight", "bmi", "glucose", "hba1c", "cholesterol"]) {
    assert.ok(keys.includes(key), `${key} missing from ${keys.join(", ")}`);
  }
  assert.ok(keys.indexOf("blood-pressure") < keys.indexOf("heart-rate"));
  assert.ok(keys.includes("loinc-718-7"), "hemoglobin charted as another code");
  assert.ok(!keys.includes("loinc-85354-9"), "the panel itself is not a chart");
  const knownCount = charts.filter((c) => c.known).length;
  assert.ok(charts.slice(0, knownCount).every((c) => c.known));
  // Every numeric value of the patient is on exactly one chart.
  const weights = observations("29463-7");
  assert.equal(charts.find((c) => c.key === "weight")!.lines[0]!.points.length,
    new Set(weights.map((w) => `${w.effectiveDateTime}|${w.valueQuantity.value}`)).size);
});

test("blood pressure: systolic and diastolic on one chart, from panels and single Observations, once each", () => {
  const bp = chartSeries(syntheaRecords()).find((c) => c.key === "blood-pressure")!;
  assert.deepEqual(bp.lines.map((l) => l.name), ["Systolic", "Diastolic"]);
  assert.equal(bp.unit, "mm[Hg]");
  const times = new Set<string>();
  for (const r of [...observations("85354-9"), ...observations("8480-6")]) times.add(r.effectiveDateTime);
  const systolic = bp.lines[0]!;
  assert.equal(systolic.points.length, times.size);
  // Synthea's single systolic Observations carry 90–120 and an interpretation.
  assert.deepEqual(systolic.range, { low: 90, high: 120, source: "record" });
  const flaggedByRecord = observations("8480-6").filter((r) => r.interpretation?.[0]?.coding?.[0]?.code === "H");
  for (const r of flaggedByRecord) {
    const t = Date.parse(r.effectiveDateTime);
    assert.equal(systolic.points.find((p) => p.t === t)!.flag, "high");
  }
  const [xs, sys, sysOut, dia] = alignedData(bp);
  assert.equal(xs!.length, sys!.length);
  assert.equal(dia!.length, xs!.length);
  assert.ok(xs!.every((x, i) => i === 0 || x! > xs![i - 1]!));
  assert.equal(sysOut!.filter((v) => v !== null).length, systolic.points.filter((p) => p.flag).length);
});

test("ranges: the records' own, else the documented default; out-of-range points flagged", () => {
  const charts = chartSeries(syntheaRecords());
  assert.deepEqual(charts.find((c) => c.key === "heart-rate")!.lines[0]!.range, { low: 60, high: 100, source: "record" });
  // Synthea's glucose has neither a range nor an interpretation: the ADA default applies.
  // Synthea measures blood glucose only: the serum/plasma line is left out, not drawn empty.
  const glucoseChart = charts.find((c) => c.key === "glucose")!;
  assert.deepEqual(glucoseChart.lines.map((l) => l.code), ["2339-0"]);
  const glucose = glucoseChart.lines[0]!;
  assert.deepEqual(glucose.range, { low: 70, high: 99, source: "default" });
  for (const p of glucose.points) assert.equal(p.flag, p.v > 99 ? "high" : p.v < 70 ? "low" : null);
  // A heart rate without its range or interpretation is flagged against the default.
  const rate = copy(observations("8867-4")[0]!);
  delete rate.referenceRange;
  delete rate.interpretation;
  rate.valueQuantity.value = 128;
  const line = chartSeries(records([rate]))[0]!.lines[0]!;
  assert.deepEqual(line.range, { low: 60, high: 100, source: "default" });
  assert.equal(line.points[0]!.flag, "high");
});

test("units: pounds become kilograms, °F becomes °C, an unknown unit is reported, not plotted", () => {
  const weights = observations("29463-7").slice(0, 10).map(copy);
  const kilos = weights.map((w) => w.valueQuantity.value as number);
  for (const w of weights.slice(0, 5)) {
    w.valueQuantity = { value: w.valueQuantity.value / 0.45359237, unit: "lb", system: "http://unitsofmeasure.org", code: "[lb_av]" };
  }
  weights[9]!.valueQuantity = { value: 11, unit: "stone", code: "[stone_av]", system: "http://unitsofmeasure.org" };
  const chart = chartSeries(records(weights)).find((c) => c.key === "weight")!;
  assert.equal(chart.unit, "kg");
  assert.deepEqual(chart.skipped, { "[stone_av]": 1 });
  const byTime = new Map(chart.lines[0]!.points.map((p) => [p.t, p.v]));
  weights.slice(0, 9).forEach((w, i) => {
    assert.ok(Math.abs(byTime.get(Date.parse(w.effectiveDateTime))! - kilos[i]!) < 1e-9);
  });

  const temperature = copy(observations("8867-4")[0]!);
  temperature.code = { coding: [{ system: "http://loinc.org", code: "8310-5", display: "Body temperature" }] };
  delete temperature.referenceRange;
  delete temperature.interpretation;
  temperature.valueQuantity = { value: 101.3, unit: "°F", code: "[degF]", system: "http://unitsofmeasure.org" };
  const fever = chartSeries(records([temperature]))[0]!;
  assert.equal(fever.key, "temperature");
  assert.ok(Math.abs(fever.lines[0]!.points[0]!.v - 38.5) < 1e-9);
  assert.equal(fever.lines[0]!.points[0]!.flag, "high");
});

test("periods count back from the latest measurement", () => {
  const charts = chartSeries(syntheaRecords());
  const latest = latestPoint(charts)!;
  const newest = Math.max(...fixtures().synthea.filter((f) => f.resource.resourceType === "Observation"
    && (f.resource as Obs).valueQuantity).map((f) => f.ts! * 1000));
  assert.ok(Math.abs(latest - newest) < 1);
  const bp = charts.find((c) => c.key === "blood-pressure")!;
  const lastYear = alignedData(bp, latest - 365 * 86_400_000);
  assert.ok(lastYear[0]!.length < alignedData(bp)[0]!.length);
  assert.ok(lastYear[0]!.every((x) => x! * 1000 >= latest - 365 * 86_400_000));
});
