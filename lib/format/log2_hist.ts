/**
 * Histogram printers of libbpf-tools (`print_log2_hist`, `print_linear_hist` in
 * bcc's libbpf-tools/trace_helpers.c), reproduced byte for byte so that our
 * tools print what runqlat, biolatency, bitesize... print.
 *
 * Counts are taken as exact integers (number or bigint). The C code keeps them
 * in `unsigned int`, multiplies `val * 40` in 32 bits and prints with `%d`, so
 * it garbles bars above 107,374,182 events in one slot and prints negative
 * counts above 2^31-1. Those are overflow bugs, not layout, and we do not
 * reproduce them: for every count up to 107,374,182 the output is identical.
 *
 * @module
 */

/** Width of the bar between the two `|` in the narrow layout. */
const STARS_MAX = 40;

/** Beyond this slot index a bucket bound no longer fits 10 digits: C switches to the wide layout. */
const NARROW_LAYOUT_MAX_INDEX = 32;

/** Converts one count to an exact non-negative bigint, rejecting what a C `unsigned` could not hold. */
function toCount(value: number | bigint, index: number): bigint {
  if (typeof value === "bigint") {
    if (value < 0n) throw new RangeError(`histogram slot ${index}: negative count ${value}`);
    return value;
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `histogram slot ${index}: count must be a non-negative integer, got ${value}`,
    );
  }
  return BigInt(value);
}

/** Reads every slot as a bigint; one pass so callers can hand in typed arrays of either kind. */
function toCounts(counts: ArrayLike<number | bigint>): bigint[] {
  const result: bigint[] = new Array(counts.length);
  for (let i = 0; i < counts.length; i++) result[i] = toCount(counts[i], i);
  return result;
}

/** `print_stars`: `val * width / valMax` stars (integer division), padded with spaces to `width`. */
function starBar(val: bigint, valMax: bigint, width: number): string {
  const shown = val < valMax ? val : valMax;
  const stars = Number((shown * BigInt(width)) / valMax);
  // The C prints a trailing "+" when val > valMax, which cannot happen here:
  // valMax is the largest count of the same histogram.
  return "*".repeat(stars) + " ".repeat(width - stars);
}

/** printf's `%-*s` / `%-8d`: left-justify in a field, never truncate. */
function padRight(text: string, width: number): string {
  return text.padEnd(width, " ");
}

/** printf's `%*s` / `%*lld`: right-justify in a field, never truncate. */
function padLeft(text: string, width: number): string {
  return text.padStart(width, " ");
}

/**
 * Bounds of log2 slot `index` as libbpf-tools prints them: slot 0 is `0 -> 1`,
 * slot i > 0 is `2^i -> 2^(i+1)-1`.
 */
function log2SlotBounds(index: number): [bigint, bigint] {
  const top = 1n << BigInt(index + 1);
  let low = top >> 1n;
  const high = top - 1n;
  if (low === high) low -= 1n; // slot 0: "0 -> 1" rather than "1 -> 1"
  return [low, high];
}

/**
 * Formats a power-of-two histogram exactly like libbpf-tools' `print_log2_hist`.
 *
 * Slot `i` counts values in `[2^i, 2^(i+1))` (slot 0 also holds 0), the layout
 * every libbpf-tools histogram map uses. Leading empty slots are printed (the
 * C does not trim them); trailing empty slots are dropped. When no slot has a
 * count, the result is the empty string, as the C prints nothing. When the
 * last non-empty slot is above 32, bounds no longer fit 10 digits and the wide
 * layout is used (20-digit bounds, 20-star bars), as in the C. Every line ends
 * with `\n`; the caller adds any blank line before or after.
 *
 * Slot 63 is printed with its true bounds, `2^63 -> 2^64-1`. The C computes
 * `1ULL << 64` there, which is undefined and on x86 prints `-1 -> 0`; no
 * libbpf-tool has 64 slots.
 *
 * @param counts one count per slot, e.g. the `slots` array of a `struct hist`
 * @param valType unit shown in the header, e.g. `"usecs"`, `"msecs"`, `"Kbytes"`
 * @returns the histogram text, or `""` when every count is zero
 * @throws RangeError when a count is negative or not an integer, or there are more than 64 slots
 *
 * @example
 * ```ts
 * import { formatLog2Hist } from "./log2_hist.ts";
 * const text = formatLog2Hist([1, 0, 3], "usecs");
 * // "     usecs               : count    distribution\n" +
 * // "         0 -> 1          : 1        |*************                           |\n" +
 * // "         2 -> 3          : 0        |                                        |\n" +
 * // "         4 -> 7          : 3        |****************************************|\n"
 * ```
 */
