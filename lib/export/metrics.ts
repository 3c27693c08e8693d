/**
 * Metric families as the exporters hand them to a format (Prometheus text,
 * OpenMetrics): cumulative histograms with `le` bounds and counters, in base
 * units (seconds, bytes), each family with its HELP text.
 *
 * @module
 */

/** Label names to values, in a series' order. */
export type Labels = Record<string, string>;

/** One histogram series: cumulative counts at finite upper bounds, the count, maybe the sum. */
export interface HistogramSeries {
  labels: Labels;
  /** Cumulative: `count` is the number of values <= `le` (finite bounds, ascending). */
  buckets: { le: number; count: number }[];
  /** Every value counted (the `+Inf` bucket and `_count`). */
  count: number;
  /** The values' sum in the family's unit; absent when the tool keeps none. */
  sum?: number;
}

/** A histogram family (`name_bucket`, `name_sum`, `name_count`). */
export interface HistogramFamily {
  type: "histogram";
  /** Full name, ending in its unit (bpftk_runqlat_seconds). */
  name: string;
  help: string;
  /** The base unit the name ends with ("seconds", "bytes"), for OpenMetrics' UNIT line. */
  unit?: string;
  series: HistogramSeries[];
}

/** A counter family: `name` without `_total` (the samples add it). */
export interface CounterFamily {
  type: "counter";
  name: string;
  help: string;
  series: { labels: Labels; value: number }[];
}

/** What an exporter serves at each scrape. */
export type MetricFamily = HistogramFamily | CounterFamily;

/** A metric name or label name from any text: [a-zA-Z_][a-zA-Z0-9_]*. */
export function metricName(text: string): string {
  const s = text.replace(/[^a-zA-Z0-9_]/g, "_");
  return /^[a-zA-Z_]/.test(s) ? s : `_${s}`;
}
