// A uPlot time chart of one ChartSeries: one line per code, each line's normal range shaded,
// out-of-range points ringed, drag across to zoom (double-click to zoom out), a readout of the
// values under the pointer. uPlot draws on a canvas; the page gives the same data as a table.

import { useEffect, useRef } from "preact/hooks";
import type uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { ChartSeries } from "../../fhir/series.ts";
import { alignedData } from "../../fhir/series.ts";
import { displayUnit } from "../../fhir/units.ts";

/** Line colours (AA contrast on white) and their range bands. */
export const LINE_COLOURS = ["#0f5e6e", "#8a3a0c", "#5b2a86", "#1d6b3a"] as const;
export const BAND_COLOURS = ["rgba(29, 107, 58, 0.12)", "rgba(180, 89, 27, 0.12)", "rgba(91, 42, 134, 0.10)", "rgba(29, 107, 58, 0.10)"] as const;
const OUT = "#a4161a";
const AXIS = "#44545e";
const GRID = "rgba(23, 35, 43, 0.08)";

const READOUT_DATE = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });

function format(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(Math.abs(value) < 10 ? 2 : 1).replace(/\.?0+$/, "");
}

/** uPlot, loaded when a chart is first drawn: the first screen (and a record read by a
 * provider) does not wait for the chart library. */
let uPlotModule: Promise<typeof uPlot> | null = null;
export function loadUPlot(): Promise<typeof uPlot> {
  uPlotModule ??= import("uplot").then((m) => m.default);
  return uPlotModule;
}

function bandsPlugin(chart: ChartSeries): uPlot.Plugin {
  return {
    hooks: {
      drawClear: (u: uPlot) => {
        const { ctx, bbox } = u;
        const drawn = new Set<string>();
        chart.lines.forEach((line, i) => {
          const range = line.range;
          if (!range || (range.low === null && range.high === null)) return;
          // Lines sharing one range share one band.
          const key = `${range.low}|${range.high}`;
          if (drawn.has(key)) return;
          drawn.add(key);
          const top = range.high === null ? bbox.top : Math.max(bbox.top, u.valToPos(range.high, "y", true));
          const bottom = range.low === null ? bbox.top + bbox.height
            : Math.min(bbox.top + bbox.height, u.valToPos(range.low, "y", true));
          if (bottom <= top) return;
          ctx.save();
          ctx.fillStyle = BAND_COLOURS[i % BAND_COLOURS.length]!;
          ctx.fillRect(bbox.left, top, bbox.width, bottom - top);
          ctx.restore();
        });
      },
    },
  };
}

/** `from`/`to` (ms): the period shown, or null for all the data. */
export function TimeChart(props: { chart: ChartSeries; from: number | null; to: number | null; label: string; height?: number }) {
  const { chart, from } = props;
  // The x range function reads the current period (uPlot keeps the options it was built with).
  const period = useRef({ from: props.from, to: props.to });
  period.current = { from: props.from, to: props.to };
  const holder = useRef<HTMLDivElement>(null);
  const readout = useRef<HTMLParagraphElement>(null);
  const plot = useRef<uPlot | null>(null);
  const unit = displayUnit(chart.unit);

  useEffect(() => {
    const element = holder.current;
    if (!element) return;
    const series: uPlot.Series[] = [{}];
    chart.lines.forEach((line, i) => {
      const colour = LINE_COLOURS[i % LINE_COLOURS.length]!;
      series.push({
        label: line.name, stroke: colour, width: 2, spanGaps: true,
        // A marker per value only while they stand apart (uPlot's rule: at most one per
        // `space` pixels of the period shown); thousands of markers drawn on top of each
        // other cost more than the rest of the chart and show nothing the line does not.
        points: { size: 5, space: 6, fill: colour, stroke: colour },
      });
      series.push({
        label: `${line.name} outside the normal range`, stroke: OUT, width: 0, paths: () => null,
        points: { show: true, size: 12, width: 3, stroke: OUT, fill: "#ffffff" },
      });
    });
    // Keep each normal range in view, so a reader sees how far a value is from it.
    const limits = chart.lines.flatMap((l) => [l.range?.low, l.range?.high]).filter((v): v is number => typeof v === "number");
    const options: uPlot.Options = {
      width: Math.max(element.clientWidth, 240),
      height: props.height ?? 220,
      series,
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: true }, points: { size: 8 } },
      scales: {
        x: {
          time: true,
          range: (_u, min, max) => {
            const { from: start, to: end } = period.current;
            if (start !== null && end !== null) return [start / 1000, end / 1000];
            // One day of data: a month around it rather than uPlot's years.
            return min === max ? [min - 15 * 86_400, max + 15 * 86_400] : [min, max];
          },
        },
        y: {
          range: (_u, min, max) => {
            const lo = Math.min(min, ...limits), hi = Math.max(max, ...limits);
            const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
            return [lo - pad, hi + pad];
          },
        },
      },
      axes: [
        { stroke: AXIS, grid: { stroke: GRID }, ticks: { stroke: GRID }, size: 46 },
        { stroke: AXIS, grid: { stroke: GRID }, ticks: { stroke: GRID }, size: 48, label: unit || undefined, labelSize: unit ? 20 : 0 },
      ],
      plugins: [bandsPlugin(chart)],
      hooks: {
        setCursor: [(u: uPlot) => {
          const out = readout.current;
          if (!out) return;
          const index = u.cursor.idx;
          if (index === null || index === undefined) { out.textContent = ""; return; }
          const x = u.data[0][index];
          const parts = chart.lines.map((line, i) => {
            const v = u.data[1 + i * 2]?.[index];
            const flagged = u.data[2 + i * 2]?.[index];
            return v === null || v === undefined ? null
              : `${line.name} ${format(v)}${unit ? " " + unit : ""}${flagged !== null && flagged !== undefined ? " (outside normal range)" : ""}`;
          }).filter(Boolean);
          out.textContent = x === undefined || x === null ? "" : `${READOUT_DATE.format(x * 1000)}: ${parts.join(", ")}`;
        }],
      },
    };
    let ended = false;
    let made: uPlot | null = null;
    let resize: ResizeObserver | null = null;
    void loadUPlot().then((UPlot) => {
      if (ended) return;
      // The period of now (it may have changed while uPlot loaded).
      const u = new UPlot(options, alignedData(chart, period.current.from) as uPlot.AlignedData, element);
      made = u;
      plot.current = u;
      resize = new ResizeObserver(() => {
        const width = Math.max(element.clientWidth, 240);
        if (width !== u.width) u.setSize({ width, height: u.height });
      });
      resize.observe(element);
    });
    return () => {
      ended = true;
      resize?.disconnect();
      (made as uPlot | null)?.destroy();
      plot.current = null;
    };
  }, [chart]);

  // A new period: new data (uPlot rescales to it).
  useEffect(() => {
    plot.current?.setData(alignedData(chart, from) as uPlot.AlignedData);
  }, [from, props.to]);

  return (
    <>
      <div ref={holder} class="fhir-plot" role="img" aria-label={props.label} />
      <p ref={readout} class="fhir-readout" aria-hidden="true" />
    </>
  );
}