export function formatLog2Hist(counts: ArrayLike<number | bigint>, valType: string): string {
  const vals = toCounts(counts);
  let idxMax = -1;
  let valMax = 0n;
  for (let i = 0; i < vals.length; i++) {
    if (vals[i] > 0n) idxMax = i;
    if (vals[i] > valMax) valMax = vals[i];
  }
  if (idxMax < 0) return "";
  if (idxMax > 63) {
    throw new RangeError(`log2 histogram has a count in slot ${idxMax}; slots stop at 63`);
  }

  const narrow = idxMax <= NARROW_LAYOUT_MAX_INDEX;
  const boundWidth = narrow ? 10 : 20;
  const stars = narrow ? STARS_MAX : STARS_MAX / 2;
  // Header: "%*s%-*s : count    distribution\n" with (5, 19) or (15, 29).
  let out = " ".repeat(narrow ? 5 : 15) + padRight(valType, narrow ? 19 : 29) +
    " : count    distribution\n";
  for (let i = 0; i <= idxMax; i++) {
    const [low, high] = log2SlotBounds(i);
    out += `${padLeft(String(low), boundWidth)} -> ${padRight(String(high), boundWidth)} : ` +
      `${padRight(String(vals[i]), 8)} |${starBar(vals[i], valMax, stars)}|\n`;
  }
  return out;
}

/**
 * Formats a linear histogram exactly like libbpf-tools' `print_linear_hist`
 * (used by runqlen, and by tools with fixed-step buckets).
 *
 * Slot `i` is labelled `base + i * step`. Unlike the log2 printer, only slots
 * with a count are printed: empty slots before, between and after are skipped
 * (bcc 0.26, the version installed here, skips empty slots between too).
 * Returns `""` when every count is zero.
 *
 * @param counts one count per slot
 * @param base value of slot 0
 * @param step width of a slot
 * @param valType label of the value column, e.g. `"runqlen"`
 *
 * @example
 * ```ts
 * import { formatLinearHist } from "./log2_hist.ts";
 * formatLinearHist([0, 2, 0, 1], 0, 1, "runqlen");
 * // "     runqlen       : count     distribution\n" +
 * // "        1          : 2        |****************************************|\n" +
 * // "        3          : 1        |********************                    |\n"
 * ```
 */
export function formatLinearHist(
  counts: ArrayLike<number | bigint>,
  base: number,
  step: number,
  valType: string,
): string {
  if (!Number.isSafeInteger(base) || !Number.isSafeInteger(step)) {
    throw new RangeError(`linear histogram base and step must be integers, got ${base}, ${step}`);
  }
  const vals = toCounts(counts);
  let valMax = 0n;
  for (const v of vals) if (v > valMax) valMax = v;
  if (valMax === 0n) return "";

  // Header: "     %-13s : count     distribution\n" (one more space than log2's).
  let out = "     " + padRight(valType, 13) + " : count     distribution\n";
  for (let i = 0; i < vals.length; i++) {
    if (vals[i] === 0n) continue;
    const label = BigInt(base) + BigInt(i) * BigInt(step);
    out += `        ${padRight(String(label), 10)} : ${padRight(String(vals[i]), 8)} |` +
      `${starBar(vals[i], valMax, STARS_MAX)}|\n`;
  }
  return out;
}
