/**
 * Parsers that read histograms printed by the reference tools back into
 * counts, so a test can re-print them with our formatters and compare bytes.
 * Also usable by tool tests that compare our counts with a reference tool's.
 *
 * @module
 */

/** One log2 histogram as printed by libbpf-tools' `print_log2_hist`. */
export interface ParsedLog2Hist {
  /** The unit in the header, e.g. `usecs`. */
  valType: string;
  /** Counts by slot index, from slot 0 to the last printed slot. */
  counts: bigint[];
  /** The exact text of the histogram (header and rows, each ending in `\n`). */
  text: string;
}

const LOG2_HEADER = /^ +(\S+) +: count {4}distribution$/;
const LOG2_ROW = /^ *(\d+) -> (\d+) *: (\d+) +\|[* ]*\+?\|$/;

/** Slot index of a printed `low -> high` row: `0 -> 1` is slot 0, `2^i -> ...` is slot i. */
function log2Index(low: bigint, high: bigint): number {
  if (low === 0n && high === 1n) return 0;
  let index = 0;
  while ((1n << BigInt(index)) < low) index++;
  if ((1n << BigInt(index)) !== low || (1n << BigInt(index + 1)) - 1n !== high) {
    throw new Error(`not a log2 slot: ${low} -> ${high}`);
  }
  return index;
}

/**
 * Finds every log2 histogram in a tool's stdout. Lines that are not part of a
 * histogram (banners, timestamps, `pid = ...` headers) are skipped.
 */
export function parseLog2Hists(output: string): ParsedLog2Hist[] {
  const lines = output.split("\n");
  const found: ParsedLog2Hist[] = [];
  let current: ParsedLog2Hist | undefined;
  for (const line of lines) {
    const header = LOG2_HEADER.exec(line);
    if (header) {
      current = { valType: header[1], counts: [], text: line + "\n" };
      found.push(current);
      continue;
    }
    const row = current && LOG2_ROW.exec(line);
    if (current && row) {
      const index = log2Index(BigInt(row[1]), BigInt(row[2]));
      if (index !== current.counts.length) {
        throw new Error(`log2 slot ${index} out of order in:\n${current.text}${line}`);
      }
      current.counts.push(BigInt(row[3]));
      current.text += line + "\n";
      continue;
    }
    current = undefined;
  }
  return found;
}

/** One `@name[key]:` histogram printed by bpftrace. */
export interface ParsedBpftraceHist {
  /** Map name with the `@`, e.g. `@bytes`. */
  name: string;
  /** The key inside the brackets, or undefined for a map without keys. */
  key: string | undefined;
  /** The printed rows: label (e.g. `[4, 8)`) and count. */
  rows: { label: string; count: bigint }[];
}

const BPFTRACE_MAP_HEADER = /^(@[A-Za-z0-9_]*)(?:\[(.*)\])?: $/;
const BPFTRACE_ROW = /^(\S.*?) +(\d+) \|@* *\|$/;

/** Reads the histograms printed by bpftrace at exit (hist and lhist maps). */
export function parseBpftraceHists(output: string): ParsedBpftraceHist[] {
  const found: ParsedBpftraceHist[] = [];
  let current: ParsedBpftraceHist | undefined;
  for (const line of output.split("\n")) {
    const header = BPFTRACE_MAP_HEADER.exec(line);
    if (header) {
      current = { name: header[1], key: header[2], rows: [] };
      found.push(current);
      continue;
    }
    const row = current && BPFTRACE_ROW.exec(line);
    if (current && row) {
      current.rows.push({ label: row[1], count: BigInt(row[2]) });
      continue;
    }
    current = undefined;
  }
  return found;
}
