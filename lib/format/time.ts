/**
 * Time stamps as libbpf-tools and bcc print them: the `-T` header line above
 * each interval (`strftime("%H:%M:%S")` of local time), `TIME` columns, and
 * `TIME(s)` columns of seconds since the tool started (`printf("%-8.3f")`).
 *
 * Uses the JavaScript Date for local time, so the time zone is the process's
 * (TZ and /etc/localtime), as with the C `localtime`.
 *
 * @module
 */

function twoDigits(n: number): string {
  return String(n).padStart(2, "0");
}

/**
 * Local wall-clock time as `HH:MM:SS` (24-hour), i.e. `strftime("%H:%M:%S", localtime(...))`.
 *
 * @example
 * ```ts
 * import { formatTimeOfDay } from "./time.ts";
 * formatTimeOfDay(new Date(2024, 0, 2, 3, 4, 5)); // "03:04:05"
 * ```
 */
export function formatTimeOfDay(date: Date = new Date()): string {
  return `${twoDigits(date.getHours())}:${twoDigits(date.getMinutes())}:${
    twoDigits(date.getSeconds())
  }`;
}

/**
 * The line libbpf-tools prints before each interval's output with `-T`
 * (`printf("%-8s\n", ts)`), newline included.
 *
 * @example
 * ```ts
 * import { formatTimestampHeader } from "./time.ts";
 * formatTimestampHeader(new Date(2024, 0, 2, 13, 4, 5)); // "13:04:05\n"
 * ```
 */
export function formatTimestampHeader(date: Date = new Date()): string {
  return formatTimeOfDay(date).padEnd(8) + "\n";
}

/**
 * Seconds from `startNs` to `endNs` (two CLOCK_MONOTONIC readings, or two BPF
 * `bpf_ktime_get_ns()` values), computed the way libbpf-tools'
 * `time_since_start()` does: whole seconds plus `(double)nsec / 1e9`, so the
 * printed digits agree with the C tools.
 */
export function secondsBetween(startNs: bigint, endNs: bigint): number {
  const ns = endNs - startNs;
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    sec -= 1n;
  }
  return Number(sec) + Number(nsec) / 1e9;
}

const F64 = new DataView(new ArrayBuffer(8));

/**
 * C's `printf("%.*f", precision, x)` (glibc), digit for digit: the exact
 * binary value of `x` rounded to `precision` decimals, ties to even. Unlike
 * `Number.prototype.toFixed`, which rounds exact ties up (0.125 -> "0.13"
 * where C prints "0.12") and switches to exponent form from 1e21 on.
 * Negative values that round to zero keep their sign ("-0.000"), as in C.
 *
 * @example
 * ```ts
 * import { formatFixed } from "./time.ts";
 * formatFixed(0.125, 2); // "0.12"
 * formatFixed(2.5, 0); // "2"
 * formatFixed(1.0005, 3); // "1.000" (1.0005 is really 1.000499999...)
 * ```
 */
export function formatFixed(x: number, precision: number): string {
  if (!Number.isInteger(precision) || precision < 0 || precision > 100) {
    throw new RangeError(`precision must be an integer in 0..100, got ${precision}`);
  }
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x < 0 ? "-inf" : "inf";

  F64.setFloat64(0, x);
  const bits = F64.getBigUint64(0);
  const negative = bits >> 63n === 1n;
  const biasedExponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  // x = mantissa * 2^exponent exactly
  const mantissa = biasedExponent === 0 ? fraction : fraction | (1n << 52n);
  const exponent = (biasedExponent === 0 ? 1 : biasedExponent) - 1075;

  const scale = 10n ** BigInt(precision);
  let digits: bigint; // round(|x| * 10^precision), ties to even
  if (exponent >= 0) {
    digits = (mantissa << BigInt(exponent)) * scale;
  } else {
    const numerator = mantissa * scale;
    const denominator = 1n << BigInt(-exponent);
    digits = numerator / denominator;
    const twiceRemainder = (numerator % denominator) * 2n;
    if (twiceRemainder > denominator || (twiceRemainder === denominator && digits % 2n === 1n)) {
      digits += 1n;
    }
  }

  let text = digits.toString().padStart(precision + 1, "0");
  if (precision > 0) text = `${text.slice(0, -precision)}.${text.slice(-precision)}`;
  return (negative ? "-" : "") + text;
}

/**
 * A `TIME(s)` cell: seconds with `precision` decimals, left-justified in
 * `width` columns, i.e. `printf("%-8.3f", seconds)` with the defaults.
 *
 * @example
 * ```ts
 * import { formatSecondsColumn } from "./time.ts";
 * formatSecondsColumn(1.5); // "1.500   "
 * formatSecondsColumn(12.25, 9, 3); // "12.250   "
 * ```
 */
export function formatSecondsColumn(seconds: number, width = 8, precision = 3): string {
  return formatFixed(seconds, precision).padEnd(width);
}
