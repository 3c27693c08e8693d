/**
 * What an exporting interval tool serves: each scrape drains the tool's maps
 * (its own `read`), the tool turns that report into an {@link ExportedReport},
 * and the collector adds it into running totals (histograms) or takes the
 * kernel's cumulative counters as they are, then hands back the families.
 *
 * Names: `bpftk_<tool>_<unit>` for a histogram (bpftk_runqlat_seconds,
 * bpftk_bitesize_bytes), `bpftk_<tool>_<quantity>_total` for counters
 * (bpftk_vfsstat_calls_total).
 *
 * @module
 */
import { type DrainedHistogram, Log2Totals } from "./log2_totals.ts";
import { type CounterFamily, type MetricFamily, metricName } from "./metrics.ts";

/** One drained report, as a tool exports it. */
export interface ExportedReport {
  /** Log2 histograms read (and cleared) now, slots in `unit`; sums in base units. */
  histograms?: { unit: string; histograms: DrainedHistogram[] };
  /** Counters the kernel keeps cumulative (never cleared): their values now. */
  counters?: {
    /** What is counted ("calls"): the family is bpftk_<tool>_<quantity>_total. */
    quantity: string;
    help: string;
    /** The label telling the counters apart ("op"). */
    label: string;
    totals: Record<string, number>;
  };
}

/** The metric families of one tool, kept across scrapes. */
export class ToolCollector {
  readonly #tool: string;
  readonly #histograms: Log2Totals;
  #histUnit?: string;
  #counters?: CounterFamily;

  constructor(tool: string, summary: string, maxSeries?: number) {
    this.#tool = metricName(tool);
    this.#histograms = new Log2Totals(
      (unit) => `bpftk_${this.#tool}_${unit.name}`,
      summary,
      maxSeries,
    );
  }

  /** Adds a report read now. */
  add(report: ExportedReport): void {
    if (report.histograms) {
      this.#histUnit ??= report.histograms.unit;
      this.#histograms.add(report.histograms.unit, report.histograms.histograms);
    }
    const c = report.counters;
    if (c) {
      this.#counters = {
        type: "counter",
        name: `bpftk_${this.#tool}_${metricName(c.quantity)}`,
        help: c.help,
        series: Object.entries(c.totals).map(([k, value]) => ({
          labels: { [metricName(c.label)]: k },
          value,
        })),
      };
    }
  }

  /** The families to serve. */
  families(): MetricFamily[] {
    return [
      ...(this.#histUnit === undefined ? [] : [this.#histograms.family(this.#histUnit)]),
      ...(this.#counters ? [this.#counters] : []),
    ];
  }
}
