/**
 * The Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 text, from
 * metric families (lib/export/metrics.ts), and the choice between them from a
 * scraper's Accept header.
 *
 * - 0.0.4: `# HELP`, `# TYPE`, then the samples; counters are named with
 *   `_total` in HELP and TYPE too.
 * - OpenMetrics: the family name without `_total` in HELP/TYPE, a `# UNIT`
 *   line when the name ends in its unit, `# EOF` at the end.
 *
 * @module
 */
import type { Labels, MetricFamily } from "./metrics.ts";

/** The two formats served. */
export type ExpositionFormat = "text" | "openmetrics";

/** Content-Type of each format. */
export const CONTENT_TYPE: Record<ExpositionFormat, string> = {
  text: "text/plain; version=0.0.4; charset=utf-8",
  openmetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8",
};

/** OpenMetrics when the Accept header asks for it (as Prometheus does), else text 0.0.4. */
export function negotiateFormat(accept: string | null): ExpositionFormat {
  return accept && /application\/openmetrics-text/i.test(accept) ? "openmetrics" : "text";
}

/** A sample value or bound: integers as such, +Inf, otherwise the shortest round-trip form. */
export function formatValue(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (Number.isNaN(v)) return "NaN";
  return String(v);
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** `k="v",k2="v2"` (no braces), escaped once per series. */
function labelPairs(labels: Labels): string {
  let out = "";
  for (const k in labels) out += `${out ? "," : ""}${k}="${escapeLabel(labels[k])}"`;
  return out;
}

function braces(pairs: string): string {
  return pairs ? `{${pairs}}` : "";
}

/** The exposition of `families` in `format`. */
export function formatExposition(families: MetricFamily[], format: ExpositionFormat): string {
  const om = format === "openmetrics";
  const out: string[] = [];
  for (const f of families) {
    if (f.type === "counter") {
      const head = om ? f.name : `${f.name}_total`;
      out.push(`# HELP ${head} ${escapeHelp(f.help)}`, `# TYPE ${head} counter`);
      for (const s of f.series) {
        out.push(`${f.name}_total${braces(labelPairs(s.labels))} ${formatValue(s.value)}`);
      }
      continue;
    }
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} histogram`);
    if (om && f.unit && f.name.endsWith(`_${f.unit}`)) out.push(`# UNIT ${f.name} ${f.unit}`);
    // the bounds' text once per family (every series has the same bounds)
    const les = new Map<number, string>();
    for (const s of f.series) {
      const pairs = labelPairs(s.labels);
      const bucket = `${f.name}_bucket{${pairs}${pairs ? "," : ""}le="`;
      for (const b of s.buckets) {
        let le = les.get(b.le);
        if (le === undefined) les.set(b.le, le = formatValue(b.le));
        out.push(`${bucket}${le}"} ${b.count}`);
      }
      out.push(`${bucket}+Inf"} ${s.count}`);
      if (s.sum !== undefined) out.push(`${f.name}_sum${braces(pairs)} ${formatValue(s.sum)}`);
      out.push(`${f.name}_count${braces(pairs)} ${s.count}`);
    }
  }
  if (om) out.push("# EOF");
  return out.join("\n") + "\n";
}
