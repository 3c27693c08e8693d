/**
 * Running totals of log2 histograms for export. The interval tools drain
 * their maps at every read; an exporter reads at every scrape and adds what
 * it read here, so the counts it serves only go up (Prometheus' rate() and
 * increase() need that).
 *
 * A histogram read with slots in the tool's unit (usecs, msecs, Kbytes)
 * becomes a Prometheus histogram in base units: slot i holds whole values in
 * [2^i, 2^(i+1)-1] (slot 0: [0, 1]), that is, real values below 2^(i+1)
 * units, so its cumulative bucket is `le` = 2^(i+1) units converted. The last
 * slot is where the BPF side clamps larger values: it has no finite bound and
 * is counted only in `+Inf`.
 *
 * Label cardinality is bounded: the first `maxSeries` label sets seen keep
 * their own series for the exporter's life; counts of any later label set go
 * to one series whose every label is "other". Admission is sticky, so every
 * series (and "other") only goes up.
 *
 * @module
 */
import type { HistogramFamily, HistogramSeries, Labels } from "./metrics.ts";
import { metricName } from "./metrics.ts";

/** A tool's unit, as the base unit Prometheus names and the factor to it. */
export interface BaseUnit {
  /** "seconds", "bytes", or the tool's own unit when it has no base unit ("backlog"). */
  name: string;
  /** One tool unit is `mul / div` base units (kept apart so that bounds print exactly). */
  mul: number;
  div: number;
}

/** `value` tool units in base units. */
export function toBase(unit: BaseUnit, value: number): number {
  return value * unit.mul / unit.div;
}

/** usecs/msecs/nsecs -> seconds, Kbytes/bytes -> bytes; other units stay as they are. */
export function baseUnit(unit: string): BaseUnit {
  switch (unit) {
    case "nsecs":
      return { name: "seconds", mul: 1, div: 1e9 };
    case "usecs":
      return { name: "seconds", mul: 1, div: 1e6 };
    case "msecs":
      return { name: "seconds", mul: 1, div: 1e3 };
    case "secs":
      return { name: "seconds", mul: 1, div: 1 };
    case "Kbytes":
      return { name: "bytes", mul: 1024, div: 1 };
    case "bytes":
      return { name: "bytes", mul: 1, div: 1 };
    default:
      return { name: metricName(unit.toLowerCase()), mul: 1, div: 1 };
  }
}

/** One drained histogram, as a tool reads it. */
export interface DrainedHistogram {
  /** What tells this histogram apart (pid, disk...): Prometheus labels. */
  labels?: Record<string, string | number>;
  /** A heading alone still tells histograms apart (exported as label `histogram`). */
  heading?: string;
  /** Counts by log2 slot, in the report's unit. */
  slots: number[];
  /** Sum of the values counted, already in base units; absent when the tool keeps none. */
  sum?: number;
}

/** The series cap of {@link Log2Totals} by default. */
export const DEFAULT_MAX_SERIES = 100;

interface Total {
  labels: Labels;
  slots: number[];
  sum: number;
}

/** Cumulative log2 histograms of one tool, by label set, capped. */
export class Log2Totals {
  readonly #series = new Map<string, Total>();
  #other?: Total;
  /** False once any histogram came without a sum: then no `_sum` is served. */
  #sums = true;
  #unit?: BaseUnit;
  #slotCount = 0;

  constructor(
    readonly name: (unit: BaseUnit) => string,
    readonly help: string,
    readonly maxSeries = DEFAULT_MAX_SERIES,
  ) {}

  /** Adds one drained read (histograms in `unit`). */
  add(unit: string, histograms: DrainedHistogram[]): void {
    this.#unit ??= baseUnit(unit);
    for (const h of histograms) {
      if (h.sum === undefined) this.#sums = false;
      this.#slotCount = Math.max(this.#slotCount, h.slots.length);
      const labels = labelsOf(h);
      const key = JSON.stringify(labels);
      let total = this.#series.get(key);
      if (!total) {
        if (this.#series.size < this.maxSeries) {
          total = { labels, slots: [], sum: 0 };
          this.#series.set(key, total);
        } else {
          total = this.#other ??= {
            labels: Object.fromEntries(Object.keys(labels).map((k) => [k, "other"])),
            slots: [],
            sum: 0,
          };
        }
      }
      h.slots.forEach((n, i) => total.slots[i] = (total.slots[i] ?? 0) + n);
      total.sum += h.sum ?? 0;
    }
  }

  /** True when every histogram added so far carried its sum. */
  get hasSums(): boolean {
    return this.#sums;
  }

  /** The family to serve now (no series before the first read with histograms). */
  family(fallbackUnit: string): HistogramFamily {
    const unit = this.#unit ?? baseUnit(fallbackUnit);
    const all = [...this.#series.values(), ...(this.#other ? [this.#other] : [])];
    const help = this.#sums ? this.help : `${this.help} (no _sum: the tool keeps no sum here)`;
    return {
      type: "histogram",
      name: this.name(unit),
      help,
      unit: unit.name,
      series: all.map((t) => this.#series_(t, unit)),
    };
  }

  #series_(t: Total, unit: BaseUnit): HistogramSeries {
    const buckets: HistogramSeries["buckets"] = [];
    let cumulative = 0;
    // every slot but the last (the clamped one) has a finite bound
    for (let i = 0; i < this.#slotCount - 1; i++) {
      cumulative += t.slots[i] ?? 0;
      buckets.push({ le: toBase(unit, 2 ** (i + 1)), count: cumulative });
    }
    const count = t.slots.reduce((a, n) => a + (n ?? 0), 0);
    return { labels: t.labels, buckets, count, ...(this.#sums ? { sum: t.sum } : {}) };
  }
}

function labelsOf(h: DrainedHistogram): Labels {
  const labels: Labels = {};
  if (h.labels) {
    for (const [k, v] of Object.entries(h.labels)) labels[metricName(k)] = String(v);
  } else if (h.heading !== undefined) labels.histogram = h.heading.trim();
  return labels;
}

/**
 * bpftrace hist() slots (1: the value 0, 2: the value 1, i >= 3: [2^(i-2),
 * 2^(i-1)-1]; slot 0, negatives, unused) as log2 slots: 0 and 1 share log2
 * slot 0 ([0, 1]), every other slot keeps its bounds. Nothing is lost but the
 * split of the first bucket.
 */
export function log2FromHistSlots(slots: number[]): number[] {
  return [(slots[1] ?? 0) + (slots[2] ?? 0), ...slots.slice(3)];
}
