// Vital signs and lab results over time: one chart per measurement (LOINC code), blood pressure's
// systolic and diastolic together, normal ranges shaded, out-of-range values ringed; a period
// selector counting back from the latest measurement, drag-to-zoom, and every chart's values as
// a table for readers who do not see the canvas.

import { useMemo, useState } from "preact/hooks";
import type { DecryptedRecord } from "../../fhir/records.ts";
import { chartSeries, latestPoint, PERIODS, type ChartSeries, type PeriodKey } from "../../fhir/series.ts";
import { displayUnit } from "../../fhir/units.ts";
import { BAND_COLOURS, LINE_COLOURS, loadUPlot, TimeChart } from "../../ui/charts/TimeChart.tsx";
import "../../ui/fhir/fhir.css";
import { countOf } from "../../ui/format.ts";

const PERIOD_LABEL: Record<PeriodKey, [short: string, long: string]> = {
  all: ["All", "All"], "1y": ["1 yr", "1 year"], "6m": ["6 mo", "6 months"], "3m": ["3 mo", "3 months"], "1m": ["1 mo", "1 month"],
};
const DATE = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });

function value(v: number): string {
  return String(Math.round(v * 100) / 100);
}

function rangeText(chart: ChartSeries, i: number): string | null {
  const range = chart.lines[i]!.range;
  if (!range || (range.low === null && range.high === null)) return null;
  const unit = displayUnit(chart.unit);
  const span = range.low !== null && range.high !== null && range.low !== 0 ? `${value(range.low)}–${value(range.high)}`
    : range.high !== null ? `below ${value(range.high)}` : `above ${value(range.low!)}`;
  return `${span}${unit ? " " + unit : ""} (${range.source === "record" ? "from your records" : "typical adult range"})`;
}

function ChartCard(props: { chart: ChartSeries; from: number | null; to: number | null; level: 2 | 3 }) {
  const { chart, from } = props;
  const [tableOpen, setTableOpen] = useState(false);
  const unit = displayUnit(chart.unit);
  const points = chart.lines.map((l) => l.points.filter((p) => from === null || p.t >= from));
  const count = points.reduce((n, p) => n + p.length, 0);
  const flagged = points.reduce((n, p) => n + p.filter((x) => x.flag).length, 0);
  const latest = chart.lines.map((l, i) => ({ name: l.name, point: points[i]![points[i]!.length - 1] }))
    .filter((x) => x.point);
  const latestText = latest.length === 2 && chart.key === "blood-pressure" && latest[0]!.point!.t === latest[1]!.point!.t
    ? `${value(latest[0]!.point!.v)}/${value(latest[1]!.point!.v)}`
    : latest.map((x) => value(x.point!.v)).join(" · ");
  const when = latest.length ? DATE.format(Math.max(...latest.map((x) => x.point!.t))) : null;
  const headingId = `chart-${chart.key}`;
  const Heading = props.level === 2 ? "h2" : "h3";
  const skipped = Object.entries(chart.skipped);
  // One legend entry per distinct range (as TimeChart draws one band per distinct range).
  const rangeKeys = chart.lines.map((l) => l.range && (l.range.low !== null || l.range.high !== null)
    ? `${l.range.low}|${l.range.high}|${l.range.source}` : null);
  const bands = rangeKeys.flatMap((key, i) => key !== null && rangeKeys.indexOf(key) === i
    ? [{ i, shared: chart.lines.length === 1 || rangeKeys.every((k) => k === key) }] : []);
  const label = `${chart.title}: ${countOf(count, "measurement")}`
    + (when ? `, latest ${latestText} ${unit} on ${when}` : "") + (flagged ? `, ${flagged} outside the normal range` : "");
  return (
    <section class="fhir-chart" aria-labelledby={headingId} data-testid="chart" data-chart={chart.key}>
      <div class="fhir-chart-head">
        <Heading id={headingId}>{chart.title}</Heading>
        {when ? <p class="fhir-chart-latest">Latest <strong>{latestText}</strong> {unit} <span class="hint">({when})</span></p> : null}
      </div>
      <ul class="fhir-legend">
        {chart.lines.map((line, i) => (
          <li key={line.code}><span class="fhir-swatch" style={{ background: LINE_COLOURS[i % LINE_COLOURS.length] }} />{line.name}</li>
        ))}
        {bands.map(({ i, shared }) => (
          <li key={`band-${chart.lines[i]!.code}`}>
            <span class="fhir-swatch fhir-swatch-band" style={{ background: BAND_COLOURS[i % BAND_COLOURS.length]!.replace(/[\d.]+\)$/, "0.5)") }} />
            {shared ? "Normal: " : `${chart.lines[i]!.name} normal: `}{rangeText(chart, i)}
          </li>
        ))}
        {flagged || chart.lines.some((l) => l.range) ? (
          <li><span class="fhir-swatch fhir-swatch-out" />Outside the normal range{flagged ? ` (${flagged})` : ""}</li>
        ) : null}
      </ul>
      {count === 0 ? (
        <p class="hint">No measurements in this period.</p>
      ) : <TimeChart chart={chart} from={from} to={props.to} label={label} />}
      {skipped.length ? (
        <p class="hint">Not shown: {skipped.map(([u, n]) => `${countOf(n, "value")} in ${u}`).join(", ")} (a unit this chart cannot convert to {unit || chart.unit}).</p>
      ) : null}
      {/* The table is built when opened: thousands of rows would cost more than the chart. */}
      <details onToggle={(e) => setTableOpen((e.currentTarget as HTMLDetailsElement).open)}>
        <summary>Values as a table</summary>
        {tableOpen ? <ValuesTable chart={chart} points={points} /> : null}
      </details>
    </section>
  );
}

