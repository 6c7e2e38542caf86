// Reads per provider over time (uPlot): one stepped line per provider counting its reads so far,
// so a burst of reads is a steep step. The table beside it carries every read for screen
// readers; the chart's label summarises it.

import type uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { useEffect, useRef } from "preact/hooks";
import { loadUPlot } from "../../../ui/charts/TimeChart.tsx";
import { shortAddress } from "../../../ui/format.ts";
import { cumulativeReads, padding, type ReadPoint } from "./readsSeries.ts";

export type { ReadPoint };

const COLOURS = ["#0f5e6e", "#b4591b", "#6a3d9a", "#1d6b3a", "#a4161a", "#1b4f9c", "#7a5c00"];

export function ReadsChart(props: { reads: ReadPoint[]; names?: (provider: string) => string }) {
  const box = useRef<HTMLDivElement>(null);
  const { providers, xs, series } = cumulativeReads(props.reads);
  const name = props.names ?? shortAddress;
  const summary = providers.length
    ? `Reads over time: ${providers.map((p, k) => `${name(p)} ${series[k]!.at(-1)} read${series[k]!.at(-1) === 1 ? "" : "s"}`).join("; ")}.`
    : "No reads yet.";

  useEffect(() => {
    const el = box.current;
    if (!el || xs.length === 0) return;
    const width = () => Math.max(260, el.clientWidth);
    let ended = false;
    let made: { plot: uPlot; observer: ResizeObserver } | null = null;
    // uPlot loaded when a chart is first drawn (not part of the first screen).
    void loadUPlot().then((UPlot) => {
      if (ended) return;
      const plot = new UPlot({
        width: width(),
        height: 220,
        scales: { x: { time: true, range: (_u, min, max) => [min, max + padding(min, max)] }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [
          { stroke: "#44545e", grid: { stroke: "#e3e8ea" } },
          { stroke: "#44545e", grid: { stroke: "#e3e8ea" }, label: "Reads so far", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] },
        ],
        series: [
          {},
          ...providers.map((p, k) => ({
            label: name(p),
            stroke: COLOURS[k % COLOURS.length]!,
            width: 2,
            paths: UPlot.paths.stepped!({ align: 1 }),
            points: { show: true, size: 5 },
          })),
        ],
        legend: { live: false },
      }, [xs, ...series] as uPlot.AlignedData, el);
      const observer = new ResizeObserver(() => plot.setSize({ width: width(), height: 220 }));
      observer.observe(el);
      made = { plot, observer };
    });
    return () => {
      ended = true;
      const current = made as { plot: uPlot; observer: ResizeObserver } | null;
      current?.observer.disconnect();
      current?.plot.destroy();
    };
  }, [JSON.stringify(xs), JSON.stringify(series), providers.join()]);

  return (
    <figure class="care-chart-figure">
      <div ref={box} class="care-chart" role="img" aria-label={summary} data-testid="reads-chart" />
      <figcaption class="care-muted">Reads of your data by each provider, counted over time.</figcaption>
    </figure>
  );
}
