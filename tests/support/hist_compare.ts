/**
 * Checking a parsed log2 histogram against the truth: values a workload
 * measured itself, or another tool's histogram of the same events.
 */
import { ok as assert } from "node:assert/strict";
import type { ParsedHist } from "./log2_hist_parse.ts";

/** The log2 slot of a value, as libbpf-tools' log2l places it (0 and 1 in slot 0). */
export function slotOf(value: number): number {
  return value < 2 ? 0 : Math.floor(Math.log2(value));
}

/** Count of the histogram's values at or above `2^slot`. */
function atOrAbove(h: ParsedHist, slot: number): number {
  return h.counts.slice(slot).reduce((a, b) => a + b, 0);
}

/**
 * The histogram holds `values` (each measured by the workload a little
 * differently from the tool: `margin` relative, for the slot edges), plus at
 * most `extraShort` more below 2^`fromSlot`, waits the workload cannot see
 * (a busy machine preempting it), less at most `missed` (events the kernel
 * and the workload see differently). At every slot edge from `fromSlot` up,
 * the count at or above the edge lies between what the values allow.
 */
export function assertHistHolds(
  h: ParsedHist,
  values: number[],
  opts: { fromSlot: number; margin: number; extraShort: number; missed: number },
): void {
  const shown = () => `histogram ${JSON.stringify(h.counts)}, values ${values.join(",")}`;
  const top = Math.max(h.counts.length, slotOf(Math.max(...values)) + 2);
  for (let slot = opts.fromSlot; slot <= top; slot++) {
    const edge = 2 ** slot;
    const surely = values.filter((v) => v >= edge * (1 + opts.margin)).length;
    const maybe = values.filter((v) => v >= edge * (1 - opts.margin)).length;
    const got = atOrAbove(h, slot);
    assert(
      surely - opts.missed <= got && got <= maybe,
      `at or above ${edge}: ${got}, expected ${surely}..${maybe}: ${shown()}`,
    );
  }
  const sum = h.counts.reduce((a, b) => a + b, 0);
  assert(
    sum >= values.length - opts.missed && sum <= values.length + opts.extraShort,
    `total ${sum}, the workload measured ${values.length} ` +
      `(-${opts.missed}/+${opts.extraShort} allowed): ${shown()}`,
  );
}

/** Two histograms of the same events: every slot within `perSlot`, totals within `total`. */
export function assertSameHist(
  a: ParsedHist,
  b: ParsedHist,
  tolerance: { perSlot: number; total: number },
  names = ["ours", "reference"],
): void {
  const n = Math.max(a.counts.length, b.counts.length);
  const shown = `${names[0]} ${JSON.stringify(a.counts)}, ${names[1]} ${JSON.stringify(b.counts)}`;
  let ta = 0, tb = 0;
  for (let i = 0; i < n; i++) {
    const ca = a.counts[i] ?? 0, cb = b.counts[i] ?? 0;
    assert(Math.abs(ca - cb) <= tolerance.perSlot, `slot ${i}: ${shown}`);
    ta += ca;
    tb += cb;
  }
  assert(Math.abs(ta - tb) <= tolerance.total, `totals ${ta} vs ${tb}: ${shown}`);
}
