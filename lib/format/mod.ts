/**
 * Text formatting shared by every tool: libbpf-tools and bpftrace histograms,
 * time stamps, and escaping of untrusted traced strings. Pure functions that
 * return strings; the caller writes them.
 *
 * @example
 * ```ts
 * import { escapeText, formatLog2Hist, formatTimestampHeader } from "./mod.ts";
 * const text = formatTimestampHeader() + formatLog2Hist([0, 4, 2], "usecs") +
 *   `pid = 42 ${escapeText("comm\x1b]0;pwned\x07")}\n`;
 * ```
 *
 * @module
 */

export { formatLinearHist, formatLog2Hist } from "./log2_hist.ts";
export {
  type BpftraceHistEntry,
  type BpftraceHistLayout,
  compareKeyBytes,
  formatBpftraceHist,
  formatBpftraceHistMap,
  formatBpftraceLhist,
} from "./bpftrace_hist.ts";
export { cxxSort, type Less } from "./cxx_sort.ts";
export {
  formatFixed,
  formatSecondsColumn,
  formatTimeOfDay,
  formatTimestampHeader,
  secondsBetween,
} from "./time.ts";
export { decodeBytes, decodeCString, encodeBytes, escapeText, stringifyJson } from "./escape.ts";
