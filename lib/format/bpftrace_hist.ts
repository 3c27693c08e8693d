/**
 * bpftrace's histogram printing (`hist()` and `lhist()` maps), matching
 * bpftrace 0.17 byte for byte:
 *
 * ```
 * @usecs[kworker/0:1]:
 * [4, 8)                 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
 * [8, 16)                0 |                                                    |
 * ```
 *
 * (the header really ends with `": "`, a trailing space). Each row is the
 * label left-justified in 16 columns, the count right-justified in 8, then a
 * bar of up to 52 `@`. Empty buckets before the first and after the last
 * non-empty one are not printed.
 *
 * Counts are exact integers. bpftrace reads them into an `int` while looking
 * for the largest, so above 2^31-1 its output goes wrong; we print what it
 * would print if it did not overflow.
 *
 * @module
 */

import { cxxSort } from "./cxx_sort.ts";
import { escapeText } from "./escape.ts";

/** Width of the bar between the two `|`. */
const BAR_WIDTH = 52;

/** How a map's counts are bucketed: `hist()` (power of two) or `lhist(v, min, max, step)`. */
export type BpftraceHistLayout =
  | { kind: "hist" }
  | { kind: "lhist"; min: number; max: number; step: number };

/** One key of a histogram map. */
export interface BpftraceHistEntry {
  /**
   * The key as bpftrace shows it inside `[...]`: a string, or the parts of a
   * multi-part key (joined with `", "`). Omit it for a map without keys
   * (`@name: `). Raw traced text is fine: it is escaped here.
   */
  key?: string | readonly (string | number | bigint)[];
  /**
   * The key's bytes as stored in the BPF map. bpftrace visits keys in the
   * order of these bytes (std::map of byte vectors) before sorting by total,
   * and that order decides between keys with equal totals. Without it the
   * entries are taken in the order given.
   */
  keyBytes?: Uint8Array;
  /** Bucket counts, laid out as bpftrace's map does (see formatBpftraceHist / formatBpftraceLhist). */
  counts: ArrayLike<number | bigint>;
}

function toCounts(counts: ArrayLike<number | bigint>): bigint[] {
  const result: bigint[] = new Array(counts.length);
  for (let i = 0; i < counts.length; i++) {
    const v = counts[i];
    if (typeof v === "bigint" ? v < 0n : !Number.isSafeInteger(v) || v < 0) {
      throw new RangeError(`histogram bucket ${i}: count must be a non-negative integer, got ${v}`);
    }
    result[i] = BigInt(v);
  }
  return result;
}

/**
 * Bar length as bpftrace computes it, in single-precision float:
 * `int(count / (float)max * 52)`. For every max up to 2000 this equals
 * floor(count * 52 / max); with counts beyond 2^24, float rounding of the
 * counts themselves can move a bar by one `@`, and we move it the same way.
 */
function barLength(count: bigint, max: bigint): number {
  const f = Math.fround;
  const ratio = f(f(Number(count)) / f(Number(max)));
  return Math.trunc(f(ratio * BAR_WIDTH));
}

function row(label: string, count: bigint, max: bigint): string {
  const bar = "@".repeat(barLength(count, max));
  return `${label.padEnd(16)}${String(count).padStart(8)} |${bar.padEnd(BAR_WIDTH)}|\n`;
}

/** bpftrace's `hist_index_label`: 2^power with a K/M/G/T suffix for powers of 1024. */
function powerLabel(power: number): string {
  const suffixes = ["", "K", "M", "G", "T"];
  const step = Math.min(Math.floor(power / 10), 4);
  return `${2 ** (power - 10 * step)}${suffixes[step]}`;
}

/** bpftrace's `lhist_index_label`: n, or n/1M "M", or n/1K "K" when it divides. */
function linearLabel(n: number): string {
  if (n === 0) return "0";
  if (n % 1048576 === 0) return `${n / 1048576}M`;
  if (n % 1024 === 0) return `${n / 1024}K`;
  return String(n);
}

/** Label of bucket `index` of a `hist()` map. */
function histLabel(index: number): string {
  if (index === 0) return "(..., 0)";
  if (index === 1) return "[0]";
  if (index === 2) return "[1]";
  return `[${powerLabel(index - 2)}, ${powerLabel(index - 1)})`;
}

/** First and last non-empty bucket, or undefined when all are empty. */
function nonEmptyRange(vals: bigint[]): [number, number] | undefined {
  const first = vals.findIndex((v) => v > 0n);
  if (first < 0) return undefined;
  let last = vals.length - 1;
  while (vals[last] === 0n) last--;
  return [first, last];
}

function maxOf(vals: bigint[]): bigint {
  return vals.reduce((m, v) => (v > m ? v : m), 0n);
}