function ValuesTable(props: { chart: ChartSeries; points: ChartSeries["lines"][number]["points"][] }) {
  const { chart } = props;
  const unit = displayUnit(chart.unit);
  const rows = props.points.flatMap((points, i) => points.map((p) => ({ line: chart.lines[i]!.name, ...p })))
    .sort((a, b) => b.t - a.t);
  return (
    <div class="fhir-table-wrap" tabIndex={0} role="region" aria-label={`${chart.title} values`}>
      <table>
        <thead><tr><th scope="col">Date</th>{chart.lines.length > 1 ? <th scope="col">Measure</th> : null}<th scope="col">Value{unit ? ` (${unit})` : ""}</th></tr></thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              <td>{DATE.format(r.t)}</td>
              {chart.lines.length > 1 ? <td>{r.line}</td> : null}
              <td>{value(r.v)}{r.flag ? <span class="fhir-out"> {r.flag === "high" ? "↑ high" : r.flag === "low" ? "↓ low" : "! abnormal"}</span> : null}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** `title`: another page's section (a provider's view of a patient): an h2 of that title. */
export function Charts(props: { records: readonly DecryptedRecord[]; title?: string }) {
  // The chart library is fetched and compiled while the series are built, not after.
  void loadUPlot();
  const charts = useMemo(() => chartSeries(props.records), [props.records]);
  const latest = useMemo(() => latestPoint(charts), [charts]);
  const [period, setPeriod] = useState<PeriodKey>("all");
  const [othersOpen, setOthersOpen] = useState(false);
  const span = PERIODS[period];
  const from = span === null || latest === null ? null : latest - span;
  // A little room after the latest point, so its marker is not cut at the edge.
  const to = from === null || span === null ? null : latest! + span * 0.03;
  const known = charts.filter((c) => c.known);
  const others = charts.filter((c) => !c.known);

  return (
    <section aria-labelledby="charts-title" class="fhir-charts">
      {props.title ? <h2 id="charts-title">{props.title}</h2> : <h1 id="charts-title">Your measurements</h1>}
      {charts.length === 0 ? (
        <p class="fhir-empty">No measurements yet. Blood pressure, weight, lab results and other values you add appear here as charts.</p>
      ) : (
        <>
          <fieldset class="fhir-periods">
            <legend>Period</legend>
            <div class="fhir-periods-options">
              {(Object.keys(PERIODS) as PeriodKey[]).map((key) => (
                <label key={key}>
                  <input type="radio" name="chart-period" value={key} checked={period === key} onChange={() => setPeriod(key)} />
                  <span aria-hidden="true">{PERIOD_LABEL[key][0]}</span><span class="sr-only">{PERIOD_LABEL[key][1]}</span>
                </label>
              ))}
            </div>
          </fieldset>
          <p class="hint">
            {latest !== null && period !== "all" ? `Counting back from your latest measurement (${DATE.format(latest)}). ` : ""}
            Drag across a chart to zoom in; double-click it to zoom out.
          </p>
          {known.map((chart) => <ChartCard key={chart.key} chart={chart} from={from} to={to} level={2} />)}
          {others.length ? (
            <details class="fhir-others" onToggle={(e) => setOthersOpen((e.currentTarget as HTMLDetailsElement).open)}>
              <summary>Other measurements ({others.length})</summary>
              {othersOpen ? others.map((chart) => <ChartCard key={chart.key} chart={chart} from={from} to={to} level={3} />) : null}
            </details>
          ) : null}
        </>
      )}
    </section>
  );
}
