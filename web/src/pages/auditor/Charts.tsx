// The auditor's charts (issue 14): reads per provider per day, grants and revocations per day,
// and anchoring lag, from the log (TimeChart, uPlot), each with a one-line summary for readers
// who do not see the canvas.

import { useMemo } from "preact/hooks";
import type { AuditorClient } from "../../auditor/client.ts";
import { anchoringLag, grantsAndRevocations, readsPerProvider } from "../../auditor/log.ts";
import type { ChartSeries } from "../../fhir/series.ts";
import { TimeChart } from "../../ui/charts/TimeChart.tsx";
import { shortAddress, countOf } from "../../ui/format.ts";
import { Failure, RefreshHead, Section, useLoad } from "../patient/care/common.tsx";

function summary(chart: ChartSeries, unit: string): string {
  if (!chart.lines.some((l) => l.points.length)) return "No data yet.";
  return chart.lines.map((l) => {
    const values = l.points.map((p) => p.v);
    const sum = values.reduce((a, b) => a + b, 0);
    return unit === "s"
      ? `${l.name}: ${values.length} batches, median ${values.sort((a, b) => a - b)[Math.floor(values.length / 2)]} s, longest ${Math.max(...values)} s`
      : `${l.name}: ${sum} over ${countOf(values.length, "day")}`;
  }).join("; ") + ".";
}

/** The period shown: the data's days and a day either side (uPlot's own range for a single
 * point spans years). Milliseconds. */
function extent(chart: ChartSeries): { from: number; to: number } | null {
  const times = chart.lines.flatMap((l) => l.points.map((p) => p.t));
  if (!times.length) return null;
  const pad = Math.max(86_400_000, (Math.max(...times) - Math.min(...times)) * 0.05);
  return { from: Math.min(...times) - pad, to: Math.max(...times) + pad };
}

function Chart(props: { id: string; chart: ChartSeries; unit?: string }) {
  const text = summary(props.chart, props.unit ?? "");
  const period = extent(props.chart);
  return (
    <Section id={props.id} title={props.chart.title}>
      <p class="care-muted" data-testid={`${props.id}-summary`}>{text}</p>
      {period
        ? <figure class="care-chart-figure"><TimeChart chart={props.chart} from={period.from} to={period.to} label={`${props.chart.title}. ${text}`} /></figure>
        : null}
    </Section>
  );
}

export function AuditCharts(props: { client: AuditorClient }) {
  const loaded = useLoad(() => props.client.log(), props.client);
  const entries = loaded.data;
  // One series object per load: TimeChart redraws when its chart object changes.
  const charts = useMemo(() => entries && {
    reads: readsPerProvider(entries, shortAddress), consent: grantsAndRevocations(entries), lag: anchoringLag(entries),
  }, [entries]);
  return (
    <section aria-labelledby="audit-charts-title" data-testid="audit-charts-page">
      <RefreshHead id="audit-charts-title" title="Audit charts" loaded={loaded} />
      <p class="care-intro">From the service's audit log (the chain's events and the service's read receipts).</p>
      <Failure error={loaded.error} retry={loaded.reload} />
      {!charts ? (loaded.loading ? <p class="care-loading" role="status">Loading the log…</p> : null) : (
        <>
          <Chart id="chart-reads" chart={charts.reads} />
          <Chart id="chart-consent" chart={charts.consent} />
          <Chart id="chart-lag" chart={charts.lag} unit="s" />
        </>
      )}
    </section>
  );
}