/**
 * The rows of one `hist()` histogram, as bpftrace prints them under its
 * `@name: ` line. Bucket 0 counts negative values (`(..., 0)`), bucket 1 the
 * value 0 (`[0]`), bucket 2 the value 1 (`[1]`), and bucket i >= 3 the values
 * in [2^(i-2), 2^(i-1)) (`[2, 4)`, ..., `[1K, 2K)`, ...). Returns `""` when
 * every bucket is empty.
 *
 * @example
 * ```ts
 * import { formatBpftraceHist } from "./bpftrace_hist.ts";
 * formatBpftraceHist([0, 0, 0, 0, 2, 1]);
 * // "[4, 8)                 2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n" +
 * // "[8, 16)                1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |\n"
 * ```
 */
export function formatBpftraceHist(counts: ArrayLike<number | bigint>): string {
  const vals = toCounts(counts);
  const range = nonEmptyRange(vals);
  if (!range) return "";
  const max = maxOf(vals);
  let out = "";
  for (let i = range[0]; i <= range[1]; i++) out += row(histLabel(i), vals[i], max);
  return out;
}

/**
 * The rows of one `lhist(value, min, max, step)` histogram. Bucket 0 counts
 * values below `min` (`(..., min)`), bucket i in 1..buckets counts
 * [min + (i-1)*step, min + i*step), and bucket `buckets + 1` counts values
 * from `max` on (`[max, ...)`), where buckets = floor((max - min) / step).
 * Returns `""` when every bucket is empty.
 *
 * @example
 * ```ts
 * import { formatBpftraceLhist } from "./bpftrace_hist.ts";
 * formatBpftraceLhist([0, 3, 0, 1], 0, 2048, 1024);
 * // "[0, 1K)                3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n" +
 * // "[1K, 2K)               0 |                                                    |\n" +
 * // "[2K, ...)              1 |@@@@@@@@@@@@@@@@@                                   |\n"
 * ```
 */
export function formatBpftraceLhist(
  counts: ArrayLike<number | bigint>,
  min: number,
  max: number,
  step: number,
): string {
  if (![min, max, step].every(Number.isSafeInteger) || step <= 0 || max <= min) {
    throw new RangeError(
      `lhist needs integers min < max and step > 0, got ${min}, ${max}, ${step}`,
    );
  }
  const buckets = Math.floor((max - min) / step);
  const vals = toCounts(counts).slice(0, buckets + 2);
  const range = nonEmptyRange(vals);
  if (!range) return "";
  const maxCount = maxOf(vals);
  let out = "";
  for (let i = range[0]; i <= range[1]; i++) {
    let label: string;
    if (i === 0) label = `(..., ${linearLabel(min)})`;
    else if (i === buckets + 1) label = `[${linearLabel(max)}, ...)`;
    else label = `[${linearLabel((i - 1) * step + min)}, ${linearLabel(i * step + min)})`;
    out += row(label, vals[i], maxCount);
  }
  return out;
}

/** Orders key bytes as std::map<std::vector<uint8_t>> does: lexicographic, shorter prefix first. */
export function compareKeyBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function keySuffix(key: BpftraceHistEntry["key"]): string {
  if (key === undefined) return "";
  const parts = typeof key === "string" ? [key] : key.map(String);
  return `[${parts.map((part) => escapeText(part)).join(", ")}]`;
}

/**
 * A whole histogram map as bpftrace prints it (at exit or with `print(@map)`):
 * one `@name[key]: ` header and its rows per key, keys in ascending order of
 * their total count, a blank line after each key. Keys with equal totals come
 * in bpftrace's order: key-byte order, then GNU `std::sort` (which reorders
 * equal keys once there are more than 16).
 *
 * @param name the map name with its `@`, e.g. `"@usecs"` (or `"@"`)
 * @param entries one entry per key; for a map without keys, one entry without `key`
 * @param layout `{ kind: "hist" }` or `{ kind: "lhist", min, max, step }`
 *
 * @example
 * ```ts
 * import { formatBpftraceHistMap } from "./bpftrace_hist.ts";
 * formatBpftraceHistMap("@bytes", [{ key: "dd", counts: [0, 0, 0, 0, 1] }], { kind: "hist" });
 * // "@bytes[dd]: \n" +
 * // "[4, 8)                 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n" +
 * // "\n"
 * ```
 */
export function formatBpftraceHistMap(
  name: string,
  entries: readonly BpftraceHistEntry[],
  layout: BpftraceHistLayout,
): string {
  const ordered = entries.map((entry) => ({
    entry,
    total: toCounts(entry.counts).reduce((sum, v) => sum + v, 0n),
  }));
  if (ordered.every(({ entry }) => entry.keyBytes)) {
    ordered.sort((a, b) => compareKeyBytes(a.entry.keyBytes!, b.entry.keyBytes!));
  }
  cxxSort(ordered, (a, b) => a.total < b.total);

  const blocks = ordered.map(({ entry }) => {
    const rows = layout.kind === "hist"
      ? formatBpftraceHist(entry.counts)
      : formatBpftraceLhist(entry.counts, layout.min, layout.max, layout.step);
    return `${name}${keySuffix(entry.key)}: \n${rows}`;
  });
  return blocks.join("\n") + "\n";
}
