// The data of the reads chart (ReadsChart.tsx), apart from uPlot so Node tests run it.

/** Room around the reads on the time axis: 5 % of their span, at least half an hour. */
export function padding(first: number, last: number): number {
  return Math.max(1800, Math.round((last - first) * 0.05));
}

export type ReadPoint = { provider: string; at: number };

/** The chart's data: the times (seconds) and, per provider, its running count of reads. */
export function cumulativeReads(reads: ReadPoint[]): { providers: string[]; xs: number[]; series: number[][] } {
  const sorted = [...reads].sort((a, b) => a.at - b.at);
  const providers = [...new Set(sorted.map((r) => r.provider))].sort();
  const xs = [...new Set(sorted.map((r) => r.at))];
  // Start at zero a little before the first read, so the first step shows.
  if (xs.length) xs.unshift(xs[0]! - padding(xs[0]!, xs.at(-1)!));
  const counts = new Map(providers.map((p) => [p, 0]));
  const series = providers.map(() => [] as number[]);
  let i = 0;
  for (const x of xs) {
    while (i < sorted.length && sorted[i]!.at === x) {
      const p = sorted[i]!.provider;
      counts.set(p, (counts.get(p) ?? 0) + 1);
      i += 1;
    }
    providers.forEach((p, k) => series[k]!.push(counts.get(p) ?? 0));
  }
  return { providers, xs, series };
}
