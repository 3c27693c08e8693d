/** Parsing bcc-style log2 histograms back into numbers (for checking tool output). */

/** One printed histogram: its unit, optional heading, and slot counts by slot index. */
export interface ParsedHist {
  heading?: string;
  unit: string;
  /** counts[i] is the count of slot i: [2^i/2, 2^i - 1] (slot 0 is "0 -> 1"). */
  counts: number[];
}

/** Parses every histogram in `text` (print_log2_hist layout). */
export function parseLog2Hists(text: string): ParsedHist[] {
  const out: ParsedHist[] = [];
  let heading: string | undefined;
  let current: ParsedHist | undefined;
  for (const line of text.split("\n")) {
    const head = line.match(/^\s+(\w+)\s+: count\s+distribution$/);
    if (head) {
      current = { heading, unit: head[1], counts: [] };
      out.push(current);
      heading = undefined;
      continue;
    }
    const row = line.match(/^\s*(\d+) -> (\d+)\s+: (\d+)\s+\|/);
    if (row && current) {
      const high = Number(row[2]);
      const slot = Math.round(Math.log2(high + 1)) - 1;
      current.counts[slot] = Number(row[3]);
      continue;
    }
    if (line.trim() && !row) {
      heading = line.trim();
      current = undefined;
    }
  }
  for (const h of out) for (let i = 0; i < h.counts.length; i++) h.counts[i] ??= 0;
  return out;
}

/** Sum of counts in slots whose range lies within [lowUs, highUs]. */
export function countBetween(h: ParsedHist, low: number, high: number): number {
  let n = 0;
  h.counts.forEach((c, i) => {
    const lo = i === 0 ? 0 : 2 ** i;
    const hi = 2 ** (i + 1) - 1;
    if (lo >= low && hi <= high) n += c;
  });
  return n;
}

export function total(h: ParsedHist): number {
  return h.counts.reduce((a, b) => a + b, 0);
}
