// The "who read what" chart's data: per provider, its reads counted over time (a stepped line
// from zero), the same counts the page's table lists.

import assert from "node:assert/strict";
import { test } from "node:test";
import { cumulativeReads, padding } from "../src/pages/patient/care/readsSeries.ts";

test("each provider's reads are counted up over time, from zero before the first", () => {
  const t = 1_800_000_000;
  const { providers, xs, series } = cumulativeReads([
    { provider: "0xB", at: t + 100 },
    { provider: "0xA", at: t },
    { provider: "0xA", at: t + 100 },
    { provider: "0xA", at: t + 7200 },
  ]);
  assert.deepEqual(providers, ["0xA", "0xB"]);
  assert.deepEqual(xs, [t - padding(t, t + 7200), t, t + 100, t + 7200]);
  assert.deepEqual(series, [[0, 1, 2, 3], [0, 0, 1, 1]]);
});

test("no reads, no points; the axis keeps half an hour around a burst", () => {
  assert.deepEqual(cumulativeReads([]), { providers: [], xs: [], series: [] });
  assert.equal(padding(0, 60), 1800);
  assert.equal(padding(0, 100 * 86_400), 5 * 86_400);
});
