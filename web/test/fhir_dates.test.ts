// The page's timeline dates against the Python importer's: the same table, and the same date
// and instant for every record of a real Synthea patient.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

import { parseFhirDate, TIMELINE_DATE, timelineDate } from "../src/fhir/dates.ts";
import { fixtures, PYTHON } from "./fhir_fixtures.ts";

test("TIMELINE_DATE is the Python importer's table, in the same order", () => {
  const run = spawnSync(PYTHON, ["-c",
    "import json; from kizuna.storage.fhir.importer import TIMELINE_DATE as T; print(json.dumps({k: list(v) for k, v in T.items()}))",
  ], { encoding: "utf-8" });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(TIMELINE_DATE, JSON.parse(run.stdout));
});

test("every Synthea record gets Python's timeline date and timestamp", () => {
  const records = fixtures().synthea;
  assert.ok(records.length > 2000);
  let dated = 0;
  for (const { resource, date, ts } of records) {
    const ours = timelineDate(resource);
    assert.equal(ours?.text ?? null, date, `${resource.resourceType}/${String(resource.id)}`);
    if (ts === null) {
      assert.equal(ours, null);
    } else {
      // Python keeps microseconds, the page milliseconds.
      assert.ok(Math.abs(ours!.time - ts * 1000) < 1, `${date}: ${ours!.time} vs ${ts * 1000}`);
      dated += 1;
    }
  }
  assert.ok(dated > 1500);
});

test("partial dates, offsets and impossible dates", () => {
  assert.deepEqual(parseFhirDate("2007"), { text: "2007", time: Date.UTC(2007, 0, 1), precision: "year" });
  assert.equal(parseFhirDate("2007-03")!.precision, "month");
  assert.equal(parseFhirDate("2007-03-04")!.time, Date.UTC(2007, 2, 4));
  assert.equal(parseFhirDate("2024-01-01T09:00:00+09:00")!.time, Date.UTC(2024, 0, 1, 0, 0, 0));
  assert.equal(parseFhirDate("2024-01-01T00:30:00.5-01:30")!.time, Date.UTC(2024, 0, 1, 2, 0, 0, 500));
  assert.equal(parseFhirDate("0050-06-01")!.time, new Date("0050-06-01T00:00:00Z").getTime());
  assert.equal(parseFhirDate("2023-02-30"), null);
  assert.equal(parseFhirDate("2023-13"), null);
  assert.equal(parseFhirDate("2023-01-01T10:00"), null);
  assert.equal(parseFhirDate(20230101), null);
});
