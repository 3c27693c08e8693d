/**
 * Medians and the Markdown tables the README quotes: one table per measure,
 * each row a tool, with its median and its ratio to each reference tool.
 */
import type { Subject, SubjectKey } from "./subjects.ts";

/** A tool's result for one measure: a median, or why there is none. */
export type Outcome = { median: number } | { unavailable: string };

/** One measure across the tools. */
export interface Measure {
  /** Table heading, e.g. "Start to ready (ms)". */
  title: string;
  /** Decimals shown for the median. */
  digits: number;
  results: Map<SubjectKey, Outcome>;
}

/** Median of the numbers (mean of the middle two for an even count); null when empty. */
export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * The outcome of a set of samples: their median, or the first error when no
 * sample succeeded (or `missing` when the tool could not run at all).
 */
export function outcomeOf(values: number[], errors: string[], missing?: string): Outcome {
  if (missing) return { unavailable: `not measured: ${missing}` };
  const m = median(values);
  if (m === null) return { unavailable: `failed: ${errors[0] ?? "no samples"}` };
  return { median: m };
}

const REFERENCES: SubjectKey[] = ["libbpf", "bpftrace"];

/** `measure` as a Markdown table: tool | median | ratio vs libbpf-tools | ratio vs bpftrace. */
export function markdownTable(measure: Measure, subjects: Subject[]): string {
  const lines = [
    `#### ${measure.title}`,
    "",
    "| tool | median | ratio vs libbpf-tools | ratio vs bpftrace |",
    "|---|---:|---:|---:|",
  ];
  for (const subject of subjects) {
    const own = measure.results.get(subject.key);
    const cells = [subject.label];
    if (!own || "unavailable" in own) {
      cells.push(escapeCell(own ? own.unavailable : "not measured"), "n/a", "n/a");
    } else {
      cells.push(own.median.toFixed(measure.digits));
      for (const ref of REFERENCES) cells.push(ratio(own, measure.results.get(ref)));
    }
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

function ratio(own: { median: number }, reference: Outcome | undefined): string {
  if (!reference || "unavailable" in reference || reference.median === 0) return "n/a";
  return `${(own.median / reference.median).toFixed(2)}×`;
}

function escapeCell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}
